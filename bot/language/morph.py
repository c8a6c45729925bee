"""Word forms: lemmas for matching what customers write against catalogue nouns, and number–noun
agreement for replies.

Russian uses ``pymorphy3`` (OpenCorpora dictionary from ``pymorphy3-dicts-ru``): any case or
number goes to the dictionary form ("лилий" → "лилия", "розу" → "роза"), and diminutives are
undone by suffix rules checked against the dictionary ("ромашечек" → "ромашечка" → "ромашка",
"кружечки" → "кружка", "тюльпанчиков" → "тюльпан", "розочки" → "роза"): a rewrite is kept only
when the dictionary knows the result as a noun of the same gender. English singulars and plurals
come from ``inflection`` (Rails inflector rules: "lilies" → "lily", "scarves" → "scarf");
English keys are Snowball stems (:func:`knowledge.text.stem`, as the knowledge index uses).

The ``MorphAnalyzer`` (~0.2 s, ~15 MB) is created lazily on first use, once per process; every
per-word result is memoised, so steady-state calls cost microseconds.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from knowledge.text import stem

__all__ = [
    "agree",
    "is_russian",
    "lemma",
    "lemma_candidates",
    "match_key",
    "match_keys",
    "phrase_key",
    "plural",
    "russian_parses",
]

_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")

# Diminutive suffix rewrites on dictionary forms, longest first: (suffix, replacement, gender of
# the base). "Strong" rules are unambiguous diminutive suffixes; "weak" rules ("свечка" → "свеча",
# "чашка" → "чаша") also fold lexicalised words and are used only for matching keys.
_STRONG_DIMINUTIVES: tuple[tuple[str, str, str], ...] = (
    ("ечка", "ка", "femn"),  # ромашечка → ромашка, кружечка → кружка, чашечка → чашка
    ("очка", "ка", "femn"),  # коробочка → коробка, сумочка → сумка, тарелочка → тарелка
    ("очка", "а", "femn"),  # розочка → роза
    ("онька", "а", "femn"),
    ("енька", "а", "femn"),
    ("ушка", "а", "femn"),
    ("юшка", "я", "femn"),
    ("ичек", "ик", "masc"),  # чайничек → чайник
    ("ечек", "ок", "masc"),  # цветочек? (цветочек → цветок)
    ("очек", "ок", "masc"),  # цветочек → цветок
    ("чик", "", "masc"),  # тюльпанчик → тюльпан, стаканчик → стакан
    ("ик", "", "masc"),  # шарфик → шарф, букетик → букет
    ("ышко", "о", "neut"),  # пёрышко → перо
    ("ечко", "о", "neut"),
    ("ецо", "о", "neut"),
)
_WEAK_DIMINUTIVES: tuple[tuple[str, str, str], ...] = (
    ("чка", "ча", "femn"),  # свечка → свеча
    ("шка", "ша", "femn"),  # чашка → чаша
)


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    """The process-wide pymorphy3 analyzer (thread-safe for reading)."""
    import pymorphy3  # lazy: loading the dictionaries takes ~0.2 s

    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=1)
def _inflection() -> Any:
    # ``inflection`` (Rails inflector rules) rather than ``inflect``: inflect 7 takes ~4.4 s to
    # import (typeguard instrumentation), which would stall the first English message.
    import inflection

    return inflection


def is_russian(word: str) -> bool:
    """True when ``word`` contains Cyrillic letters."""
    return _CYRILLIC.search(word) is not None


def _clean(word: str) -> str:
    return word.strip().lower().replace("ё", "е")


@lru_cache(maxsize=65536)
def russian_parses(word: str) -> tuple[Any, ...]:
    """pymorphy3 parses of one lower-cased Russian word (memoised), best first."""
    return tuple(_analyzer().parse(word))


_PROPER = frozenset({"Name", "Surn", "Patr", "Abbr", "Orgn", "Geox", "Init", "Trad"})


def _common(parse: Any) -> bool:
    return not (_PROPER & parse.tag.grammemes)


def _best_parse(word: str) -> Any:
    """Best reading for matching: a common noun written in its dictionary form ("носок", not
    the genitive plural of "носка"), else the most probable common noun ("роза", not the name
    Роза nor "ВАЗ"), else any noun, else the analyzer's first reading."""
    parses = russian_parses(word)
    for parse in parses:
        if "NOUN" in parse.tag and _common(parse) and parse.normal_form.replace("ё", "е") == word:
            return parse
    for parse in parses:
        if "NOUN" in parse.tag and _common(parse):
            return parse
    for parse in parses:
        if "NOUN" in parse.tag:
            return parse
    return parses[0] if parses else None


def _first_common(word: str) -> Any:
    """The analyzer's most probable common (not proper-name) reading of ``word``."""
    for parse in russian_parses(word):
        if _common(parse):
            return parse
    return None


def _known_noun(word: str, gender: str) -> bool:
    for parse in russian_parses(word):
        if (
            parse.is_known
            and "NOUN" in parse.tag
            and parse.normal_form.replace("ё", "е") == word
            and gender in parse.tag
            and "Name" not in parse.tag
        ):
            return True
    return False


def _undiminish(word: str, rules: tuple[tuple[str, str, str], ...]) -> str:
    for suffix, replacement, gender in rules:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            candidate = word[: -len(suffix)] + replacement
            if _known_noun(candidate, gender):
                return candidate
    return word


@lru_cache(maxsize=65536)
def _russian_lemma(word: str) -> str:
    parse = _best_parse(word)
    base = parse.normal_form.replace("ё", "е") if parse is not None else word
    if parse is not None and "NOUN" in parse.tag:
        base = _undiminish(base, _STRONG_DIMINUTIVES)
    return base


@lru_cache(maxsize=65536)
def _english_singular(word: str) -> str:
    if len(word) <= 3 or word.endswith(("ss", "us", "is", "ous")):
        return word
    singular = _inflection().singularize(word)
    return singular if isinstance(singular, str) and singular else word


def lemma(word: str, language: str | None = None) -> str:
    """Dictionary form of one word, lower-cased, ``ё`` → ``е``.

    Russian: any case/number to the nominative singular, diminutives undone ("ромашечек" →
    "ромашка", "кружечки" → "кружка", "лилий" → "лилия", "тюльпанчиков" → "тюльпан"); adjectives
    to masculine nominative ("красных" → "красный"). English: plural nouns to the singular
    ("lilies" → "lily", "scarves" → "scarf", "mugs" → "mug"). The script of ``word`` decides the
    language; ``language`` is accepted for symmetry. Words the analyzer does not know keep their
    form (lower-cased).
    """
    del language
    word = _clean(word)
    if not word:
        return word
    if is_russian(word):
        return _russian_lemma(word)
    if word.isalpha():
        return _english_singular(word)
    return word


@lru_cache(maxsize=65536)
def _russian_candidates(word: str) -> tuple[str, ...]:
    best = _russian_lemma(word)
    nouns = [p for p in russian_parses(word) if "NOUN" in p.tag and _common(p)]
    if not nouns:
        return (best,)
    top = max(p.score for p in nouns)
    out = [best]
    for parse in nouns:
        if parse.score >= top / 2:
            candidate = _undiminish(parse.normal_form.replace("ё", "е"), _STRONG_DIMINUTIVES)
            if candidate not in out:
                out.append(candidate)
    return tuple(out)


def lemma_candidates(word: str, language: str | None = None) -> tuple[str, ...]:
    """Every plausible dictionary form of ``word``, :func:`lemma` first: Russian forms are often
    ambiguous between nouns ("носки" → ("носка", "носок"), "часы" → ("часы", "час")); English
    words have one. Index catalogue words under all of their
    candidates (or :func:`match_keys`) and a customer's form will meet the right one."""
    word_clean = _clean(word)
    if is_russian(word_clean):
        return _russian_candidates(word_clean)
    return (lemma(word_clean, language),)


def match_keys(word: str, language: str | None = None) -> frozenset[str]:
    """:func:`match_key` of every :func:`lemma_candidates` entry; two words can denote the same
    catalogue noun when their key sets intersect ("носков" and "Носки" share "носок")."""
    return frozenset(_key_of_lemma(candidate) for candidate in lemma_candidates(word, language))


def _key_of_lemma(base: str) -> str:
    if is_russian(base):
        for _ in range(2):
            reduced = _undiminish(base, _WEAK_DIMINUTIVES)
            if reduced == base:
                break
            base = reduced
        return base
    return stem(base)


@lru_cache(maxsize=65536)
def match_key(word: str, language: str | None = None) -> str:
    """A key equal for every form of the same catalogue noun, for comparing customer words with
    catalogue words (build the catalogue side with the same function).

    Russian: :func:`lemma` plus lexicalised diminutives folded ("свечку"/"свеча" → "свеча",
    "чашечку"/"чашка"/"чаша" → "чаша"). English: the Snowball stem of the singular ("lilies"/
    "lily" → "lili"). Not meant to be shown to anyone.
    """
    return _key_of_lemma(lemma(word, language))


def phrase_key(text: str, language: str | None = None) -> tuple[str, ...]:
    """:func:`match_key` of every word of ``text`` ("две красные розочки" → ("два", "красный",
    "роза")); digits and punctuation are dropped."""
    return tuple(match_key(w, language) for w in _WORD.findall(text))


def _restore_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _agree_russian(n: int, phrase: str) -> str:
    words = phrase.split()
    head = None
    for index, word in enumerate(words):
        parse = _first_common(_clean(word))
        if parse is not None and "NOUN" in parse.tag and "nomn" in parse.tag:
            head = index
            break
    if head is None:
        return phrase
    noun = _first_common(_clean(words[head]))
    gender = "femn" if "femn" in noun.tag else "masc"
    n = abs(n)
    out = []
    for index, word in enumerate(words):
        if index == head:
            agreed = noun.make_agree_with_number(n)
        elif index < head:
            agreed = _agree_adjective(_clean(word), n, gender)
        else:
            agreed = None
        out.append(_restore_case(word, agreed.word) if agreed is not None else word)
    return " ".join(out)


def _agree_adjective(word: str, n: int, gender: str) -> Any:
    """An adjective before the head noun: "1 красная роза", "2 красные розы" (feminine nouns take
    the nominative plural after 2–4), "2 красных чайника", "5 красных роз"."""
    parse = next(
        (p for p in russian_parses(word) if ("ADJF" in p.tag or "PRTF" in p.tag) and "nomn" in p.tag),
        None,
    )
    if parse is None:
        return None
    if n % 10 == 1 and n % 100 != 11:
        return parse
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14 and gender == "femn":
        return parse.inflect({"plur", "nomn"})
    return parse.inflect({"plur", "gent"})


def plural(noun: str, n: int, language: str) -> str:
    """The form of ``noun`` (given in the nominative singular, e.g. a catalogue name) that goes
    with the number ``n``, without the number: ``plural("роза", 5, "ru")`` → ``"роз"``,
    ``plural("красная роза", 2, "ru")`` → ``"красные розы"``, ``plural("mug", 2, "en")`` →
    ``"mugs"``, ``plural("cup of tea", 3, "en")`` → ``"cups of tea"``. Russian: adjectives before
    the head noun agree too; words after it ("роза Эквадор") are kept. Words the dictionary does
    not know are returned unchanged.
    """
    return _plural(noun, abs(n) % 100 if (language == "ru" or is_russian(noun)) else min(abs(n), 2), language)


@lru_cache(maxsize=8192)
def _plural(noun: str, n: int, language: str) -> str:
    if not noun.strip():
        return noun
    if language == "ru" or is_russian(noun):
        return _agree_russian(n, noun.strip())
    noun = noun.strip()
    if abs(n) == 1:
        return noun
    head, of, tail = noun.partition(" of ")  # "cup of tea" → "cups of tea"
    return f"{_inflection().pluralize(head)}{of}{tail}"


def agree(n: int, noun: str, language: str) -> str:
    """``n`` and ``noun`` agreed for a reply: ``agree(1, "роза", "ru")`` → ``"1 роза"``,
    ``agree(2, "роза", "ru")`` → ``"2 розы"``, ``agree(5, "роза", "ru")`` → ``"5 роз"``,
    ``agree(21, "роза", "ru")`` → ``"21 роза"``, ``agree(3, "mug", "en")`` → ``"3 mugs"``.
    See :func:`plural` for the rules."""
    return f"{n} {plural(noun, n, language)}"
