"""Run dialogue tests (``chatcommerce test-dialogues``): YAML conversations against the real engine.

Every conversation runs on its own throwaway SQLite database (a copy of one migrated with Alembic), so
carts, order numbers and free times never leak between conversations. The company is built from the
file's catalogue files (through ``knowledge.importer``) or cloned, read-only, from an existing
database (``--company SLUG``: its knowledge base, FAQ, staff, schedule and delivery windows). Turns go
through the real inbound pipeline (``channels.pipeline.Pipeline``, the web-chat inbox) to
``bot.engine.DialogueEngine`` with a fixed clock (the file's ``now``). ``pay`` marks the latest order
of the conversation paid as the manual provider would (``commerce.payments.mark_paid``, method
``test``). Payments always use the manual provider, whatever the cloned company is set up with.

The YAML format and the expectation keys: :mod:`api.dialogue_spec`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from api.dialogue_spec import (
    CartLineExpect,
    CompanySpec,
    ConversationSpec,
    DialogueFile,
    Expect,
    TurnSpec,
    load_dialogue_file,
)
from bot.engine import DialogueEngine
from bot.llm.assistant import Assistant
from bot.llm.config import PlatformModel
from bot.llm.usage import AssistUsage, assist_usage
from bot.messages import Responder
from channels.base import ParsedInbound
from channels.pipeline import Pipeline, Reply
from channels.registry import ChannelRegistry
from commerce.payments import mark_paid
from commerce.providers import ProviderRegistry
from commerce.schedule import set_schedule
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.db import create_engine, create_sessionmaker
from core.i18n import money
from core.migrate import upgrade
from core.models import (
    Booking,
    Cart,
    Company,
    Conversation,
    DeliveryWindow,
    FaqEntry,
    KnowledgeItem,
    KnowledgeVariant,
    Message,
    Order,
    Resource,
)
from knowledge.importer import import_knowledge, parse_knowledge_file
from knowledge.search import KnowledgeIndexCache
from knowledge.sheets import read_tables
from knowledge.text import detect_language

__all__ = [
    "ConversationResult",
    "DialogueRun",
    "EngineFactory",
    "default_engine",
    "engine_for",
    "run_dialogue_files",
]

PUBLIC_BASE_URL = "https://dialogues.test"
CONTACT = "dialogue-test"
SETUP_FAILED = "setup failed"

EngineFactory = Callable[[Callable[[], datetime]], Responder]


def default_engine(clock: Callable[[], datetime]) -> Responder:
    """The engine under test: ``bot.engine.DialogueEngine`` with a fresh index cache, the manual
    payment provider and ``clock`` (the one place to adapt when the engine's constructor changes)."""
    return DialogueEngine(index_cache=KnowledgeIndexCache(),
                          providers=ProviderRegistry.default(public_base_url=PUBLIC_BASE_URL), clock=clock)


def engine_for(mode: str, *, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
               timeout_seconds: float = 20.0, max_retries: int = 2) -> tuple[EngineFactory, Assistant | None]:
    """The engine factory of ``test-dialogues --engine``: ``rules`` is ``default_engine``; ``assist`` and
    ``llm`` force that mode on every company, with the model server at ``base_url`` (any
    OpenAI-compatible Chat Completions server). Also returns the shared ``Assistant`` (``None`` for
    ``rules``); the share of turns that reached the model is ``DialogueRun.usage``."""
    if mode == "rules":
        return default_engine, None
    assistant = Assistant(platform=PlatformModel(base_url=base_url, model=model, api_key=api_key,
                                                 timeout_seconds=timeout_seconds, max_retries=max_retries),
                          mode=mode)

    def factory(clock: Callable[[], datetime]) -> Responder:
        return DialogueEngine(index_cache=KnowledgeIndexCache(),
                              providers=ProviderRegistry.default(public_base_url=PUBLIC_BASE_URL), clock=clock,
                              assistant=assistant)

    return factory, assistant


@dataclass(slots=True, kw_only=True)
class ConversationResult:
    """The outcome of one conversation: ``passed``; otherwise ``failure`` (the first failing
    expectation or error) and ``turn`` (1-based; ``None`` for the final ``expect`` or setup)."""

    file: str
    id: str
    company: str
    passed: bool
    turns: int
    failure: str | None = None
    turn: int | None = None
    said: str | None = None
    usage: AssistUsage | None = None
    """How its turns were answered (rules or model: ``bot.llm.usage.assist_usage``)."""

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "id": self.id, "company": self.company, "passed": self.passed,
                "turns": self.turns, "turn": self.turn, "said": self.said, "failure": self.failure}


@dataclass(slots=True, kw_only=True)
class DialogueRun:
    """All results of a run, in file order; ``exit_code`` is 0 only when every conversation passed
    (and there was at least one)."""

    results: list[ConversationResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def usage(self) -> AssistUsage:
        """The conversations' ``AssistUsage`` summed (the share of customer turns that reached the model)."""
        return sum((r.usage for r in self.results if r.usage is not None), AssistUsage(turns=0, model_turns=0))

    @property
    def exit_code(self) -> int:
        return 0 if self.results and self.failed == 0 else 1

    def table(self) -> str:
        """A plain-text pass/fail table: one row per conversation, the first failure shown."""
        width = max([len(r.id) for r in self.results] + [12])
        lines = [f"{'RESULT':<6}  {'CONVERSATION':<{width}}  DETAIL"]
        for r in self.results:
            if r.passed:
                detail = f"{r.turns} turn{'s' if r.turns != 1 else ''}"
            else:
                setup = (r.failure or "").startswith(SETUP_FAILED)
                where = f"turn {r.turn} {r.said}: " if r.turn is not None else "" if setup else "end: "
                detail = where + (r.failure or "")
            lines.append(f"{'PASS' if r.passed else 'FAIL':<6}  {r.id:<{width}}  {detail}")
        lines.append(f"{self.passed} of {len(self.results)} conversations passed")
        return "\n".join(lines)


class _Failed(Exception):
    """An expectation that does not hold (message says expected and got)."""


@dataclass(frozen=True, slots=True)
class _Shop:
    tenant_id: uuid.UUID
    company_id: uuid.UUID
    inbox_id: uuid.UUID


def run_dialogue_files(
    paths: list[Path], *, company: str | None = None, source_url: str | None = None,
    engine_factory: EngineFactory = default_engine, only: set[str] | None = None,
) -> DialogueRun:
    """Run every conversation of the dialogue files ``paths`` (synchronous; call outside an event loop).

    ``company`` is the slug of a company in the database ``source_url`` that conversations without a
    file-defined company talk to (its data is copied into each throwaway database; the source is
    only read). ``only`` limits the run to these conversation ids. Raises
    :class:`api.dialogue_spec.DialogueSpecError` for a bad file, ``LookupError`` when a conversation
    names no known company and ``ValueError`` for ``company`` without ``source_url``; engine errors
    during a conversation (and a company that cannot be set up) fail that conversation.
    """
    if company is not None and source_url is None:
        raise ValueError("a --company needs the database it lives in (source_url)")
    files = [load_dialogue_file(path) for path in paths]
    for spec in files:
        for conversation in spec.conversations:
            if conversation.company not in spec.companies and not (conversation.company is None and company):
                name = conversation.company or "(none)"
                raise LookupError(f"{spec.path}: conversation {conversation.id!r} names company {name!r}, which the "
                                  "file does not define (and no --company was given)")
    with tempfile.TemporaryDirectory(prefix="chatcommerce-dialogues-") as tmp:
        template = Path(tmp) / "template.db"
        _migrate_quietly(f"sqlite+aiosqlite:///{template}")
        return asyncio.run(_run_all(files, template=template, workdir=Path(tmp), company=company,
                                    source_url=source_url, engine_factory=engine_factory, only=only))


def _migrate_quietly(url: str) -> None:
    """Migrate the template database without Alembic's per-revision INFO lines (they are not the report)."""
    alembic_logger = logging.getLogger("alembic")
    level = alembic_logger.level
    alembic_logger.setLevel(logging.WARNING)
    try:
        upgrade(url)
    finally:
        alembic_logger.setLevel(level)


async def _run_all(files: list[DialogueFile], *, template: Path, workdir: Path, company: str | None,
                   source_url: str | None, engine_factory: EngineFactory, only: set[str] | None) -> DialogueRun:
    run = DialogueRun()
    for spec in files:
        for conversation in spec.conversations:
            if only is not None and conversation.id not in only:
                continue
            target = workdir / f"{uuid.uuid4().hex}.db"
            shutil.copy(template, target)
            try:
                run.results.append(await _run_one(spec, conversation, db=target, company=company,
                                                  source_url=source_url, engine_factory=engine_factory))
            finally:
                target.unlink(missing_ok=True)
    return run


async def _run_one(spec: DialogueFile, conversation: ConversationSpec, *, db: Path, company: str | None,
                   source_url: str | None, engine_factory: EngineFactory) -> ConversationResult:
    key = conversation.company if conversation.company in spec.companies else None
    result = ConversationResult(file=spec.path.name, id=conversation.id, company=key or company or "?",
                                passed=False, turns=len(conversation.turns))
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        sessionmaker = create_sessionmaker(engine)
        now = spec.now
        try:
            if key is not None:
                shop = await _build_company(sessionmaker, spec, key, spec.companies[key])
            else:
                shop = await _clone_company(sessionmaker, source_url=source_url or "", slug=company or "")
        except Exception as exc:  # noqa: BLE001 - a broken setup fails this conversation, with the reason
            result.failure = f"{SETUP_FAILED}: {type(exc).__name__}: {exc}"
            return result
        pipeline = Pipeline(sessionmaker=sessionmaker, responder=engine_factory(lambda: now),
                            channels=ChannelRegistry.default())
        try:
            await _play(_Session(sessionmaker=sessionmaker, shop=shop, now=now, pipeline=pipeline), conversation,
                        result)
        finally:
            await pipeline.close()
        async with sessionmaker() as session:
            result.usage = await assist_usage(session, tenant_id=shop.tenant_id, company_id=shop.company_id)
        return result
    finally:
        await engine.dispose()


async def _play(session: _Session, conversation: ConversationSpec, result: ConversationResult) -> ConversationResult:
    """Play the turns, checking expectations; the first failure ends the conversation."""
    for number, turn in enumerate(conversation.turns, start=1):
        result.turn, result.said = number, turn.describe()
        try:
            replies = await session.turn(turn)
            if turn.expect is not None:
                await session.check(turn.expect, replies)
        except _Failed as exc:
            result.failure = str(exc)
            return result
        except Exception as exc:  # noqa: BLE001 - an engine crash fails the conversation, named
            result.failure = f"error: {type(exc).__name__}: {exc}"
            return result
    result.turn, result.said = None, None
    if conversation.expect is not None:
        try:
            await session.check(conversation.expect, session.last_replies)
        except _Failed as exc:
            result.failure = str(exc)
            return result
    result.passed = True
    return result


# -- setting up the company -------------------------------------------------------------------------------


async def _build_company(sessionmaker: async_sessionmaker[AsyncSession], spec: DialogueFile, key: str,
                         company_spec: CompanySpec) -> _Shop:
    """A tenant with the company of ``company_spec``: staff, schedule, then its catalogue files. Files
    holding products/services are imported together (as worksheets of one workbook, so a hybrid
    company can have a products sheet and a services sheet); FAQ-only files are imported after."""
    items: list[tuple[str, bytes]] = []
    others: list[tuple[str, bytes]] = []
    for name in company_spec.catalogue:
        path = spec.catalogue_path(name)
        data = path.read_bytes()
        parsed = parse_knowledge_file(data, filename=path.name, currency=company_spec.currency)
        (items if parsed.items is not None else others).append((path.name, data))
    async with sessionmaker() as session, session.begin():
        tenant = await create_tenant(session, name=company_spec.name, slug="dialogue-tests")
        company = await create_company(session, tenant_id=tenant.id, slug=key.lower(), name=company_spec.name,
                                       type=company_spec.type, currency=company_spec.currency,
                                       language=company_spec.language, timezone=company_spec.timezone,
                                       locale=company_spec.locale)
        for position, staff in enumerate(company_spec.staff):
            session.add(Resource(tenant_id=tenant.id, company_id=company.id, name=staff, capacity=1, hours=None,
                                 days_off=[], active=True, position=position))
        await session.flush()
        if company_spec.schedule is not None:
            await set_schedule(session, company=company, schedule=company_spec.schedule)
        if len(items) == 1:
            await import_knowledge(session, company=company, data=items[0][1], filename=items[0][0])
        elif items:
            await import_knowledge(session, company=company, data=_workbook(items), filename="catalogue.xlsx")
        for filename, data in others:
            await import_knowledge(session, company=company, data=data, filename=filename)
        inbox = await inbox_of_kind(session, company, "webchat")
        return _Shop(tenant_id=tenant.id, company_id=company.id, inbox_id=inbox.id)


def _workbook(files: list[tuple[str, bytes]]) -> bytes:
    """The tables of several sheet files as one XLSX workbook (one worksheet per table)."""
    book = Workbook()
    book.remove(book.active)
    for filename, data in files:
        for number, table in enumerate(read_tables(data, filename=filename)):
            title = Path(filename).stem[:28] + (f" {number}" if number else "")
            sheet = book.create_sheet(title=table.title or title)
            for _row_number, cells in table.rows:
                sheet.append(list(cells))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_CLONED = (KnowledgeItem, KnowledgeVariant, FaqEntry, Resource, DeliveryWindow)


async def _clone_company(sessionmaker: async_sessionmaker[AsyncSession], *, source_url: str, slug: str) -> _Shop:
    """Copy company ``slug`` of the database ``source_url`` (read only) into the throwaway database:
    company settings, knowledge items and variants, FAQ, resources, delivery windows. Payments use
    the manual provider. Raises ``LookupError`` for an unknown slug."""
    source = create_engine(source_url)
    try:
        async with create_sessionmaker(source)() as read:
            original = (await read.execute(select(Company).where(Company.slug == slug))).scalar_one_or_none()
            if original is None:
                raise LookupError(f"no company {slug!r} in {source.url.render_as_string(hide_password=True)}")
            rows: list[list[Any]] = []
            for model in _CLONED:
                stmt = select(model).where(model.company_id == original.id)
                rows.append(list((await read.execute(stmt)).scalars()))
    finally:
        await source.dispose()
    async with sessionmaker() as session, session.begin():
        tenant = await create_tenant(session, name=original.name, slug="dialogue-tests")
        company = await create_company(session, tenant_id=tenant.id, slug=original.slug, name=original.name,
                                       type=original.type, currency=original.currency, language=original.language,
                                       timezone=original.timezone)
        company.settings = dict(original.settings or {})
        for model, found in zip(_CLONED, rows, strict=True):
            for row in found:
                values = {a.key: getattr(row, a.key) for a in model.__mapper__.column_attrs}
                values.update(tenant_id=tenant.id, company_id=company.id)
                session.add(model(**values))
            await session.flush()
        inbox = await inbox_of_kind(session, company, "webchat")
        return _Shop(tenant_id=tenant.id, company_id=company.id, inbox_id=inbox.id)


# -- one conversation ---------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _Session:
    sessionmaker: async_sessionmaker[AsyncSession]
    shop: _Shop
    pipeline: Pipeline
    now: datetime
    last_replies: list[Reply] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)
    sent: int = 0

    async def turn(self, turn: TurnSpec) -> list[Reply]:
        """Play one turn and return the replies the customer got for it."""
        if turn.pay:
            replies = await self._pay()
        else:
            text = turn.say if turn.say is not None else self._button(turn.press)
            self.sent += 1
            result = await self.pipeline.receive(inbox_id=self.shop.inbox_id, parsed=ParsedInbound(
                contact_source_id=CONTACT, text=text or "", received_at=self.now,
                source_id=f"dialogue-{self.sent}"))
            replies = list(result.replies)
        self.last_replies = replies
        with_buttons = [r for r in replies if r.buttons]
        if with_buttons:
            self.buttons = list(with_buttons[-1].buttons)
        return replies

    def _button(self, press: str | int | None) -> str:
        titles = [b.get("title", "") for b in self.buttons]
        if isinstance(press, int):
            if press > len(self.buttons):
                raise _Failed(f"no button #{press}: the last buttons were {titles}")
            chosen = self.buttons[press - 1]
        else:
            wanted = str(press).casefold()
            matches = [b for b in self.buttons if b.get("title", "").casefold() == wanted]
            if not matches:
                raise _Failed(f"no button {press!r}: the last buttons were {titles}")
            chosen = matches[0]
        return chosen.get("payload") or chosen.get("title", "")

    async def _conversation(self, session: AsyncSession) -> Conversation | None:
        return (await session.execute(select(Conversation).where(
            Conversation.tenant_id == self.shop.tenant_id, Conversation.company_id == self.shop.company_id,
        ).order_by(Conversation.created_at.desc()).limit(1))).scalar_one_or_none()

    async def _latest_order(self, session: AsyncSession) -> Order | None:
        conversation = await self._conversation(session)
        if conversation is None:
            return None
        return (await session.execute(select(Order).options(selectinload(Order.lines)).where(
            Order.tenant_id == self.shop.tenant_id, Order.conversation_id == conversation.id,
        ).order_by(Order.number.desc()).limit(1))).scalar_one_or_none()

    async def _pay(self) -> list[Reply]:
        """Mark the latest order paid (manual provider) and return the messages that sent the customer."""
        async with self.sessionmaker() as session, session.begin():
            order = await self._latest_order(session)
            if order is None:
                raise _Failed("nothing to pay: the conversation has no order")
            before = await self._system_count(session, order.conversation_id)
            await mark_paid(session, order=order, method="test", paid_at=self.now)
        async with self.sessionmaker() as session:
            messages = list((await session.execute(select(Message).where(
                Message.tenant_id == self.shop.tenant_id, Message.conversation_id == order.conversation_id,
                Message.direction == "out").order_by(Message.created_at))).scalars())
        system = [m for m in messages if m.sender == "system"]
        return [Reply.from_message(m) for m in system[before:]]

    async def _system_count(self, session: AsyncSession, conversation_id: uuid.UUID | None) -> int:
        return (await session.execute(select(func.count()).select_from(Message).where(
            Message.tenant_id == self.shop.tenant_id, Message.conversation_id == conversation_id,
            Message.direction == "out", Message.sender == "system"))).scalar_one()

    # -- expectations ------------------------------------------------------------------------------------

    async def check(self, expect: Expect, replies: list[Reply]) -> None:
        """Raise :class:`_Failed` for the first expectation of ``expect`` that does not hold."""
        _check_replies(expect, replies)
        async with self.sessionmaker() as session:
            conversation = await self._conversation(session)
            company = await session.get(Company, self.shop.company_id)
            assert company is not None
            if expect.cart is not None:
                _compare_lines("cart", expect.cart, await self._cart_lines(session, conversation))
            order = await self._latest_order(session)
            if expect.order_lines is not None or expect.order_total is not None or expect.payment_status \
                    or expect.customer_name or expect.phone or expect.address_contains:
                _check_order(expect, order, company)
            if expect.booking is not None or expect.no_booking:
                await self._check_booking(session, expect, conversation, company)
            if expect.handoff is not None:
                got = bool(conversation and conversation.handoff)
                if got != expect.handoff:
                    raise _Failed(f"expected handoff {expect.handoff}, got {got}")

    async def _cart_lines(self, session: AsyncSession, conversation: Conversation | None) -> list[tuple[str, str | None,
                                                                                                      int]]:
        if conversation is None:
            return []
        carts = list((await session.execute(select(Cart).options(selectinload(Cart.lines)).where(
            Cart.tenant_id == self.shop.tenant_id, Cart.conversation_id == conversation.id,
            Cart.status == "open"))).scalars())
        lines: list[tuple[str, str | None, int]] = []
        for cart in carts:
            for line in cart.lines:
                item = await session.get(KnowledgeItem, line.item_id)
                variant = await session.get(KnowledgeVariant, line.variant_id) if line.variant_id else None
                lines.append((item.name if item else "?", variant.name if variant else None, line.quantity))
        return lines

    async def _check_booking(self, session: AsyncSession, expect: Expect, conversation: Conversation | None,
                             company: Company) -> None:
        booking = None
        if conversation is not None:
            booking = (await session.execute(select(Booking).where(
                Booking.tenant_id == self.shop.tenant_id, Booking.conversation_id == conversation.id,
            ).order_by(Booking.created_at.desc()).limit(1))).scalar_one_or_none()
        if expect.no_booking:
            if booking is not None:
                raise _Failed(f"expected no booking, got {_booking_text(booking, company)}")
            return
        want = expect.booking
        assert want is not None
        if booking is None:
            raise _Failed("expected a booking, got none")
        local = booking.start_at.astimezone(ZoneInfo(company.timezone)).strftime("%Y-%m-%d %H:%M")
        if want.service is not None and booking.service_name.casefold() != want.service.casefold() \
                or want.time is not None and local != want.time \
                or want.status is not None and booking.status != want.status:
            raise _Failed(f"expected booking {want.service or '*'} at {want.time or '*'} ({want.status or '*'}), "
                          f"got {_booking_text(booking, company)}")


def _booking_text(booking: Booking, company: Company) -> str:
    local = booking.start_at.astimezone(ZoneInfo(company.timezone)).strftime("%Y-%m-%d %H:%M")
    return f"{booking.service_name} at {local} ({booking.status})"


def _check_replies(expect: Expect, replies: list[Reply]) -> None:
    # What the customer sees: the text and the button titles (times are often offered as buttons).
    texts = [" ".join([r.text, *(b.get("title", "") for b in r.buttons)]).replace("\u00a0", " ").replace("\u202f", " ")
             for r in replies]
    folded = [t.casefold() for t in texts]
    shown = " | ".join(t.replace("\n", " / ") for t in texts) or "(no reply)"
    if len(shown) > 300:
        shown = shown[:297] + "..."
    for wanted in expect.reply_contains:
        if not any(wanted.casefold() in t for t in folded):
            raise _Failed(f"expected a reply containing {wanted!r}, got: {shown}")
    if expect.reply_contains_any and not any(w.casefold() in t for w in expect.reply_contains_any for t in folded):
        raise _Failed(f"expected a reply containing one of {expect.reply_contains_any}, got: {shown}")
    for unwanted in expect.reply_not_contains:
        if any(unwanted.casefold() in t for t in folded):
            raise _Failed(f"expected no reply containing {unwanted!r}, got: {shown}")
    if expect.reply_language is not None:
        # The first line frames the reply ("Which service would you like?"); the lines under it may
        # quote catalogue names in the shop's language.
        first = next((line for r in replies for line in r.text.splitlines() if line.strip()), "")
        got = detect_language(first, default="?") if first else "(no reply)"
        if got != expect.reply_language:
            raise _Failed(f"expected a reply in {expect.reply_language!r}, got {got!r}: {shown}")
    if expect.buttons_include:
        titles = [b.get("title", "") for r in replies for b in r.buttons]
        for wanted in expect.buttons_include:
            if wanted.casefold() not in {t.casefold() for t in titles}:
                raise _Failed(f"expected a button {wanted!r}, got {titles}")


def _line_key(line: CartLineExpect | tuple[str, str | None, int]) -> tuple[str, str, int]:
    if isinstance(line, CartLineExpect):
        return line.item.casefold(), (line.variant or "").casefold(), line.quantity
    return line[0].casefold(), (line[1] or "").casefold(), line[2]


def _lines_text(lines: list[tuple[str, str | None, int]]) -> str:
    return "[" + ", ".join(f"{q} × {n}" + (f" ({v})" if v else "") for n, v, q in lines) + "]" if lines else "empty"


def _compare_lines(what: str, expected: list[CartLineExpect], got: list[tuple[str, str | None, int]]) -> None:
    if sorted(map(_line_key, expected)) != sorted(map(_line_key, got)):
        want = [(e.item, e.variant, e.quantity) for e in expected]
        raise _Failed(f"expected {what} {_lines_text(want)}, got {_lines_text(got)}")


def _check_order(expect: Expect, order: Order | None, company: Company) -> None:
    if order is None:
        raise _Failed("expected an order, got none")
    if expect.order_lines is not None:
        _compare_lines("order lines", expect.order_lines,
                       [(ln.name, ln.variant, ln.quantity) for ln in order.lines])
    if expect.order_total is not None:
        formatted = money(order.total_minor, order.currency, company.locale)  # as the customer reads it
        if isinstance(expect.order_total, int):
            ok = order.total_minor == expect.order_total
        else:
            wanted = " ".join(expect.order_total.replace("\u00a0", " ").split())
            ok = wanted in {formatted, *(money(order.total_minor, order.currency, loc) for loc in ("en_US", "ru_RU"))}
        if not ok:
            raise _Failed(f"expected order total {expect.order_total}, got {formatted} ({order.total_minor})")
    if expect.payment_status is not None and order.payment_status != expect.payment_status:
        raise _Failed(f"expected payment status {expect.payment_status!r}, got {order.payment_status!r}")
    if expect.customer_name is not None and (order.customer_name or "") != expect.customer_name:
        raise _Failed(f"expected customer name {expect.customer_name!r}, got {order.customer_name!r}")
    if expect.phone is not None and (order.phone or "") != expect.phone:
        raise _Failed(f"expected phone {expect.phone!r}, got {order.phone!r}")
    if expect.address_contains is not None and \
            expect.address_contains.casefold() not in (order.delivery_address or "").casefold():
        raise _Failed(f"expected an address containing {expect.address_contains!r}, got {order.delivery_address!r}")
