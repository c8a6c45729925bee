"""Small talk in English and Russian: greetings, thanks, acknowledgements, "how are you", "are
you open", goodbyes — alone or around a real request ("good morning! busy day?", "добрый вечер,
вы работаете?", "hi, do you have roses?").

:func:`analyze` returns every kind found, in order, and the remainder of the message with the
small talk and filler removed, so the engine can answer briefly and still handle the request;
:func:`detect` returns the first kind only (the ``small_talk`` command's ``kind``). Tolerant of
case, punctuation, emoji and stretched letters ("hiii", "thanksss", "спасибооо").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["SmallTalk", "SmallTalkKind", "analyze", "detect"]

SmallTalkKind = Literal["greet", "thanks", "ack", "how_are_you", "are_you_open", "bye"]

# Patterns run on lower-cased text with "ё" → "е" and letters repeated 3+ times squeezed to one
# ("hiii" → "hi", "спасибооо" → "спасибо"). Order matters: longer phrases first, so "good
# morning" is a greeting before "good" can be an acknowledgement.
_PATTERNS: tuple[tuple[SmallTalkKind, str], ...] = (
    ("are_you_open", r"(?:are|r)\s+(?:you|u)\s+(?:guys\s+|all\s+|still\s+)?(?:open|working)"
     r"(?:\s+(?:today|now|tomorrow|on\s+\w+))?"
     r"|(?:you|u)\s+open(?:\s+(?:today|now|tomorrow))?|open\s+(?:today|now|right\s+now)"
     r"|what\s+(?:are\s+)?(?:your|the)\s+(?:opening\s+)?hours|opening\s+hours|when\s+do\s+you\s+(?:open|close)"
     r"|(?:вы\s+)?(?:сегодня\s+)?работаете(?:\s+(?:сегодня|завтра|сейчас|ли))?|вы\s+открыты|открыты\s+ли"
     r"|(?:до\s+скольки|во\s+сколько)\s+(?:вы\s+)?(?:работаете|открываетесь|закрываетесь)"
     r"|часы\s+работы|режим\s+работы|график\s+работы"),
    ("how_are_you", r"how\s+(?:are|r)\s+(?:you|u|things)(?:\s+doing)?(?:\s+today)?|how\s+(?:are|r)\s+ya"
     r"|hows\s+it\s+going|how\s+is\s+it\s+going|how\s+you\s+doing|how(?:s|\s+is)\s+(?:your\s+)?(?:day|business)"
     r"|busy\s+day|whats\s+up|wassup|sup"
     r"|как\s+(?:ваши\s+|твои\s+|у\s+вас\s+|у\s+тебя\s+)?дела|как\s+поживаете|как\s+жизнь|как\s+ты|как\s+вы"
     r"|как\s+(?:ваш\s+|проходит\s+)?день|много\s+работы"),
    ("greet", r"good\s+(?:morning|afternoon|evening|day)|h+e+l+o+|h+i+(?:\s+there)?|he+y+(?:\s+there)?|hiya|howdy"
     r"|greetings|yo|morning|evening|afternoon"
     r"|здравствуйте|здравствуй|здрасте|здрасьте|привет\w*|добрый\s+(?:день|вечер|утро)|доброе\s+утро"
     r"|доброго\s+(?:дня|утра|вечера|времени\s+суток)|доброй\s+ночи|приветствую|хай|салют|хелло"),
    ("bye", r"good\s*bye|bye(?:\s+bye)?|see\s+(?:you|ya)(?:\s+(?:later|soon|tomorrow))?|cya|take\s+care"
     r"|have\s+a\s+(?:nice|good|great)\s+(?:day|evening|one|weekend)|good\s+night"
     r"|до\s+свидания|до\s+встречи|пока(?:\s+пока)?|всего\s+(?:доброго|хорошего)|хорошего\s+(?:дня|вечера)"
     r"|спокойной\s+ночи|счастливо|до\s+завтра"),
    ("thanks", r"thank\s+(?:you|u)(?:\s+(?:so|very)\s+much)?|thanks?(?:\s+a\s+lot)?|thx|tnx|ty|cheers"
     r"|much\s+appreciated|appreciate\s+it"
     r"|спасибо(?:\s+большое|\s+огромное)?|большое\s+спасибо|огромное\s+спасибо|спасибки|спасибочки|спс|пасиб"
     r"|благодарю|благодарствую"),
    ("ack", r"ok(?:ay)?|okey|k+|sure|fine|great|cool|got\s+it|alright|all\s+right|perfect|sounds\s+good"
     r"|good|nice|understood|noted|fair\s+enough"
     r"|ок(?:ей)?|окей|хорошо|ладно|понятно|понял|поняла|ясно|отлично|супер|класс|норм|договорились|угу|ага"
     r"|принято"),
)
_COMPILED = tuple(
    (kind, re.compile(rf"(?<![\w])(?:{pattern})(?![\w])", re.IGNORECASE)) for kind, pattern in _PATTERNS
)
# Kinds that count wherever they stand ("hi, do you have roses?"). The others ("ok", "how are
# you", "are you open", a bare "morning") count only when their clause holds nothing else, so
# "do you sell good mugs?", "как вы работаете с возвратами?" and "Thursday morning" are not
# small talk.
_ANYWHERE: frozenset[SmallTalkKind] = frozenset({"greet", "thanks", "bye"})
_CLAUSE_ONLY_WORDS = re.compile(r"^(?:morning|evening|afternoon|yo|sup)$", re.IGNORECASE)
_CLAUSES = re.compile(r"[^,.!?;\n]+[,.!?;\n]*|[,.!?;\n]+")
_EMOJI = (("greet", "👋"), ("thanks", "🙏"), ("ack", "👍"), ("ack", "👌"), ("thanks", "❤"))
_FILLER = re.compile(
    r"(?<![\w])(?:there|all|guys|folks|team|again|so\s+much|very\s+much|a\s+lot|you|to\s+you|too|then"
    r"|ребята|вам|тебе|большое|огромное|еще\s+раз|снова|тоже|и|and|so|well|oh|ah|ой|ну|а|уже)(?![\w])",
    re.IGNORECASE,
)
_STRETCH = re.compile(r"([^\W\d_])\1{2,}")


@dataclass(frozen=True, slots=True)
class SmallTalk:
    """``kinds``: small-talk kinds found, in message order, each once; ``rest``: what is left of
    the message once small talk, filler words, emoji and punctuation-only pieces are removed
    ("" when the message was only small talk; a question keeps its "?")."""

    kinds: tuple[SmallTalkKind, ...] = ()
    rest: str = ""

    @property
    def only_small_talk(self) -> bool:
        """True when the message was small talk and nothing else."""
        return bool(self.kinds) and not self.rest


def _prepare(text: str) -> str:
    text = text.replace("ё", "е").replace("Ё", "Е").replace("’", "'")
    text = re.sub(r"(?<=\w)'(?=\w)", "", text)  # what's → whats
    return _STRETCH.sub(r"\1", text)


def analyze(text: str, language: str | None = None) -> SmallTalk:
    """Small-talk kinds in ``text`` and the substantive remainder (see :class:`SmallTalk`).

    "good morning! busy day?" → kinds ("greet", "how_are_you"), rest ""; "добрый вечер, вы
    работаете?" → ("greet", "are_you_open"), ""; "hi, do you have roses?" → ("greet",), "do you
    have roses?". Both languages are always recognised; ``language`` is accepted for symmetry.
    """
    del language
    prepared = _prepare(text)
    found: list[tuple[int, SmallTalkKind]] = []
    kept: list[str] = []
    offset = 0
    for clause_match in _CLAUSES.finditer(prepared):
        clause = clause_match.group()
        offset = clause_match.start()
        candidates: list[tuple[int, int, SmallTalkKind]] = []
        for kind, pattern in _COMPILED:
            for match in pattern.finditer(clause):
                if any(start < match.end() and match.start() < end for start, end, _ in candidates):
                    continue
                candidates.append((match.start(), match.end(), kind))
        for kind, emoji in _EMOJI:
            position = clause.find(emoji)
            if position >= 0:
                candidates.append((position, position + len(emoji), kind))  # type: ignore[arg-type]
        whole = not _meaningful(_cut(clause, [(a, b) for a, b, _ in candidates]))
        accepted = [
            (a, b, kind)
            for a, b, kind in candidates
            if whole or (kind in _ANYWHERE and not _CLAUSE_ONLY_WORDS.match(clause[a:b]))
        ]
        found.extend((offset + a, kind) for a, _, kind in accepted)
        kept.append(_cut(clause, [(a, b) for a, b, _ in accepted]))
    kinds: list[SmallTalkKind] = []
    for _, kind in sorted(found):
        if kind not in kinds:
            kinds.append(kind)
    return SmallTalk(kinds=tuple(kinds), rest=_remainder("".join(kept)))


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    return text


def _meaningful(text: str) -> bool:
    return re.search(r"[^\W_]", _FILLER.sub(" ", text)) is not None


def _remainder(text: str) -> str:
    pieces = re.split(r"(?<=[.!?\n])|,", text)
    kept = []
    for piece in pieces:
        if _meaningful(piece):
            kept.append(piece.strip(" ,.!\n\t"))
    rest = " ".join(p for p in kept if p)
    return re.sub(r"\s+", " ", rest).strip()


def detect(text: str, language: str | None = None) -> SmallTalkKind | None:
    """The first small-talk kind in ``text`` ("greet", "thanks", "ack", "how_are_you",
    "are_you_open", "bye"), or ``None``."""
    kinds = analyze(text, language).kinds
    return kinds[0] if kinds else None
