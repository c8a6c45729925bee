"""Who a service is for, in its name and in a customer's message: men, women or children.

"A haircut for my husband" in a salon with a women's and a men's haircut means the men's one;
"need a haircut" in a barbershop with a men's, a kids' and a haircut-and-beard combo means the plain
men's haircut (a children's service or a combination is chosen only when the message says so).
Pure functions over normalised words (English and Russian); no state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeVar

from knowledge.text import tokenize

Audience = Literal["men", "women", "children"]
K = TypeVar("K")

_EN: dict[str, Audience] = {
    **dict.fromkeys("men mens man male gent gents gentleman gentlemen guy guys husband boyfriend dad father "
                    "brother him he his barber".split(), "men"),
    **dict.fromkeys("women womens woman female lady ladies wife girlfriend mum mom mother sister her she "
                    "hers".split(), "women"),
    **dict.fromkeys("kid kids kiddie child children childrens son daughter boy boys girl girls toddler baby "
                    "junior teen teens".split(), "children"),
}
# Russian word beginnings (every case and the diminutives share them).
_RU: tuple[tuple[str, Audience], ...] = (
    ("мужч", "men"), ("мужск", "men"), ("муж", "men"), ("парн", "men"), ("пап", "men"), ("брат", "men"),
    ("женщ", "women"), ("женск", "women"), ("жен", "women"), ("девушк", "women"), ("мам", "women"),
    ("дет", "children"), ("ребен", "children"), ("ребён", "children"), ("сын", "children"), ("доч", "children"),
    ("мальчик", "children"), ("девоч", "children"), ("школьн", "children"), ("подрост", "children"),
)
_COMBO = frozenset("combo combination package set bundle plus and комплекс комбо пакет и".split())


def audiences(text: str) -> frozenset[Audience]:
    """The audiences ``text`` names ("for my son" → children; "Женская стрижка" → women)."""
    found: set[Audience] = set()
    for word in tokenize(text):
        english = word if word in _EN else word[:-1] if word.endswith("s") and word[:-1] in _EN else None
        if english is not None:  # "son's" is read "sons"
            found.add(_EN[english])
            continue
        for prefix, audience in _RU:
            if word.startswith(prefix):
                found.add(audience)
                break
    return frozenset(found)


def is_combination(name: str) -> bool:
    """Whether a service's name combines services ("Haircut and beard combo", "Стрижка + укладка")."""
    return "+" in name or "&" in name or bool(_COMBO & set(tokenize(name)))


def narrow_by_audience(message: str, names: Iterable[tuple[K, str]]) -> list[K]:
    """The candidates (``(key, service name)`` pairs) that fit who ``message`` says the service is
    for. When the message names an audience, the candidates for it (and those for nobody in
    particular) stay, if any do. When it names none, children's services and combinations are left
    out unless that leaves nothing. Keys come back in the given order."""
    said = audiences(message)
    pairs = list(names)
    if said:
        fitting = [key for key, name in pairs if (audiences(name) & said)]
        return fitting or [key for key, _ in pairs]
    words = set(tokenize(message))
    plain = [key for key, name in pairs
             if "children" not in audiences(name)
             and not (is_combination(name) and len(set(tokenize(name)) & words) < 2)]
    return plain or [key for key, _ in pairs]
