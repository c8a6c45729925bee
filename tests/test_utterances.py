"""The utterance table of issue 8 (tests/understanding/utterances.yaml): single customer messages and the
commands (COMMANDS.md vocabulary) the rule-based understander must produce, with a ratchet.

The catalogues are those of the dialogue set (tests/dialogues/), indexed in memory (no database).
``tests/understanding/PASSING.txt`` lists the cases that pass: a listed case that fails is a regression,
a passing case that is not listed must be added. Until ``bot.understand.RuleUnderstander`` exists the
understanding test is skipped; the table itself is always checked (every name resolves).

The one place that knows how the understander is called (its state and context objects) is
:func:`understand` below: adapt it, nothing else, when the engine's API settles.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.dialogue_spec import load_dialogue_file
from core.models import FaqEntry, KnowledgeItem, KnowledgeVariant
from knowledge.importer import parse_knowledge_file
from knowledge.search import KnowledgeIndex

HERE = Path(__file__).resolve().parent
TABLE = HERE / "understanding" / "utterances.yaml"
PASSING = HERE / "understanding" / "PASSING.txt"
DIALOGUES = HERE / "dialogues"
SKIP_REASON = "bot.understand not available yet (issue 8)"
# Commands that name an item: they are always compared on item and variant (absent: none).
ITEM_COMMANDS = {"add_to_cart", "set_quantity", "remove_line", "show_item"}
NS = uuid.UUID("6f1c2b1e-7d1a-4c8e-9a51-0b7e2d9c3a10")


@dataclass(kw_only=True)
class Shop:
    """A dialogue-set company indexed in memory; names resolve to stable ids (uuid5 of the names)."""

    key: str
    type: str
    language: str
    timezone: str
    now: datetime
    index: KnowledgeIndex
    items: dict[str, KnowledgeItem] = field(default_factory=dict)
    faq: dict[str, FaqEntry] = field(default_factory=dict)

    def item(self, name: str) -> KnowledgeItem:
        try:
            return self.items[name.casefold()]
        except KeyError:
            raise KeyError(f"{self.key}: no item or service {name!r}") from None

    def variant(self, item: KnowledgeItem, name: str | None) -> uuid.UUID | None:
        if name is None:
            return None
        for variant in item.variants:
            if variant.name.casefold() == name.casefold():
                return variant.id
        raise KeyError(f"{self.key}: {item.name!r} has no variant {name!r}")

    def faq_id(self, question: str) -> uuid.UUID:
        try:
            return self.faq[question.casefold()].id
        except KeyError:
            raise KeyError(f"{self.key}: no FAQ entry {question!r}") from None


def load_shop(key: str, filename: str) -> Shop:
    spec = load_dialogue_file(DIALOGUES / filename)
    company = spec.companies[key]
    company_id = uuid.uuid5(NS, key)
    shop = Shop(key=key, type=company.type, language=company.language, timezone=company.timezone, now=spec.now,
                index=KnowledgeIndex.build(company_id=company_id, items=[], faq=[]))
    for name in company.catalogue:
        path = spec.catalogue_path(name)
        parsed = parse_knowledge_file(path.read_bytes(), filename=path.name, currency=company.currency)
        for item in parsed.items or ():
            row = KnowledgeItem(
                id=uuid.uuid5(company_id, item.name), company_id=company_id, name=item.name,
                kind="service" if company.type == "service" else item.kind, description=item.description,
                category=item.category, price_minor=item.price_minor, currency=company.currency, stock=item.stock,
                duration_minutes=item.duration_minutes, attributes=dict(item.attributes),
                position=len(shop.items), variants=[
                    KnowledgeVariant(id=uuid.uuid5(company_id, f"{item.name}/{v.name}"), company_id=company_id,
                                     name=v.name, options=dict(v.options), price_minor=v.price_minor, stock=v.stock,
                                     position=i) for i, v in enumerate(item.variants)])
            shop.items[item.name.casefold()] = row
        for entry in parsed.faq or ():
            shop.faq[entry.question.casefold()] = FaqEntry(
                id=uuid.uuid5(company_id, entry.question), company_id=company_id, question=entry.question,
                answer=entry.answer, position=len(shop.faq))
    shop.index = KnowledgeIndex.build(company_id=company_id, items=list(shop.items.values()),
                                      faq=list(shop.faq.values()))
    return shop


@dataclass(frozen=True, kw_only=True)
class Case:
    id: str
    shop: str
    language: str
    text: str
    prior: dict[str, Any]
    commands: list[dict[str, Any]]


def load_table() -> tuple[dict[str, Shop], list[Case]]:
    table = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    shops = {key: load_shop(key, filename) for key, filename in table["shops"].items()}
    cases: list[Case] = []
    seen: set[str] = set()
    for group in table["groups"]:
        for raw in group["cases"]:
            base = case_id = f"{group['shop']}|{raw['text']}"
            n = 1
            while case_id in seen:
                n += 1
                case_id = f"{base}#{n}"
            seen.add(case_id)
            cases.append(Case(id=case_id, shop=group["shop"], language=group["language"], text=raw["text"],
                              prior=raw.get("prior") or {}, commands=raw["commands"]))
    return shops, cases


def ref(shop: Shop, raw: dict[str, Any]) -> dict[str, Any]:
    """``{item, variant}`` or ``{slot}`` of the table as ids (slot: aware datetime in the shop's zone)."""
    if "slot" in raw:
        from zoneinfo import ZoneInfo

        return {"slot": datetime.strptime(raw["slot"], "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(shop.timezone))}
    item = shop.item(raw["item"])
    return {"item_id": item.id, "variant_id": shop.variant(item, raw.get("variant")),
            "quantity": raw.get("quantity", 1)}


def expected(shop: Shop, raw: dict[str, Any]) -> dict[str, Any]:
    """A table command with names resolved to ids, in ``model_dump(mode="json")`` form."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("item", "service"):
            item = shop.item(value)
            out["service_id" if key == "service" else "item_id"] = str(item.id)
            if key == "item" and raw["type"] in ITEM_COMMANDS:
                variant = shop.variant(item, raw.get("variant"))
                out["variant_id"] = str(variant) if variant else None
        elif key == "variant":
            continue
        elif key == "faq":
            out["faq_id"] = str(shop.faq_id(value))
        else:
            out[key] = value
    if raw["type"] in ("add_to_cart", "set_quantity"):
        out.setdefault("quantity", 1)
    return out


def matches(want: dict[str, Any], got: dict[str, Any]) -> bool:
    for key, value in want.items():
        have = got.get(key)
        if isinstance(value, str) and value.startswith("~"):
            if not isinstance(have, str) or value[1:].casefold() not in have.casefold():
                return False
        elif have != value:
            return False
    return True


_STEPS = {"checkout.name": "checkout_name", "checkout.address": "checkout_address", "checkout.phone": "checkout_phone",
          "booking.name": "booking_name", "choose_variant": "choose_variant", "offer_handoff": "offer_handoff"}


def understand(understander: Any, case: Case, shop: Shop) -> list[dict[str, Any]]:
    """THE ADAPTATION POINT: call the understander for ``case`` and return its commands as JSON dicts.

    The prior state of the table becomes a real ``bot.state.DialogueState``: ``step`` (``checkout.name``
    → ``Step.CHECKOUT_NAME``..., ``offer_handoff`` → ``Step.OFFER_HANDOFF``),
    ``last_item`` → ``last_item_id``/``last_variant_id``; ``offered`` as the engine keeps it: variants
    of one item → ``Step.CHOOSE_VARIANT`` waiting on that item with their add buttons as the last
    reply's ``choices``, several items → ``Step.CHOOSE_ITEM``
    with the candidates, slots → ``Step.CHOOSE_SLOT`` with the booking draft's offers. The cart goes
    in ``UnderstandingContext.extra["cart"]`` as ``(item_id, variant_id, quantity)`` tuples (the
    engine passes the conversation's cart lines the same way).
    """
    from bot.state import BookingDraft, DialogueState, Offer, Pending, Step
    from bot.understand import UnderstandingContext

    prior = case.prior
    last = ref(shop, prior["last_item"]) if "last_item" in prior else {}
    cart = [ref(shop, line) for line in prior.get("cart", [])]
    offered = [ref(shop, option) for option in prior.get("offered", [])]
    step = _STEPS.get(prior.get("step") or "")
    state = DialogueState(step=Step(step) if step else None, last_item_id=last.get("item_id"),
                          last_variant_id=last.get("variant_id"))
    slots = [o["slot"] for o in offered if "slot" in o]
    items = [o for o in offered if "item_id" in o]
    if slots:
        from datetime import UTC

        state.step = Step.CHOOSE_SLOT
        state.booking = BookingDraft(service_id=last.get("item_id"), offers=[
            Offer(title=slot.strftime("%H:%M"), ref=uuid.uuid5(NS, slot.isoformat()),
                  start=slot.astimezone(UTC).isoformat()) for slot in slots])
    elif items and len({o["item_id"] for o in items}) == 1 and all(o["variant_id"] for o in items):
        from bot.buttons import reference
        from bot.commands import AddToCart

        state.step = Step.CHOOSE_VARIANT
        state.pending = Pending(action="add", item_id=items[0]["item_id"])
        state.choices = [reference(AddToCart(item_id=o["item_id"], variant_id=o["variant_id"])) for o in items]
    elif items:
        state.step = Step.CHOOSE_ITEM
        state.pending = Pending(action="add", candidates=[o["item_id"] for o in items])
    elif state.step == Step.CHOOSE_VARIANT and state.last_item_id is not None:
        state.pending = Pending(action="add", item_id=state.last_item_id)
    context = UnderstandingContext(index=shop.index, company_type=shop.type, language=case.language,
                                   timezone=shop.timezone, now=shop.now,
                                   extra={"cart": [(c["item_id"], c["variant_id"], c["quantity"]) for c in cart]})
    commands = understander.understand(case.text, state=state, context=context)
    return [command.model_dump(mode="json") for command in commands]


def listed_passing() -> set[str]:
    lines = (line.rstrip("\n") for line in PASSING.read_text(encoding="utf-8").splitlines())
    return {line for line in lines if line.strip() and not line.startswith("#")}


def test_the_table_is_big_enough_and_every_name_resolves() -> None:
    shops, cases = load_table()
    assert len(cases) >= 300
    assert {c.language for c in cases} == {"en", "ru"}
    assert {s.type for s in shops.values()} == {"product", "service", "hybrid"}
    for case in cases:
        shop = shops[case.shop]
        for command in case.commands:
            expected(shop, command)  # raises KeyError naming the shop and the unknown name
        for key in ("last_item",):
            if key in case.prior:
                ref(shop, case.prior[key])
        for raw in case.prior.get("offered", []) + case.prior.get("cart", []):
            ref(shop, raw)
    types = {command["type"] for case in cases for command in case.commands}
    assert types >= {"add_to_cart", "set_quantity", "remove_line", "clear_cart", "show_cart", "show_item",
                     "search_catalog", "show_catalog", "answer_faq", "unknown_fact", "not_sold", "start_checkout",
                     "give_details", "skip", "cancel", "order_status", "new_payment_link", "find_slots", "choose",
                     "show_booking", "cancel_booking", "move_booking", "handoff", "small_talk", "help",
                     "not_understood"}


def rule_understander() -> Any:
    try:
        from bot.understand import RuleUnderstander  # type: ignore[attr-defined]
    except ImportError:
        pytest.skip(SKIP_REASON)
    return RuleUnderstander()


def test_utterances_ratchet() -> None:
    understander = rule_understander()
    shops, cases = load_table()
    passed: set[str] = set()
    failures: dict[str, str] = {}
    for case in cases:
        shop = shops[case.shop]
        want = [expected(shop, command) for command in case.commands]
        try:
            got = understand(understander, case, shop)
        except Exception as exc:  # noqa: BLE001 - a crash is a failing case, reported with the others
            failures[case.id] = f"error: {type(exc).__name__}: {exc}"
            continue
        if len(got) == len(want) and all(matches(w, g) for w, g in zip(want, got, strict=True)):
            passed.add(case.id)
        else:
            failures[case.id] = f"want {want}, got {got}"
    listed = listed_passing()
    print(f"\nutterance table: {len(passed)} of {len(cases)} cases pass (PASSING.txt lists {len(listed)})")
    known = {case.id for case in cases}
    problems = []
    if listed - known:
        problems.append(f"PASSING.txt names cases that do not exist: {sorted(listed - known)}")
    regressions = sorted(listed & known - passed)
    if regressions:
        problems.append("regressions:\n" + "\n".join(f"  {i}: {failures[i]}" for i in regressions))
    if passed - listed:
        problems.append(f"passing but not listed in {PASSING.name} (add them):\n" + "\n".join(sorted(passed - listed)))
    assert not problems, "\n".join(problems)
