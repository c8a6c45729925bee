"""One customer message → candidate item segments with their quantities, plus the clauses that
are not items (questions, remarks), in the order the customer wrote them.

"a teapot and two mugs" → items ``[Segment(1, "teapot"), Segment(2, "mugs")]``;
"дайте три ромашки и две лилии" → ``[Segment(3, "ромашки"), Segment(2, "лилии")]`` with cue
``"add"``; "put two scarves in, and do you ship abroad?" → ``[Segment(2, "scarves")]`` and rest
``["do you ship abroad?"]``; "и ещё розу" → ``[Segment(None, "розу", cue="also")]``.

This module does not decide what is sold: the engine checks every segment's phrase against the
catalogue (with :func:`bot.language.morph.match_key`) and treats the rest as questions/remarks.
A clause becomes a candidate item when it carries a quantity ("two mugs", "a teapot", "пару
роз"), a request cue ("put", "add", "I'll take", "дайте", "хочу", "можно"), an "also" cue ("and
also", "и ещё"), or is listed ("X and Y", "X, Y") next to such a clause. Questions ("do you
ship abroad?", "сколько стоит доставка?") and other clauses go to ``rest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.language.quantities import is_quantity_context, quantity_tokens, read_quantity

__all__ = ["Cue", "Segment", "Split", "split_items"]

Cue = Literal["add", "also"]

# Sentence and list boundaries: punctuation, newlines; "and"/"и"/"plus" are handled per clause.
_CLAUSE = re.compile(r"[^.!?;,\n]+[.!?;,\n]*")
_CONJUNCTIONS = frozenset({"and", "plus", "и", "а", "плюс", "&", "+"})
_ALSO = frozenset({"also", "more", "еще", "также", "тоже", "too", "additionally"})
# Request cues, as token sequences (normalised: apostrophes dropped, "ё" → "е").
_ADD_CUES: tuple[tuple[str, ...], ...] = tuple(
    tuple(cue.split())
    for cue in sorted(
        """put|add|throw in|toss in|include|i ll take|ill take|i will take|i ll have|ill have|i will have
        |i ll get|ill get|i want|i wanna|want|i d like|id like|i would like|i need|need|give me|get me
        |can i get|can i have|could i get|could i have|may i have|can you add|could you add|please add
        |let me get|let me have|i ll buy|ill buy|i want to buy|i d like to buy|buy|order|i d like to order
        |i want to order|take|i ll also take|make it|send me|we need|we want|we ll take
        |дайте|дай|добавьте|добавь|положите|положи|закиньте|кладите|хочу|хотим|хотела бы|хотел бы
        |я хочу|я бы хотела|я бы хотел|возьму|возьмем|беру|берем|нужна|нужно|нужен|нужны|мне нужно
        |мне нужна|мне нужен|мне нужны|мне|можно|можно мне|закажу|заказать|купить|куплю|давайте|давай
        |оформите|пришлите|отправьте|добавить|положить|взять|я возьму|еще добавьте""".replace("\n", "").split("|"),
        key=lambda c: -len(c.split()),
    )
)
_FILLER_START = frozenset(
    """please pls plz пожалуйста ну так so ok okay ок oh actually rather instead just only лучше просто только
    всего with с со""".split()
)
_PRONOUNS = frozenset(
    "one ones it that this them those these его ее их это эти эту этот такой такую такое такие таких".split()
)
_STREET_WORDS = frozenset(
    """street st lane ln avenue ave road rd boulevard blvd drive dr way court ct place pl terrace highway hwy
    улица ул проспект пр переулок пер шоссе бульвар набережная площадь""".split()
)
_DROP_LEADING = frozenset({"the", "some", "of", "to", "for", "мне", "нам"})
_TRAILING: tuple[tuple[str, ...], ...] = tuple(
    tuple(t.split())
    for t in """to my cart|to the cart|to cart|into my cart|into the cart|in my cart|in the cart|to my order
    |to the order|in|as well|too|also|please|pls|plz|thanks|thank you|for me|пожалуйста|в корзину|в заказ
    |тоже|также|еще|спасибо|мне|нам|then|тогда""".replace("\n", "").split("|")
)
_QUESTION_START = frozenset(
    """do does did is are was were can could will would should have has how what when where why which who whats
    hows whens wheres whos any есть ли как когда где почему зачем сколько какой какая какое какие какую что
    кто чем можете сможете вы разве""".split()
)
# Clauses starting with these are statements about something else, not items.
_NOT_ITEM_START = frozenset(
    """i im my we our you your it its this that there thats theres hi hello hey thanks thank ok okay bye yes
    no yeah nope max maximum min minimum under below above over around about up budget within less cheaper
    я мы вы это у привет здравствуйте спасибо да нет пока до от не дешевле дороже около примерно максимум
    минимум бюджет в""".split()
)


@dataclass(frozen=True, slots=True)
class Segment:
    """One candidate item: ``quantity`` (int >= 1, ``None`` when not said; ``a``/``an`` count as
    1), ``phrase`` (normalised words naming the item as written: "red roses", "ромашки"),
    ``cue`` ("add" for a request verb, "also" for "and also"/"и ещё", else ``None``) and ``text``
    (the clause as the customer wrote it)."""

    quantity: int | None
    phrase: str
    cue: Cue | None = None
    text: str = ""

    @property
    def words(self) -> tuple[str, ...]:
        """The phrase's words."""
        return tuple(self.phrase.split())


@dataclass(frozen=True, slots=True)
class Split:
    """Result of :func:`split_items`: candidate ``items`` and the other clauses (``rest``, text as
    written, questions keep their "?") in message order; ``questions`` is the part of ``rest``
    that asks something; ``cue`` is the first item cue ("add"/"also"), ``None`` when no item
    clause had one."""

    items: tuple[Segment, ...] = ()
    rest: tuple[str, ...] = ()
    cue: Cue | None = None
    questions: tuple[str, ...] = ()


def _starts_with(tokens: list[str], seq: tuple[str, ...]) -> bool:
    return tuple(tokens[: len(seq)]) == seq


def _strip_cue(tokens: list[str]) -> tuple[list[str], Cue | None]:
    cue: Cue | None = None
    changed = True
    while changed and tokens:
        changed = False
        if tokens[0] in _FILLER_START or tokens[0] in _CONJUNCTIONS:
            tokens = tokens[1:]
            changed = True
            continue
        if tokens[0] in _ALSO and not (tokens[0] == "more" and len(tokens) > 1 and tokens[1] == "than"):
            tokens = tokens[1:]
            cue = cue or "also"
            changed = True
            continue
        for seq in _ADD_CUES:
            if _starts_with(tokens, seq):
                tokens = tokens[len(seq) :]
                cue = "add" if cue is None else cue
                changed = True
                break
    return tokens, cue


def _strip_trailing(tokens: list[str]) -> tuple[list[str], bool]:
    also = False
    changed = True
    while changed and tokens:
        changed = False
        for seq in _TRAILING:
            if len(tokens) > len(seq) and tuple(tokens[-len(seq) :]) == seq:
                also = also or seq[0] in {"too", "also", "тоже", "также", "еще", "as"}
                tokens = tokens[: -len(seq)]
                changed = True
                break
    return tokens, also


def _split_conjunctions(tokens: list[str], *, always: bool = False) -> list[list[str]]:
    """Split at "and"/"и"/"plus" when what follows starts a new item (a quantity, an article, a
    cue, "also") or a question, or ``always`` (inside a list: "ромашку, лилию и вазу");
    otherwise "salt and pepper set" and "ромашки и лилии" stay whole."""
    parts: list[list[str]] = []
    current: list[str] = []
    for i, token in enumerate(tokens):
        if token in _CONJUNCTIONS and current and i + 1 < len(tokens):
            following = tokens[i + 1 :]
            if (
                always
                or read_quantity(following, 0, articles=True) is not None
                or following[0] in _ALSO
                or following[0] in _QUESTION_START
                or following[0] in _NOT_ITEM_START
                or any(_starts_with(following, seq) for seq in _ADD_CUES)
            ):
                parts.append(current)
                current = [token]
                continue
        current.append(token)
    if current:
        parts.append(current)
    return parts


def _read_segment(tokens: list[str]) -> tuple[int | None, list[str], bool]:
    """Quantity at the start ("two mugs", "пару роз", "another mug") or at the end ("mugs x3",
    "розы 5 штук") → (quantity, item words, "more" said: "2 more mugs", "ещё одну")."""
    if not tokens:
        return None, tokens, False
    if tokens[0] == "another":
        return 1, tokens[1:], True
    match = read_quantity(tokens, 0, articles=True)
    if match is not None:
        words = tokens[match.end :]
        more = False
        while words and words[0] in {"more", "еще", "of", "the"}:  # "one more mug", "two of the"
            more = more or words[0] in {"more", "еще"}
            words = words[1:]
        return match.value, words, more
    for start in range(1, len(tokens)):
        if not is_quantity_context(tokens, start):
            continue
        match = read_quantity(tokens, start)
        if match is not None and match.end == len(tokens):
            return match.value, tokens[:start], False
    return None, tokens, False


@dataclass(slots=True)
class _Part:
    text: str
    quantity: int | None
    words: list[str]
    cue: Cue | None
    item: bool
    question: bool
    # True when the part is joined to the previous one by "and"/"и"/"," inside one sentence.
    joined: bool
    sentence: int


def _is_address(words: list[str], quantity: int | None) -> bool:
    return quantity is not None and bool(words) and words[-1] in _STREET_WORDS


def split_items(text: str, language: str | None = None) -> Split:
    """Split ``text`` into candidate item segments and the remaining clauses; see the module
    docstring for what counts as a candidate. ``language`` is accepted for symmetry (both English
    and Russian cues are always recognised). Never raises; an empty text gives an empty
    :class:`Split`."""
    del language
    parts: list[_Part] = []
    sentence = 0
    listing = False  # an item was listed earlier in this sentence
    sentence_cue: Cue | None = None
    for raw in (m.group() for m in _CLAUSE.finditer(text)):
        stripped = raw.rstrip()
        ends_sentence = stripped.endswith(("?", "!", ".", ";")) or raw.endswith("\n")
        in_question = stripped.endswith("?")
        tokens = quantity_tokens(raw)
        pieces = _split_conjunctions(tokens, always=listing)
        for index, piece in enumerate(pieces):
            piece_text = _original(raw, piece, last=index == len(pieces) - 1) if len(pieces) > 1 else _trim(raw)
            joined = bool(parts) and parts[-1].sentence == sentence
            body, cue = _strip_cue(list(piece))
            if not body:
                continue
            first = piece[1] if piece[0] in _CONJUNCTIONS and len(piece) > 1 else piece[0]
            if first in _QUESTION_START and cue is None:
                parts.append(_Part(piece_text, None, [], None, False, True, joined, sentence))
                listing = False
                continue
            body, trailing_also = _strip_trailing(body)
            cue = cue or ("also" if trailing_also else None)
            quantity, words, more = _read_segment(body)
            cue = cue or ("also" if more else None)
            while words and words[0] in _DROP_LEADING:
                words = words[1:]
            words, _ = _strip_trailing(words)
            item = bool(words) and (quantity is not None or cue is not None or listing)
            if item and quantity is None and (words[0] in _NOT_ITEM_START or (in_question and cue is None)):
                item = False
            if item and all(w in _PRONOUNS for w in words):
                item = False  # "another one", "две такие": a reference for the engine to resolve
            if item and _is_address(words, quantity):
                item = False
            if item:
                cue = cue or sentence_cue
                sentence_cue = sentence_cue or cue
            parts.append(_Part(piece_text, quantity, words, cue, item, in_question and not item, joined, sentence))
            listing = item
        if ends_sentence:
            sentence += 1
            listing = False
            sentence_cue = None
    # "teapot and two mugs": a bare noun phrase listed right before an item is an item too.
    for i in range(len(parts) - 2, -1, -1):
        part, following = parts[i], parts[i + 1]
        if (
            not part.item
            and not part.question
            and following.item
            and following.joined
            and part.words
            and part.words[0] not in _NOT_ITEM_START
            and len(part.words) <= 4
        ):
            part.item = True
            part.cue = part.cue or following.cue
    items = tuple(
        Segment(quantity=p.quantity, phrase=" ".join(p.words), cue=p.cue, text=p.text) for p in parts if p.item
    )
    return Split(
        items=items,
        rest=tuple(p.text for p in parts if not p.item),
        cue=next((p.cue for p in parts if p.item and p.cue), None),
        questions=tuple(p.text for p in parts if p.question),
    )


_LEADING_CONJUNCTION = re.compile(r"^\s*(?:and|plus|и|а|плюс|&|\+)\s+", re.IGNORECASE)


def _trim(raw: str) -> str:
    """A clause as written, without list punctuation and a leading "and"/"и"."""
    return _LEADING_CONJUNCTION.sub("", raw.strip(" ,;\n\t"))


def _original(raw: str, part: list[str], *, last: bool) -> str:
    """Wording of a part of a clause split at "and"/"и": its normalised words, with the clause's
    closing "?" kept on the last part."""
    words = part[1:] if part and part[0] in _CONJUNCTIONS else part
    text = " ".join(words)
    return text + "?" if last and raw.rstrip().endswith("?") else text
