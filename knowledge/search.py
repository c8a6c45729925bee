"""Retrieval over one company's knowledge base: items (with their variants) and FAQ.

The index is built in memory from immutable snapshots (:class:`ItemView`, :class:`VariantView`),
so it is safe to cache across sessions and requests. Matching works on Snowball stems
(:func:`knowledge.text.stem`); a query word that is not in the index vocabulary is corrected to the
nearest vocabulary word with rapidfuzz (same first letter, length-aware edit budget); ranking is
BM25 (bm25s) over a whole-item document plus a name-only document, with boosts for items whose
name is what the customer said. Results below a coverage threshold are dropped, so gibberish and
off-topic messages give empty lists.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.heap import freeze_new
from core.models import Company, FaqEntry, KnowledgeItem, KnowledgeVariant
from knowledge.text import has_cyrillic, normalize, stem, tokenize

if TYPE_CHECKING:
    from knowledge.snapshot import SnapshotStore

__all__ = [
    "FaqHit",
    "ItemTables",
    "FaqView",
    "ItemHit",
    "ItemView",
    "KnowledgeIndex",
    "KnowledgeIndexCache",
    "LazyItems",
    "VariantView",
    "build_index",
]

# --- vocabulary -------------------------------------------------------------------------------

# Function words: never meaningful for retrieval.
_FUNCTION_WORDS = frozenset(
    """
    a an the i me my mine we us our you your yours he she it its they them their this that these those
    there here is are am was were be been being do does did doing done have has had having can could
    would will shall should may might must of in on at for to from with without by about as into onto
    and or but if so than then too also just only very really any some all each every no not yes
    what whats which who whom whose where when why how hows im ive id ill youre dont doesnt isnt
    arent cant wont didnt something anything nothing hi hey hello thanks thank ok okay oh ah um well
    pls plz please
    я мне меня мной мы нас нам ты тебе тебя вы вас вам ваш ваша ваше ваши вашей вашего он она оно
    они его ее их им ему ей этот эта это эти этого этой этом тот та то те там тут здесь и а но или
    ли же бы не ни да нет в во на с со к ко у о об от до по за из для при про под над без через
    как что чем где когда почему зачем какой какая какое какие каких кто чей нибудь либо ну вот еще уже
    только тоже также очень привет здравствуйте здравствуй спасибо
    быть буду будешь будет будем будете будут был была было были будь будьте
    благодарю пожалуйста плиз ок окей хорошо ладно
    """.split()
)
# Intent and chit-chat words: what the customer wants to do, not which item. Dropped from item
# queries unless the word is part of an item name in this knowledge base (a florist may sell a
# "Корзина роз"); FAQ queries keep them but need at least one other word to match.
_INTENT_WORDS = frozenset(
    """
    want wanna need like love would get give buy purchase order add put take grab bring send show
    tell find looking look search sell selling have got much many cost costs price prices priced
    pricing cheap expensive cheaper cheapest item items product products thing things
    cart basket checkout size sizes color colour colours colors pc pcs piece pieces x more another
    available availability stock left
    good morning evening afternoon night bye goodbye
    one two three four five six seven eight nine ten eleven twelve pair pairs couple dozen half
    хочу хотим хотел хотела хотелось хотите хочется хотят нужно нужен нужна нужны надо дайте дай
    купить куплю купи закажу заказать заказ заказа заказываю оформить оформи добавь добавьте
    добавить положи положите положить возьму взять беру покажи покажите показать пришлите
    подскажите подскажи есть имеется имеются наличии сколько стоит стоят стоимость стоимостью цена
    цены цену ценой почем почём дешевле дорого дешево корзина корзину корзине корзины товар товары
    штук штуки штука шт размер размера размеры цвет цвета цвете
    добрый доброе доброй день вечер утро ночи свидания пока
    один одна одно одну одного одной два две двух три трех четыре пять шесть семь восемь девять
    десять одиннадцать двенадцать пара пару пары дюжина дюжину полдюжины
    """.split()
)
# Service and small-talk words: delivery, payment, returns, opening hours, people, the weather; never
# about which item. Dropped from item queries (unless an item name has them); they stay topic words
# for FAQ queries.
_SERVICE_WORDS = frozenset(
    """
    pay paying paid payment payments card cards cash deliver delivery delivered deliveries shipping ship
    shipped courier pickup return returns refund refunds exchange address manager operator human
    person bot receipt invoice discount discounts promo code coupon track tracking status cancel
    оплата оплату оплаты оплатить оплачу карта картой карты наличные наличными доставка доставку
    доставки доставить доставите доставляете курьер курьером самовывоз возврат вернуть обмен
    обменять адрес менеджер менеджера оператор оператора человек чек скидка скидку скидки промокод
    отменить отмена статус
    time today tomorrow weather open opening close closed hours
    погода время сегодня завтра открыты работаете часы
    """.split()
)
# Small synonym groups used to widen FAQ queries ("shipping" finds the delivery answer).
_FAQ_SYNONYMS = (
    "delivery deliver delivered shipping ship shipped courier bring brought send sent",
    "payment pay paying paid card cards cash",
    "prepay prepayment prepaid upfront advance deposit",
    "return returns refund refunds exchange",
    "hours open opening schedule",
    "address location located",
    "доставка доставку доставки доставите доставляете доставить доставят курьер",
    "оплата оплату оплатить оплачивать платить заплатить карта картой карты наличные наличными",
    "предоплата предоплату предоплаты предоплатой заранее аванс депозит",
    "возврат вернуть обмен обменять",
    "адрес находитесь",
    "график часы работаете открыты",
)
# Latin size abbreviations, expanded on both sides when matching variants ("M" == "Medium").
_SIZE_ALIASES = {
    "xs": ("extra", "small"),
    "s": ("small",),
    "m": ("medium",),
    "l": ("large",),
    "xl": ("extra", "large"),
    "xxl": ("xx", "large"),
}
_DEFAULT_VARIANT_VALUES = frozenset({"default title", "default"})

_NAME_WEIGHT = 1.5  # name-only BM25 is added to the whole-item BM25 with this weight
_CANDIDATES = 64  # items re-ranked per query after BM25
_MIN_COVERAGE = 0.5  # share of the query's item words an item must contain
_RELATIVE_CUTOFF = 0.2  # hits scoring below this share of the best one are dropped
_FAQ_RELATIVE_CUTOFF = 0.35
_WHOLE_NAME_CUTOFF = 88  # rapidfuzz (partial) ratio for the glued-words fallback ("varsitytop", "bean bag")
_FUZZY_CANDIDATES = 256  # names scored by rapidfuzz in that fallback (those sharing most trigrams with the query)


@dataclass(frozen=True, slots=True)
class VariantView:
    """Immutable snapshot of a :class:`~core.models.KnowledgeVariant`. ``options`` maps option
    name to value (read-only); ``price_minor``/``stock`` are ``None`` when the item's own apply."""

    id: uuid.UUID
    item_id: uuid.UUID
    name: str
    options: Mapping[str, Any] = field(hash=False)
    sku: str | None
    price_minor: int | None
    stock: int | None
    image_url: str | None
    position: int


@dataclass(frozen=True, slots=True)
class ItemView:
    """Immutable snapshot of a :class:`~core.models.KnowledgeItem` with its variants (in
    position order). Money is in minor units of ``currency``; ``stock`` is ``None`` when untracked."""

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    company_id: uuid.UUID | None
    kind: str
    name: str
    description: str
    category: str | None
    price_minor: int | None
    currency: str
    stock: int | None
    image_url: str | None
    duration_minutes: int | None
    handle: str | None
    sku: str | None
    position: int
    attributes: Mapping[str, Any] = field(hash=False)
    variants: tuple[VariantView, ...] = ()

    def variant(self, variant_id: uuid.UUID) -> VariantView | None:
        """This item's variant with ``variant_id``, or ``None``."""
        for variant in self.variants:
            if variant.id == variant_id:
                return variant
        return None

    @classmethod
    def from_model(cls, item: KnowledgeItem | ItemView) -> ItemView:
        """Snapshot an ORM item (its ``variants`` must be loaded). Raises ``ValueError`` when the
        item or a variant has no ``id`` yet (set it or flush first)."""
        if isinstance(item, ItemView):
            return item
        return _item_view(item, item.variants or ())


def _item_view(item: KnowledgeItem, variants: Iterable[KnowledgeVariant]) -> ItemView:
    if item.id is None:
        raise ValueError(f"knowledge item {item.name!r} has no id; set one or flush it first")
    views = sorted((_variant_view(item.id, v, i) for i, v in enumerate(variants)), key=lambda v: v.position)
    return ItemView(
        id=item.id,
        tenant_id=item.tenant_id,
        company_id=item.company_id,
        kind=item.kind or "product",
        name=item.name,
        description=item.description or "",
        category=item.category,
        price_minor=item.price_minor,
        currency=item.currency,
        stock=item.stock,
        image_url=item.image_url,
        duration_minutes=item.duration_minutes,
        handle=item.handle,
        sku=item.sku,
        position=item.position or 0,
        attributes=MappingProxyType(dict(item.attributes or {})),
        variants=tuple(views),
    )


def _variant_view(item_id: uuid.UUID, v: KnowledgeVariant, index: int) -> VariantView:
    if v.id is None:
        raise ValueError(f"knowledge variant {v.name!r} has no id; set one or flush it first")
    return VariantView(
        id=v.id,
        item_id=item_id,
        name=v.name,
        options=MappingProxyType(dict(v.options or {})),
        sku=v.sku,
        price_minor=v.price_minor,
        stock=v.stock,
        image_url=v.image_url,
        position=v.position if v.position is not None else index,
    )


@dataclass(frozen=True, slots=True)
class FaqView:
    """Immutable snapshot of a :class:`~core.models.FaqEntry`."""

    id: uuid.UUID
    question: str
    answer: str
    position: int

    @classmethod
    def from_model(cls, entry: FaqEntry | FaqView) -> FaqView:
        """Snapshot an ORM FAQ row; raises ``ValueError`` when it has no ``id`` yet."""
        if isinstance(entry, FaqView):
            return entry
        if entry.id is None:
            raise ValueError("FAQ entry has no id; set one or flush it first")
        return cls(id=entry.id, question=entry.question, answer=entry.answer or "", position=entry.position or 0)


@dataclass(frozen=True, slots=True)
class ItemHit:
    """One item found by :meth:`KnowledgeIndex.search_items`. ``score`` is a ranking score (BM25
    with name boosts), comparable only within one result list; ``matched_terms`` are the query's
    normalised words (as typed) that matched this item, in query order."""

    item_id: uuid.UUID
    name: str
    score: float
    matched_terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FaqHit:
    """One FAQ entry found by :meth:`KnowledgeIndex.search_faq`; ``score`` as in :class:`ItemHit`."""

    faq_id: uuid.UUID
    question: str
    answer: str
    score: float


# --- building blocks -------------------------------------------------------------------------


class _Vocabulary:
    """Stems and surface words of one corpus, with typo correction of query words."""

    def __init__(self) -> None:
        self.stem_freq: dict[str, int] = {}
        self.word_stem: dict[str, str] = {}
        self._buckets: dict[tuple[str, int], list[str]] | None = None
        self._corrections: dict[str, str | None] = {}

    def add(self, words: Iterable[str]) -> None:
        for word in words:
            s = stem(word)
            self.word_stem.setdefault(word, s)
            self.stem_freq[s] = self.stem_freq.get(s, 0) + 1

    def plain(self) -> list[Any]:
        """Stem counts, words' stems (the dicts themselves) and the correction buckets (for a snapshot)."""
        buckets = [[first, length, words] for (first, length), words in self._bucket_index().items()]
        return [self.stem_freq, self.word_stem, buckets]

    @classmethod
    def from_plain(cls, plain: Sequence[Any]) -> _Vocabulary:
        """The vocabulary :meth:`plain` described; raises ``ValueError`` on a malformed one."""
        stem_freq, word_stem, buckets = plain
        if not isinstance(stem_freq, dict) or not isinstance(word_stem, dict):
            raise ValueError("a vocabulary of another shape")
        vocabulary = cls()
        vocabulary.stem_freq = stem_freq
        vocabulary.word_stem = word_stem
        vocabulary._buckets = {(str(first), int(length)): list(words) for first, length, words in buckets}
        return vocabulary

    def add_counts(self, counts: Mapping[str, int]) -> None:
        """Like :meth:`add` with each word repeated its count (a whole catalogue counted with a
        ``Counter`` first: one stem call per distinct word instead of one per occurrence)."""
        for word, count in counts.items():
            s = stem(word)
            self.word_stem.setdefault(word, s)
            self.stem_freq[s] = self.stem_freq.get(s, 0) + count

    def prepare(self) -> None:
        """Build the correction buckets now (at index build, off the event loop) rather than on the
        first misspelt word of a customer."""
        self._bucket_index()

    def _bucket_index(self) -> dict[tuple[str, int], list[str]]:
        """Vocabulary words (and stems) by first letter and length: a correction within ``k`` edits has
        the same first letter and a length within ``k``, so only those buckets are scanned (the scan
        stays small however large the catalogue)."""
        if self._buckets is None:
            buckets: dict[tuple[str, int], list[str]] = {}
            for word in sorted(set(self.word_stem) | set(self.stem_freq)):
                if word and not word.isdigit():
                    buckets.setdefault((word[0], len(word)), []).append(word)
            self._buckets = buckets
        return self._buckets

    def _pool(self, first: str, length: int, edits: int) -> list[str]:
        buckets = self._bucket_index()
        pool: list[str] = []
        for n in range(max(1, length - edits), length + edits + 1):
            pool.extend(buckets.get((first, n), ()))
        pool.sort()  # the order a scan of the whole vocabulary had (ties are broken alike)
        return pool

    def resolve(self, word: str) -> str | None:
        """The vocabulary stem ``word`` stands for: its own stem when known, else the stem of the
        nearest vocabulary word (typo correction), else ``None``."""
        s = stem(word)
        if s in self.stem_freq:
            return s
        if word in self._corrections:
            return self._corrections[word]
        corrected = self._correct(word, s)
        if len(self._corrections) < 50_000:
            self._corrections[word] = corrected
        return corrected

    def _correct(self, word: str, word_stem: str) -> str | None:
        if word.isdigit():
            return None
        if not word:
            return None
        best: tuple[float, int, str] | None = None
        for query in dict.fromkeys((word, word_stem)):
            n = len(query)
            if n < 3:
                continue
            max_edits = 1 if n <= 5 else 2 if n <= 9 else 3
            pool = self._pool(word[0], n, max_edits)
            if not pool:
                continue
            cutoff = 85.0 if n == 3 else 75.0
            for candidate, score, _ in process.extract(query, pool, scorer=fuzz.ratio, score_cutoff=cutoff, limit=8):
                if OSA.distance(query, candidate) > max_edits:
                    continue
                target = self.word_stem.get(candidate, candidate)
                if target not in self.stem_freq:
                    continue
                key = (score, self.stem_freq[target], target)
                if best is None or key[:2] > best[:2]:
                    best = key
        return best[2] if best else None


@lru_cache(maxsize=16384)
def _short_tokens(text: str) -> tuple[str, ...]:
    """Tokens of a short, often repeated string (variant values, categories)."""
    return tuple(tokenize(text))


def _bm25(docs: list[list[str]]) -> Any:
    import bm25s

    # bm25s sets its logger to DEBUG when imported, so every index build printed "Building index from
    # tokens" through the app's log handler (on stderr of every CLI chat). Its debug lines are not ours.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    model = bm25s.BM25()
    model.index(docs, show_progress=False)
    return model


def _scores(model: Any, terms: list[str], size: int) -> np.ndarray:
    present = [t for t in terms if t in model.vocab_dict]
    if not present:
        return np.zeros(size, dtype=np.float32)
    return np.asarray(model.get_scores(present), dtype=np.float32)


@dataclass(slots=True)
class _QueryTerm:
    word: str  # normalised word as typed
    alternatives: frozenset[str]  # vocabulary stems the word stands for; empty when unknown


@dataclass(slots=True)
class _ItemDoc:
    name_terms: tuple[str, ...]
    strong_terms: tuple[str, ...]  # name, variant values, category, tags
    other_terms: tuple[str, ...]  # description words that are not strong terms
    glued_name: str


class _DocTerms:
    """The distinct stems of every item's name, strong words and other words, as one CSR table of
    stem numbers (``terms``: int32, ``offsets``: int64, three rows per item) over ``stems``: a
    catalogue of 100,000 items keeps a few MiB of numbers instead of 300,000 tuples of strings (and
    a snapshot maps the arrays from disk). Only the few re-ranked candidates of a query are read."""

    def __init__(self, *, stems: list[str], terms: np.ndarray, offsets: np.ndarray, glued: list[str]) -> None:
        self.stems = stems
        self.terms = terms
        self.offsets = offsets
        self.glued = glued

    @property
    def nbytes(self) -> int:
        return int(self.terms.nbytes + self.offsets.nbytes)

    def doc(self, idx: int) -> _ItemDoc:
        """The terms of the item at position ``idx``."""
        a, b, c, d = self.offsets[3 * idx : 3 * idx + 4].tolist()
        ids = self.terms[a:d].tolist()
        stems = self.stems
        return _ItemDoc(
            name_terms=tuple(stems[i] for i in ids[: b - a]),
            strong_terms=tuple(stems[i] for i in ids[b - a : c - a]),
            other_terms=tuple(stems[i] for i in ids[c - a :]),
            glued_name=self.glued[idx],
        )


class _DocTermsBuilder:
    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._stems: list[str] = []
        self._terms: list[int] = []
        self._offsets: list[int] = [0]
        self._glued: list[str] = []

    def _id(self, term: str) -> int:
        found = self._ids.get(term)
        if found is None:
            found = self._ids[term] = len(self._stems)
            self._stems.append(term)
        return found

    def add(self, name_terms: Iterable[str], strong_terms: Iterable[str], other_terms: Iterable[str],
            glued_name: str) -> None:
        for terms in (name_terms, strong_terms, other_terms):
            self._terms.extend(self._id(t) for t in terms)
            self._offsets.append(len(self._terms))
        self._glued.append(glued_name)

    def done(self) -> _DocTerms:
        return _DocTerms(stems=self._stems, terms=np.asarray(self._terms, dtype=np.int32),
                         offsets=np.asarray(self._offsets, dtype=np.int64), glued=self._glued)


class _GramIndex:
    """Character trigrams of the items' glued names (``"classicvarsitytop"``) → the items having them,
    as sorted arrays (a CSR posting list built with numpy). Gives the fuzzy whole-name fallback a few
    candidates sharing trigrams with the query instead of a scan of every name: a name within
    rapidfuzz ratio 88 of a query of six or more letters shares at least one trigram with it."""

    def __init__(self, names: Sequence[str]) -> None:
        self.size = len(names)
        self._keys: np.ndarray
        self._starts: np.ndarray
        self._owners: np.ndarray
        joined = "\x00".join(names)
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        lengths = np.fromiter((len(name) + 1 for name in names), dtype=np.int64, count=len(names))
        owners = np.repeat(np.arange(len(names), dtype=np.int32), lengths)[: codes.size]
        if codes.size < 3:
            self._keys = np.zeros(0, dtype=np.int64)
            self._starts = np.zeros(1, dtype=np.int64)
            self._owners = np.zeros(0, dtype=np.int32)
            return
        grams = (codes[:-2] << 42) | (codes[1:-1] << 21) | codes[2:]  # code points are below 2**21
        valid = (codes[:-2] != 0) & (codes[1:-1] != 0) & (codes[2:] != 0)
        grams, owners = grams[valid], owners[:-2][valid]
        order = np.lexsort((owners, grams))
        grams, owners = grams[order], owners[order]
        fresh = np.ones(grams.size, dtype=bool)
        fresh[1:] = (grams[1:] != grams[:-1]) | (owners[1:] != owners[:-1])
        grams, owners = grams[fresh], owners[fresh]
        self._keys, starts = np.unique(grams, return_index=True)
        self._starts = np.append(starts, grams.size).astype(np.int64)
        self._owners = owners.astype(np.int32)

    @classmethod
    def from_arrays(cls, *, size: int, keys: np.ndarray, starts: np.ndarray, owners: np.ndarray) -> _GramIndex:
        """An index from the arrays of :meth:`arrays` (e.g. memory-mapped from a snapshot)."""
        grams = cls([])
        grams.size, grams._keys, grams._starts, grams._owners = size, keys, starts, owners
        return grams

    def arrays(self) -> dict[str, np.ndarray]:
        """The posting arrays (``keys``, ``starts``, ``owners``)."""
        return {"keys": self._keys, "starts": self._starts, "owners": self._owners}

    @property
    def nbytes(self) -> int:
        return int(self._keys.nbytes + self._starts.nbytes + self._owners.nbytes)

    def candidates(self, text: str, *, limit: int) -> list[int]:
        """Positions of at most ``limit`` names sharing the most trigrams with ``text`` (at least one)."""
        if len(text) < 3 or not self._keys.size:
            return []
        points = [ord(ch) for ch in text]
        wanted = np.unique(np.array([(a << 42) | (b << 21) | c for a, b, c in zip(points, points[1:], points[2:],
                                                                                  strict=False)], dtype=np.int64))
        at = np.searchsorted(self._keys, wanted)
        inside = at < self._keys.size
        at, wanted = at[inside], wanted[inside]
        at = at[self._keys[at] == wanted]
        if not at.size:
            return []
        postings = np.concatenate([self._owners[self._starts[i] : self._starts[i + 1]] for i in at.tolist()])
        counts = np.bincount(postings, minlength=self.size)
        found = np.flatnonzero(counts)
        if found.size > limit:
            found = found[np.argpartition(-counts[found], limit - 1)[:limit]]
        return sorted(found.tolist())


@dataclass(slots=True)
class _VariantKey:
    variant_id: uuid.UUID
    values: tuple[frozenset[str], ...]  # each option value as a set of stems


@dataclass(slots=True)
class _VariantTables:
    """How the variant lookups were built, to be stored in a snapshot: the distinct option-value stem
    sets (``values``), the distinct variant vocabularies and the words each was made from, and per item
    with named variants ``(item position, vocabulary number, value-set number per variant)``."""

    values: list[tuple[frozenset[str], ...]] = field(default_factory=list)
    vocabularies: list[_Vocabulary] = field(default_factory=list)
    vocabulary_words: list[tuple[str, ...]] = field(default_factory=list)
    rows: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)


@dataclass(slots=True)
class ItemTables:
    """Everything :class:`KnowledgeIndex` derives from its items (vocabularies, BM25 models, term and
    trigram tables, variant lookups): what building costs, and what a snapshot stores
    (``knowledge.snapshot``). :meth:`plain` gives lists and strings (for msgpack), :meth:`arrays` the
    numpy arrays, ``full_bm25``/``name_bm25`` the ``bm25s.BM25`` models (``None`` without items)."""

    item_vocab: _Vocabulary
    name_words: _Vocabulary
    name_vocab: frozenset[str]
    docs: _DocTerms
    grams: _GramIndex
    full_bm25: Any
    name_bm25: Any
    variants: _VariantTables

    def plain(self) -> dict[str, Any]:
        """The tables as lists, strings and numbers."""
        return {
            "item_vocab": self.item_vocab.plain(),
            "name_words": self.name_words.plain(),
            "name_vocab": sorted(self.name_vocab),
            "doc_stems": self.docs.stems,
            "glued": self.docs.glued,
            "variant_values": [[sorted(value) for value in values] for values in self.variants.values],
            "variant_words": [list(words) for words in self.variants.vocabulary_words],
            "variant_rows": [[pos, vocab, list(numbers)] for pos, vocab, numbers in self.variants.rows],
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The numeric tables (saved as ``.npy`` files, mapped from disk when loaded)."""
        grams = self.grams.arrays()
        return {"doc_terms": self.docs.terms, "doc_offsets": self.docs.offsets, "gram_keys": grams["keys"],
                "gram_starts": grams["starts"], "gram_owners": grams["owners"]}

    @classmethod
    def from_parts(cls, *, items: int, plain: Mapping[str, Any], arrays: Mapping[str, np.ndarray], full_bm25: Any,
                   name_bm25: Any) -> ItemTables:
        """Tables of an index of ``items`` items from :meth:`plain`, :meth:`arrays` and the two models.
        Raises ``ValueError`` (or ``KeyError``/``TypeError``) when they do not fit together (a corrupt
        or foreign snapshot): sizes, stem numbers and item positions are all checked."""
        stems = list(plain["doc_stems"])
        glued = list(plain["glued"])
        terms, offsets = arrays["doc_terms"], arrays["doc_offsets"]
        keys, starts, owners = arrays["gram_keys"], arrays["gram_starts"], arrays["gram_owners"]
        if len(glued) != items or offsets.shape != (3 * items + 1,) or terms.ndim != 1 or starts.ndim != 1:
            raise ValueError("item tables do not match the items")
        if int(offsets[0]) != 0 or int(offsets[-1]) != terms.size or bool(np.any(np.diff(offsets) < 0)):
            raise ValueError("term offsets are inconsistent")
        if terms.size and (int(terms.min()) < 0 or int(terms.max()) >= len(stems)):
            raise ValueError("term numbers out of range")
        if starts.size != keys.size + 1 or int(starts[-1]) != owners.size or (
                owners.size and (int(owners.min()) < 0 or int(owners.max()) >= items)):
            raise ValueError("trigram postings are inconsistent")
        for model in (full_bm25, name_bm25):
            if (model is None) != (items == 0) or (model is not None and int(model.scores["num_docs"]) != items):
                raise ValueError("a BM25 model does not match the items")
        tables = _VariantTables()
        tables.values = [tuple(frozenset(value) for value in values) for values in plain["variant_values"]]
        for words in plain["variant_words"]:
            vocabulary = _Vocabulary()
            vocabulary.add(words)
            tables.vocabularies.append(vocabulary)
            tables.vocabulary_words.append(tuple(words))
        for pos, vocab, numbers in plain["variant_rows"]:
            if not 0 <= pos < items or not 0 <= vocab < len(tables.vocabularies) or any(
                    not 0 <= n < len(tables.values) for n in numbers):
                raise ValueError("variant tables out of range")
            tables.rows.append((pos, vocab, tuple(numbers)))
        return cls(
            item_vocab=_Vocabulary.from_plain(plain["item_vocab"]),
            name_words=_Vocabulary.from_plain(plain["name_words"]),
            name_vocab=frozenset(plain["name_vocab"]),
            docs=_DocTerms(stems=stems, terms=terms, offsets=offsets, glued=glued),
            grams=_GramIndex.from_arrays(size=items, keys=keys, starts=starts, owners=owners),
            full_bm25=full_bm25,
            name_bm25=name_bm25,
            variants=tables,
        )


def _canonical_variant_stems(words: Iterable[str]) -> list[str]:
    out: list[str] = []
    for word in words:
        out.extend(stem(w) for w in _SIZE_ALIASES.get(word, (word,)))
    return out


class LazyItems(Sequence[ItemView]):
    """The items of a loaded snapshot, each decoded into an :class:`ItemView` the first time it is
    asked for (then kept): a 100,000-item catalogue is loaded without creating 100,000 views, of
    which a conversation reads a handful. ``rows`` are the stored rows in position order,
    ``decode(row)`` makes the view, ``ids`` are the items' UUIDs as 16 bytes, ``service_positions``
    the positions of the items of kind ``service``, ``approx_bytes`` their rough memory."""

    def __init__(self, *, rows: Sequence[Any], decode: Callable[[Any], ItemView], ids: Sequence[bytes],
                 service_positions: Sequence[int], approx_bytes: int) -> None:
        if len(ids) != len(rows):
            raise ValueError("one id per row is needed")
        self._rows = rows
        self._decode = decode
        self._views: list[ItemView | None] = [None] * len(rows)
        self._positions = dict(zip(ids, range(len(ids)), strict=True))
        if len(self._positions) != len(ids):
            raise ValueError("item ids repeat")
        self.service_positions = tuple(service_positions)
        self.approx_bytes = approx_bytes

    def __len__(self) -> int:
        return len(self._views)

    def __getitem__(self, index: int) -> ItemView:  # type: ignore[override]
        view = self._views[index]
        if view is None:
            view = self._views[index] = self._decode(self._rows[index])
        return view

    def position(self, item_id: uuid.UUID) -> int:
        """The position of the item ``item_id``; raises ``KeyError`` when there is none."""
        found = self._positions.get(getattr(item_id, "bytes", None))  # type: ignore[arg-type]
        if found is None:
            raise KeyError(item_id)
        return found


# --- the index --------------------------------------------------------------------------------


class KnowledgeIndex:
    """In-memory index of one company's KB (items with their variants, FAQ).

    Build with :meth:`build`; instances are immutable after building and safe to share between
    concurrent requests of the same company.
    """

    def __init__(
        self,
        *,
        company_id: uuid.UUID,
        items: Sequence[ItemView],
        faq: Sequence[FaqView],
        tables: ItemTables | None = None,
    ) -> None:
        self.company_id = company_id
        self._items: list[ItemView] | LazyItems
        self._by_id: dict[uuid.UUID, ItemView] | None = None
        self._variant_rows: dict[int, tuple[int, tuple[int, ...]]] = {}
        if isinstance(items, LazyItems):  # a snapshot's: items are decoded when first asked for
            self._items = items
            services = tuple(items[i].id for i in items.service_positions)
        else:
            self._items = list(items)
            self._by_id = {item.id: item for item in self._items}
            services = tuple(item.id for item in self._items if item.kind == "service")
        self._faq = list(faq)
        if tables is None:
            self._build_items()
        else:
            self._adopt(tables)
        self._build_faq()
        # What the dialogue engine asks on every message, answered once here instead of by a scan of
        # every item per message.
        self.service_ids: tuple[uuid.UUID, ...] = services
        """Ids of the items of kind ``"service"``, in position order."""
        self.has_services: bool = bool(services)
        """Whether the company sells services (takes bookings)."""
        self.services_only: bool = len(services) == len(self._items)
        """Whether every item is a service (also ``True`` for an empty catalogue)."""
        self.approx_bytes: int = self._estimate_bytes()
        """Rough memory this index keeps, in bytes (for the cache's memory budget)."""

    @classmethod
    def build(
        cls,
        *,
        company_id: uuid.UUID,
        items: Sequence[KnowledgeItem | ItemView],
        faq: Sequence[FaqEntry | FaqView],
    ) -> KnowledgeIndex:
        """Index ``items`` (ORM rows with variants loaded, or :class:`ItemView` snapshots) and
        ``faq`` of company ``company_id``. Items are kept in ``position`` order. Raises
        ``ValueError`` for a row without an ``id`` or one belonging to another company."""
        views = [ItemView.from_model(item) for item in items]
        faq_views = [FaqView.from_model(entry) for entry in faq]
        for view in views:
            if view.company_id is not None and view.company_id != company_id:
                raise ValueError(f"item {view.id} belongs to company {view.company_id}, not {company_id}")
        for entry, view in zip(faq, faq_views, strict=True):
            entry_company = getattr(entry, "company_id", None)
            if entry_company is not None and entry_company != company_id:
                raise ValueError(f"FAQ entry {view.id} belongs to company {entry_company}, not {company_id}")
        views.sort(key=lambda v: v.position)
        faq_views.sort(key=lambda v: v.position)
        return cls(company_id=company_id, items=views, faq=faq_views)

    # -- accessors --

    def knows_word(self, word: str) -> bool:
        """Whether ``word`` (one lower-case word) has the stem of a word of the item texts (names,
        variants, categories, descriptions): callers that can lemmatise ("ромашечек" → "ромашка") use
        it to decide which form to search with."""
        return stem(word) in self._item_vocab.stem_freq

    def item(self, item_id: uuid.UUID) -> ItemView:
        """The item with ``item_id``; raises ``KeyError`` when this company has none."""
        if self._by_id is not None:
            return self._by_id[item_id]
        return self._items[self._items.position(item_id)]  # type: ignore[union-attr]

    def items(self) -> list[ItemView]:
        """All items in position order (a new list: O(items); per message, prefer :attr:`has_services`,
        :attr:`services_only`, :attr:`service_ids`, :attr:`name_stems` or :meth:`item`)."""
        return list(self._items)

    @property
    def item_count(self) -> int:
        """Number of items (no ``__len__``: an index of an empty catalogue is still an index, not falsy)."""
        return len(self._items)

    @property
    def name_stems(self) -> frozenset[str]:
        """Stems of the words of all item names (what a customer may call an item)."""
        return self._name_vocab

    def _estimate_bytes(self) -> int:
        if isinstance(self._items, LazyItems):
            per_item = self._items.approx_bytes
        else:
            per_item = sum(900 + len(item.name) + len(item.description) + 400 * len(item.variants)
                           for item in self._items)
        arrays = self._grams.nbytes + self._docs.nbytes
        for model in (self._full_bm25, self._name_bm25, self._faq_bm25):
            for part in (getattr(model, "scores", None) or {}).values():
                arrays += int(getattr(part, "nbytes", 0))
        return per_item + arrays

    def faq(self) -> list[FaqView]:
        """All FAQ entries in position order."""
        return list(self._faq)

    # -- building --

    def _build_items(self) -> None:
        self._item_vocab = _Vocabulary()
        self._name_words = _Vocabulary()
        item_counts: Counter[str] = Counter()
        name_counts: Counter[str] = Counter()
        shared_variant_vocab: dict[tuple[str, ...], int] = {}  # items sold in the same sizes share one
        shared_values: dict[tuple[tuple[str, ...], ...], int] = {}
        self._variant_tables = _VariantTables()
        tables = self._variant_tables
        self._name_vocab: set[str] = set()
        docs = _DocTermsBuilder()
        self._variant_keys: dict[uuid.UUID, list[_VariantKey]] = {}
        self._variant_vocab: dict[uuid.UUID, _Vocabulary] = {}
        full_docs: list[list[str]] = []
        name_docs: list[list[str]] = []
        for position, item in enumerate(self._items):
            name_words = tokenize(item.name)
            variant_words: list[str] = []
            keys: list[_VariantKey] = []
            value_numbers: list[int] = []
            for variant in item.variants:
                values = variant_values(variant)
                value_words = [list(_short_tokens(v)) for v in values]
                for words in value_words:
                    variant_words.extend(words)
                value_key = tuple(tuple(w) for w in value_words if w)
                number = shared_values.get(value_key)
                if number is None:  # "Small", "Medium"... are the same sets for thousands of items
                    number = shared_values[value_key] = len(tables.values)
                    tables.values.append(tuple(frozenset(_canonical_variant_stems(w)) for w in value_key))
                value_numbers.append(number)
                keys.append(_VariantKey(variant.id, tables.values[number]))
            if any(key.values for key in keys):
                self._variant_keys[item.id] = keys
                parts = tuple(part for word in variant_words for part in _SIZE_ALIASES.get(word, (word,)))
                vocab_number = shared_variant_vocab.get(parts)
                if vocab_number is None:
                    vocab_number = shared_variant_vocab[parts] = len(tables.vocabularies)
                    vocabulary = _Vocabulary()
                    vocabulary.add(parts)
                    tables.vocabularies.append(vocabulary)
                    tables.vocabulary_words.append(parts)
                self._variant_vocab[item.id] = tables.vocabularies[vocab_number]
                tables.rows.append((position, vocab_number, tuple(value_numbers)))
            category_words = list(_short_tokens(item.category or ""))
            tag_words = _tag_words(item.attributes)
            description_words = tokenize(item.description)

            item_counts.update(
                w
                for w in name_words + variant_words + category_words + tag_words + description_words
                if w not in _FUNCTION_WORDS
            )
            name_counts.update(w for w in name_words if w not in _FUNCTION_WORDS)
            name_stems = [stem(w) for w in name_words if w not in _FUNCTION_WORDS] or [stem(w) for w in name_words]
            self._name_vocab.update(name_stems)
            strong = set(name_stems)
            strong.update(stem(w) for w in variant_words + category_words + tag_words if w not in _FUNCTION_WORDS)
            other = [stem(w) for w in description_words if w not in _FUNCTION_WORDS]
            unique_variant_stems = sorted({stem(w) for w in variant_words if w not in _FUNCTION_WORDS})
            full_docs.append(
                name_stems * 2
                + unique_variant_stems
                + [stem(w) for w in category_words + tag_words if w not in _FUNCTION_WORDS]
                + other
            )
            name_docs.append(name_stems)
            docs.add(dict.fromkeys(name_stems), strong, frozenset(other) - strong, "".join(name_words))
        self._full_bm25 = _bm25(full_docs) if self._items else None
        self._name_bm25 = _bm25(name_docs) if self._items else None
        self._docs = docs.done()
        self._grams = _GramIndex(self._docs.glued)
        self._name_vocab = frozenset(self._name_vocab)
        self._item_vocab.add_counts(item_counts)
        self._name_words.add_counts(name_counts)
        self._item_vocab.prepare()
        self._name_words.prepare()

    def tables(self) -> ItemTables:
        """What this index derived from its items (for a snapshot, ``knowledge.snapshot``)."""
        return ItemTables(item_vocab=self._item_vocab, name_words=self._name_words, name_vocab=self._name_vocab,
                          docs=self._docs, grams=self._grams, full_bm25=self._full_bm25, name_bm25=self._name_bm25,
                          variants=self._variant_tables)

    def _adopt(self, tables: ItemTables) -> None:
        """Take the item tables of a snapshot instead of building them (``items`` in the same order)."""
        self._item_vocab, self._name_words, self._name_vocab = tables.item_vocab, tables.name_words, tables.name_vocab
        self._docs, self._grams = tables.docs, tables.grams
        self._full_bm25, self._name_bm25 = tables.full_bm25, tables.name_bm25
        self._variant_tables = variants = tables.variants
        self._variant_keys = {}
        self._variant_vocab = {}
        if isinstance(self._items, LazyItems):  # looked up when an item's variants are first asked for
            self._variant_rows = {pos: (vocab, numbers) for pos, vocab, numbers in variants.rows}
            rows: list[tuple[int, int, tuple[int, ...]]] = []
        else:
            rows = variants.rows
        for pos, vocab, numbers in rows:
            item = self._items[pos]
            if len(numbers) != len(item.variants):
                raise ValueError(f"variant tables do not match item {item.id}")
            pairs = zip(item.variants, numbers, strict=True)
            self._variant_keys[item.id] = [_VariantKey(v.id, variants.values[n]) for v, n in pairs]
            self._variant_vocab[item.id] = variants.vocabularies[vocab]
        self._item_vocab.prepare()
        self._name_words.prepare()

    def _build_faq(self) -> None:
        self._faq_vocab = _Vocabulary()
        docs: list[list[str]] = []
        self._faq_terms: list[frozenset[str]] = []
        for entry in self._faq:
            q_words = [w for w in tokenize(entry.question) if w not in _FUNCTION_WORDS]
            a_words = [w for w in tokenize(entry.answer) if w not in _FUNCTION_WORDS]
            self._faq_vocab.add(q_words + a_words)
            q_stems = [stem(w) for w in q_words]
            a_stems = [stem(w) for w in a_words]
            docs.append(q_stems * 2 + a_stems)
            self._faq_terms.append(frozenset(q_stems) | frozenset(a_stems))
        self._faq_bm25 = _bm25(docs) if self._faq else None
        self._synonyms: dict[str, frozenset[str]] = {}
        self._synonym_vocab = _Vocabulary()
        for group in _FAQ_SYNONYMS:
            self._synonym_vocab.add(group.split())
            group_stems = frozenset(stem(w) for w in group.split())
            for s in group_stems:
                self._synonyms[s] = self._synonyms.get(s, frozenset()) | group_stems

    # -- items --

    def _item_query(self, text: str) -> list[_QueryTerm]:
        words = tokenize(text)
        terms: list[_QueryTerm] = []
        seen: set[str] = set()
        for i, word in enumerate(words):
            if word in _FUNCTION_WORDS or word in seen:
                continue
            seen.add(word)
            if word.isdigit() or word in _INTENT_WORDS or word in _SERVICE_WORDS or word in _SIZE_ALIASES:
                if stem(word) in self._name_vocab:  # "7 Shakra Bracelet", "Корзина роз"
                    terms.append(_QueryTerm(word, frozenset({stem(word)})))
                continue
            if word == "long" and i and words[i - 1] == "how":  # "how long" is a question, not a length
                continue
            resolved = self._item_vocab.resolve(word)
            if (resolved is not None and len(word) <= _SHORT_WORD and resolved != stem(word)
                    and resolved not in self._name_vocab):
                resolved = None  # "wife" -> "wide" (of "wide sleeves"): one letter of four is no evidence
            alternatives = {resolved} if resolved is not None else set()
            if resolved not in self._name_vocab and (has_cyrillic(word) or word not in self._item_vocab.word_stem):
                # A misspelt word can stem to an unrelated description word ("earings" -> "ear"), and
                # Snowball gives some Russian forms other stems ("тюльпан" -> "тюльпа", "тюльпанов"
                # -> "тюльпан"): also accept the nearest word of an item name.
                in_name = self._name_words.resolve(word)
                if in_name is not None:
                    alternatives.add(in_name)
            terms.append(_QueryTerm(word, frozenset(alternatives)))
        return terms

    def search_items(self, text: str, *, limit: int = 5) -> list[ItemHit]:
        """Items ``text`` most plausibly refers to, best first (at most ``limit``).

        Query words are stemmed, typo-corrected against this KB's vocabulary and stripped of
        intent/function words ("how much", "добавь", "please"). An item is returned only if it
        contains at least half of the remaining words; an empty list means nothing is plausibly
        meant (gibberish, off-topic, or only intent words).
        """
        if not self._items or limit <= 0:
            return []
        terms = self._item_query(text)
        if not terms:
            return []
        query_stems = sorted({a for t in terms for a in t.alternatives})
        if not query_stems:
            return self._glued_name_fallback(text, limit)
        n = len(self._items)
        scores = _scores(self._full_bm25, query_stems, n) + _NAME_WEIGHT * _scores(self._name_bm25, query_stems, n)
        candidates = np.flatnonzero(scores > 0)
        if candidates.size > _CANDIDATES:
            top = np.argpartition(-scores[candidates], _CANDIDATES)[:_CANDIDATES]
            candidates = candidates[top]
        query_glued = "".join(t.word for t in terms)
        query_set = set(query_stems)
        ranked: list[tuple[float, int, tuple[str, ...]]] = []
        for idx in candidates.tolist():
            doc = self._docs.doc(idx)
            matched = tuple(
                t.word
                for t in terms
                if not (t.alternatives.isdisjoint(doc.strong_terms) and t.alternatives.isdisjoint(doc.other_terms))
            )
            if len(matched) < _MIN_COVERAGE * len(terms):
                continue
            in_name = sum(1 for t in terms if not t.alternatives.isdisjoint(doc.name_terms))
            strong = sum(1 for t in terms if not t.alternatives.isdisjoint(doc.strong_terms))
            name_said = sum(1 for s in doc.name_terms if s in query_set) / max(len(doc.name_terms), 1)
            score = float(scores[idx])
            score *= 1.0 + 0.6 * in_name / len(terms) + 0.5 * strong / len(terms)
            score *= 1.0 + 0.3 * name_said
            score *= 1.0 + 0.1 * _fuzzy_ratio(query_glued, doc.glued_name)
            ranked.append((score, idx, matched))
        if not ranked:
            return self._glued_name_fallback(text, limit)
        ranked.sort(key=lambda r: (-r[0], self._items[r[1]].position, r[1]))
        best = ranked[0][0]
        return [
            ItemHit(item_id=self._items[idx].id, name=self._items[idx].name, score=round(score, 6), matched_terms=m)
            for score, idx, m in ranked[:limit]
            if score >= _RELATIVE_CUTOFF * best
        ]

    def _glued_name_fallback(self, text: str, limit: int) -> list[ItemHit]:
        """Words glued together or split oddly ("varsitytop"): fuzzy match against whole names."""
        glued = "".join(w for w in tokenize(text) if w not in _FUNCTION_WORDS and w not in _INTENT_WORDS)
        if len(glued) < 6:
            return []
        # Bounded: rapidfuzz scores only the names sharing the most character trigrams with the query
        # (gibberish shares few or none), not every name of the catalogue.
        positions = self._grams.candidates(glued, limit=_FUZZY_CANDIDATES)
        names = {i: self._docs.glued[i] for i in positions}
        found = {
            i: score
            for _, score, i in process.extract(
                glued, names, scorer=fuzz.ratio, score_cutoff=_WHOLE_NAME_CUTOFF, limit=None
            )
        }
        # "bean bag" -> "Black Beanbag": the glued query inside a longer glued name.
        for _, score, i in process.extract(
            glued, names, scorer=fuzz.partial_ratio, score_cutoff=_WHOLE_NAME_CUTOFF, limit=None
        ):
            if len(names[i]) >= len(glued):
                found[i] = max(found.get(i, 0.0), score * len(glued) / len(names[i]))
        ranked = sorted(found.items(), key=lambda kv: (-kv[1], self._items[kv[0]].position))[:limit]
        return [
            ItemHit(item_id=self._items[i].id, name=self._items[i].name, score=round(score / 100, 6), matched_terms=())
            for i, score in ranked
        ]

    # -- variants --

    def match_variant(self, item_id: uuid.UUID, text: str) -> uuid.UUID | None:
        """The variant of item ``item_id`` that ``text`` names, or ``None``.

        A variant is named when every word of one of its option values appears in ``text``
        (stemmed, with typo correction and Latin size abbreviations: "M" = "Medium"); the variant
        naming the most option values wins. ``None`` when no variant word is present, when the
        best match is shared by several variants ("medium" with Medium/Red and Medium/Blue), or
        when the item is unknown.
        """
        keys = self._variant_keys.get(item_id)
        if keys is None and self._variant_rows:
            keys = self._lazy_variant_keys(item_id)
        if not keys:
            return None
        vocabulary = self._variant_vocab[item_id]
        known = vocabulary.stem_freq
        query: set[str] = set()
        for word in tokenize(text):
            for part in _SIZE_ALIASES.get(word, (word,)):
                s = stem(part)
                if s in known:
                    query.add(s)
                elif len(part) >= 4 and part not in _FUNCTION_WORDS and part not in _INTENT_WORDS:
                    corrected = vocabulary.resolve(part)
                    if corrected is not None:
                        query.add(corrected)
        if not query:
            return None
        best_score, best_ids = 0, []
        for key in keys:
            score = sum(1 for value in key.values if value and value <= query)
            if score > best_score:
                best_score, best_ids = score, [key.variant_id]
            elif score == best_score and score:
                best_ids.append(key.variant_id)
        return best_ids[0] if len(best_ids) == 1 else None

    def _lazy_variant_keys(self, item_id: uuid.UUID) -> list[_VariantKey] | None:
        """The variant keys of a snapshot's item (see :meth:`_adopt`), made on first use and kept."""
        try:
            position = self._items.position(item_id)  # type: ignore[union-attr]
        except KeyError:
            return None
        row = self._variant_rows.get(position)
        item = self._items[position]
        if row is None or len(row[1]) != len(item.variants):
            return None
        tables = self._variant_tables
        keys = [_VariantKey(v.id, tables.values[n]) for v, n in zip(item.variants, row[1], strict=True)]
        self._variant_vocab[item_id] = tables.vocabularies[row[0]]
        self._variant_keys[item_id] = keys
        return keys

    # -- FAQ --

    def search_faq(self, text: str, *, limit: int = 3) -> list[FaqHit]:
        """FAQ entries answering ``text``, best first (at most ``limit``).

        Questions weigh twice the answers; a few synonyms widen the query ("shipping" →
        delivery). An entry is returned only when it matches at least one topic word (not an
        intent word such as "сколько"/"price") and at least half of the query's topic words.
        """
        if not self._faq or limit <= 0:
            return []
        terms: list[_QueryTerm] = []
        for word in dict.fromkeys(tokenize(text)):
            if word in _FUNCTION_WORDS or word.isdigit():
                continue
            known = self._faq_vocab.stem_freq
            alternatives = frozenset(a for a in self._synonyms.get(stem(word), ()) if a in known)
            if stem(word) in known or not alternatives:  # a synonym beats a typo correction
                s = self._faq_vocab.resolve(word)
                if s is not None and s != stem(word) and fuzz.ratio(stem(word), s) < _FAQ_CORRECTION_RATIO:
                    s = None  # "parking" is not a typo of "paying": a correction must stay close to the word
                if s is not None:
                    alternatives = alternatives | {s}
                else:  # a misspelt synonym ("shiping")
                    s = self._synonym_vocab.resolve(word)
                    if s is not None and fuzz.ratio(stem(word), s) < _FAQ_CORRECTION_RATIO:
                        s = None
                    alternatives = frozenset(a for a in self._synonyms.get(s or "", ()) if a in known)
            terms.append(_QueryTerm(word, alternatives))
        topic = [t for t in terms if t.word not in _INTENT_WORDS]
        if not topic:
            return []
        query_stems = sorted({a for t in terms for a in t.alternatives})
        if not query_stems:
            return []
        scores = _scores(self._faq_bm25, query_stems, len(self._faq))
        ranked: list[tuple[float, int]] = []
        for idx in np.flatnonzero(scores > 0).tolist():
            doc_terms = self._faq_terms[idx]
            topic_hits = sum(1 for t in topic if t.alternatives & doc_terms)
            if topic_hits == 0 or topic_hits < _MIN_COVERAGE * len(topic):
                continue
            all_hits = sum(1 for t in terms if t.alternatives & doc_terms)
            ranked.append((float(scores[idx]) * (1.0 + all_hits / len(terms)), idx))
        if not ranked:
            return []
        ranked.sort(key=lambda r: (-r[0], r[1]))
        best = ranked[0][0]
        return [
            FaqHit(faq_id=e.id, question=e.question, answer=e.answer, score=round(score, 6))
            for score, idx in ranked[:limit]
            if score >= _FAQ_RELATIVE_CUTOFF * best
            for e in (self._faq[idx],)
        ]


def variant_values(variant: VariantView) -> list[str]:
    """The option values that name ``variant`` ("Light Blue", "Medium"; its name's parts when it has no
    options), without placeholder values such as "Default Title"."""
    values = [str(v) for v in variant.options.values() if v is not None and str(v).strip()]
    if not values and variant.name:
        values = [part for part in variant.name.split(" / ") if part.strip()]
    return [v for v in values if normalize(v) not in _DEFAULT_VARIANT_VALUES]


def _tag_words(attributes: Mapping[str, Any]) -> list[str]:
    """Words of descriptive attributes (tags, type, keywords) an importer may have kept."""
    words: list[str] = []
    for key in ("tags", "type", "keywords", "synonyms", "product_type"):
        value = attributes.get(key)
        if isinstance(value, str):
            words.extend(tokenize(value))
        elif isinstance(value, list | tuple):
            for part in value:
                if isinstance(part, str):
                    words.extend(tokenize(part))
    return words


# The least similarity (rapidfuzz ratio, 0-100) of a query word's stem to the FAQ stem it is corrected to
# ("shiping" → "ship" 89, "delivry" → "deliveri" 93; "parking" → "pay" 57 is another word, not a typo).
_FAQ_CORRECTION_RATIO = 80.0


def _fuzzy_ratio(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    return fuzz.ratio(a, b) / 100.0


# A word this short, corrected to a word found only in descriptions (not in any item's name), is dropped:
# with one letter changed, a short word turns into an unrelated common word too easily.
_SHORT_WORD = 4


# --- cache ------------------------------------------------------------------------------------


# An index this large is frozen out of the collector after its build (``core.heap.freeze_new``); a smaller
# one adds too little to the long-lived heap to lengthen a full collection.
FREEZE_MIN_ITEMS = 2_000


class KnowledgeIndexCache:
    """Per-process LRU cache of indexes keyed by ``(tenant_id, company_id, kb_version)`` — the key
    includes the tenant so nothing crosses tenants. Constructed by the app (no module-level
    instance). Bumping ``Company.kb_version`` makes the next :meth:`get` rebuild; older versions of
    that company are evicted when the new one is stored.

    Bounded twice: at most ``max_companies`` indexes and at most ``max_bytes`` of them by their
    :attr:`KnowledgeIndex.approx_bytes` (least recently used first; the index just built is always
    kept). Building never blocks the event loop: rows are read in partitions and the index is built
    in a worker thread; concurrent first requests for one company version share one build."""

    def __init__(self, *, max_companies: int = 256, max_bytes: int = 512 * 2**20,
                 snapshots: SnapshotStore | None = None) -> None:
        if max_companies < 1:
            raise ValueError("max_companies must be at least 1")
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.max_companies = max_companies
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[uuid.UUID, uuid.UUID, int], KnowledgeIndex] = OrderedDict()
        self._locks: dict[tuple[uuid.UUID, uuid.UUID, int], asyncio.Lock] = {}
        self.builds = 0  # number of indexes built in this process (for tests and metrics)
        self.snapshots = snapshots

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def approx_bytes(self) -> int:
        """Sum of the cached indexes' :attr:`KnowledgeIndex.approx_bytes`."""
        return sum(index.approx_bytes for index in self._entries.values())

    def clear(self) -> None:
        """Forget every cached index."""
        self._entries.clear()

    def invalidate(self, company: Company) -> None:
        """Forget every cached version of ``company``'s index."""
        for key in [k for k in self._entries if k[:2] == (company.tenant_id, company.id)]:
            del self._entries[key]

    def cached(self, company: Company) -> KnowledgeIndex | None:
        """The index of ``company`` at its current ``kb_version`` if it is built, else ``None``."""
        return self._entries.get((company.tenant_id, company.id, company.kb_version or 0))

    async def get(self, session: AsyncSession, company: Company) -> KnowledgeIndex:
        """The index of ``company`` at its current ``kb_version``, built on a miss from the
        company's items, variants and FAQ (plain rows, read in partitions through ``session`` with
        the company's tenant and id in every query). Indexing runs in a worker thread; a request
        arriving while the same version is being built waits for that build."""
        key = (company.tenant_id, company.id, company.kb_version or 0)
        cached = self._entries.get(key)
        if cached is not None:
            self._entries.move_to_end(key)
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                cached = self._entries.get(key)
                if cached is not None:
                    self._entries.move_to_end(key)
                    return cached
                index = await self._load_or_build(session, company)
                self._store(key, index)
                if index.item_count >= FREEZE_MIN_ITEMS:
                    freeze_new()  # the index lives until replaced: full collections skip it
                return index
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    async def _load_or_build(self, session: AsyncSession, company: Company) -> KnowledgeIndex:
        """The snapshot if there is one; else one built by a child process and loaded; else built here
        (and saved for the other processes)."""
        snapshots = self.snapshots
        if snapshots is not None:
            index = await snapshots.load(company)
            if index is None and await snapshots.build_in_child(session, company):
                index = await snapshots.load(company)
            if index is not None:
                return index
        index = await build_index(session, company)
        self.builds += 1
        if snapshots is not None:
            await snapshots.save(index, company)
        return index

    def _store(self, key: tuple[uuid.UUID, uuid.UUID, int], index: KnowledgeIndex) -> None:
        for stale in [k for k in self._entries if k[:2] == key[:2] and k != key]:
            del self._entries[stale]
        self._entries[key] = index
        total = self.approx_bytes
        while len(self._entries) > 1 and (len(self._entries) > self.max_companies or total > self.max_bytes):
            _, evicted = self._entries.popitem(last=False)
            total -= evicted.approx_bytes

    async def warm(self, sessionmaker: async_sessionmaker[AsyncSession], companies: Iterable[Company]) -> int:
        """Build the indexes of ``companies`` one after another, each in its own session (for a
        background task at start-up, so the first customer message does not wait for a build).
        Stops early once the cache is full. Returns the number of indexes now cached for them."""
        ready = 0
        for company in companies:
            if len(self._entries) >= self.max_companies or self.approx_bytes >= self.max_bytes:
                break
            async with sessionmaker() as session:
                await self.get(session, company)
            ready += 1
        return ready


async def build_index(session: AsyncSession, company: Company) -> KnowledgeIndex:
    """The index of ``company``'s current rows: read in partitions through ``session`` (tenant and
    company in every query), built in a worker thread. Nothing is cached."""
    rows = await _load(session, company)
    build = partial(_index_from_rows, company_id=company.id, tenant_id=company.tenant_id, rows=rows)
    return await asyncio.to_thread(build)


_LOAD_PARTITION = 2_000  # rows decoded between two returns to the event loop
_EMPTY_MAPPING: Mapping[str, Any] = MappingProxyType({})
_ITEM_COLUMNS = ("id", "kind", "name", "description", "category", "price_minor", "currency", "stock", "image_url",
                 "duration_minutes", "handle", "sku", "position", "attributes")
_VARIANT_COLUMNS = ("id", "item_id", "name", "options", "sku", "price_minor", "stock", "image_url", "position")


@dataclass(frozen=True, slots=True)
class _Rows:
    items: list[Any]
    variants: list[Any]
    faq: list[Any]


async def _load(session: AsyncSession, company: Company) -> _Rows:
    """The company's rows as plain tuples (no ORM objects), every query filtered by tenant and company."""
    items, variants, faq = KnowledgeItem.__table__, KnowledgeVariant.__table__, FaqEntry.__table__
    item_rows = await _rows(
        session,
        select(*(items.c[name] for name in _ITEM_COLUMNS))
        .where(items.c.tenant_id == company.tenant_id, items.c.company_id == company.id)
        .order_by(items.c.position, items.c.name),
    )
    variant_rows = await _rows(
        session,
        select(*(variants.c[name] for name in _VARIANT_COLUMNS))
        .where(variants.c.tenant_id == company.tenant_id, variants.c.company_id == company.id)
        .order_by(variants.c.item_id, variants.c.position),
    )
    faq_rows = await _rows(
        session,
        select(faq.c.id, faq.c.question, faq.c.answer, faq.c.position)
        .where(faq.c.tenant_id == company.tenant_id, faq.c.company_id == company.id)
        .order_by(faq.c.position),
    )
    return _Rows(items=item_rows, variants=variant_rows, faq=faq_rows)


async def _rows(session: AsyncSession, statement: Any) -> list[Any]:
    result = await session.stream(statement)
    rows: list[Any] = []
    async for part in result.partitions(_LOAD_PARTITION):
        rows.extend(part)
    return rows


def _mapping(value: Any) -> Mapping[str, Any]:
    return MappingProxyType(dict(value)) if value else _EMPTY_MAPPING


def _index_from_rows(*, company_id: uuid.UUID, tenant_id: uuid.UUID, rows: _Rows) -> KnowledgeIndex:
    """Snapshots and index from :func:`_load`'s rows (runs in a worker thread). The tenant and company
    ids are shared objects, and empty attribute/option maps one shared empty mapping, to keep the
    memory of a 100,000-item catalogue down."""
    strings: dict[str, str] = {}  # one object per repeated short string ("product", "USD", "Medium", a category)
    options_seen: dict[tuple[tuple[str, Any], ...], Mapping[str, Any]] = {}

    def shared(value: str | None) -> str | None:
        return None if value is None else strings.setdefault(value, value)

    def shared_options(value: Any) -> Mapping[str, Any]:
        if not value:
            return _EMPTY_MAPPING
        try:
            key = tuple(value.items())
            return options_seen.setdefault(key, _mapping(value)) if len(options_seen) < 100_000 else _mapping(value)
        except TypeError:  # an unhashable option value
            return _mapping(value)

    variants: dict[uuid.UUID, list[VariantView]] = {}
    for vid, item_id, name, options, sku, price, stock, image, position in rows.variants:
        own = variants.setdefault(item_id, [])
        own.append(
            VariantView(id=vid, item_id=item_id, name=shared(name), options=shared_options(options), sku=sku,
                        price_minor=price, stock=stock, image_url=image,
                        position=position if position is not None else len(own))
        )
    items = []
    for iid, kind, name, description, category, price, currency, stock, image, duration, handle, sku, position, \
            attributes in rows.items:
        own = variants.get(iid, ())
        items.append(
            ItemView(id=iid, tenant_id=tenant_id, company_id=company_id, kind=shared(kind or "product"), name=name,
                     description=description or "", category=shared(category), price_minor=price,
                     currency=shared(currency),
                     stock=stock, image_url=image, duration_minutes=duration, handle=handle, sku=sku,
                     position=position or 0, attributes=_mapping(attributes),
                     variants=tuple(sorted(own, key=lambda v: v.position)))
        )
    faq = [FaqView(id=fid, question=q, answer=a or "", position=p or 0) for fid, q, a, p in rows.faq]
    return KnowledgeIndex(company_id=company_id, items=items, faq=faq)
