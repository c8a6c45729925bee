"""Russian word roots shared by a verb and the service noun made from it: "покраситься" and
"Окрашивание", "подстричься" and "Стрижка", "постричь" and "стрижку".

A customer asks for a service with a verb ("хочу покраситься в субботу"); the catalogue names it with
a noun. :func:`root_keys` strips the reflexive and verb/noun endings, undoes the common consonant
alternations at the end of the root (ж/з/д → г, ш → с, ч → к/г, щ → ст) and offers the root with and
without a prefix; two words share a root when their key sets meet. Pure functions, no state.
"""

from __future__ import annotations

from functools import lru_cache

_ENDINGS = tuple(sorted("""
    ивание ывание ование евание ение ание ирование
    ироваться ировать оваться овать еваться евать иваться ивать ываться ывать
    иться аться яться еться уться ить ать ять еть уть ти ть
    ками ках кам ку ки кой ке ка ок
    ием ия ие ий ью ь
""".split(), key=len, reverse=True))
_PREFIXES = ("пере", "под", "при", "рас", "раз", "пре", "про", "вы", "за", "на", "об", "от", "по", "до", "с", "у", "о")
_ALTERNATIONS = {"ж": ("г", "з", "д"), "ш": ("с", "х"), "ч": ("к", "г", "т"), "щ": ("ст", "ск")}
MIN_ROOT = 3


def is_russian_verb(word: str) -> bool:
    """Whether ``word`` looks like a Russian infinitive ("покраситься", "подстричь", "помыть")."""
    w = word.lower()
    return any(w.endswith(e) for e in ("ть", "ться", "тись", "чь", "чься", "ти"))


@lru_cache(maxsize=4096)
def root_keys(word: str) -> frozenset[str]:
    """The possible roots of a Russian ``word`` (lower case, ``ё`` read as ``е``), each at least
    three letters: "окрашивание" → {"окрас", "крас", ...}; empty for a word too short to tell."""
    w = word.lower().replace("ё", "е")
    for reflexive in ("ся", "сь"):
        if w.endswith(reflexive) and len(w) > 5:
            w = w[: -len(reflexive)]
            break
    stem = w
    for ending in _ENDINGS:
        if stem.endswith(ending) and len(stem) - len(ending) >= MIN_ROOT:
            stem = stem[: -len(ending)]
            break
    stems = {stem}
    last = stem[-1:]
    for alt in _ALTERNATIONS.get(last, ()):
        stems.add(stem[:-1] + alt)
    keys: set[str] = set()
    for s in stems:
        keys.add(s)
        for prefix in _PREFIXES:
            if s.startswith(prefix) and len(s) - len(prefix) >= MIN_ROOT:
                keys.add(s[len(prefix):])
    return frozenset(k for k in keys if len(k) >= MIN_ROOT + 1)


def shares_root(verb: str, noun: str) -> bool:
    """Whether ``verb`` and ``noun`` share a root ("покраситься", "окрашивание" → True)."""
    return bool(root_keys(verb) & root_keys(noun))
