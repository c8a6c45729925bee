"""SQLAlchemy 2 models. Every tenant-owned row carries ``tenant_id``; money is in minor units with an
ISO-4217 ``currency``; timestamps are timezone-aware UTC (``UTCDateTime``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.i18n import company_locale
from core.timeutil import utcnow

CompanyType = Literal["product", "service", "hybrid"]
ConversationStatus = Literal["open", "pending", "resolved"]
PaymentStatus = Literal["no_payment_link", "payment_link_sent", "paid", "expired", "refunded", "failed"]
OrderStatus = Literal["pending_payment", "paid", "cancelled"]
Direction = Literal["in", "out"]

COMPANY_TYPES: tuple[str, ...] = ("product", "service", "hybrid")
PAYMENT_STATUSES: tuple[str, ...] = ("no_payment_link", "payment_link_sent", "paid", "expired", "refunded", "failed")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes; SQLite returns naive ones, which are read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the engine stores timezone-aware UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EncryptedText(TypeDecorator[str]):
    """Marks a column that holds ``core.security.SecretBox`` ciphertext (a Fernet token as text).

    The DDL is plain ``TEXT`` and values pass through unchanged (callers encrypt and decrypt with the
    runtime's box, so the key never reaches the model layer); the marker is how key rotation
    (``core.vault.encrypted_columns``) and tenant deletion find every encrypted column. Declare every
    new secret-at-rest column with it.
    """

    impl = Text
    cache_ok = True


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TenantOwned(TimestampMixin):
    """Mixin: a UUID primary key and the owning tenant."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


class Tenant(TimestampMixin, Base):
    """A customer of the platform (a business owner's account)."""

    __tablename__ = "tenants"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)


class Company(TenantOwned, Base):
    """A business of a tenant. ``slug`` is global (it appears in public URLs such as ``/chat/{slug}``);
    ``human_id`` (``COMP001``) is unique per tenant."""

    __tablename__ = "companies"
    __table_args__ = (UniqueConstraint("tenant_id", "human_id", name="uq_company_human_id"),)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    human_id: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16), default="product")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    payment_provider: Mapped[str] = mapped_column(String(32), default="manual")
    kb_version: Mapped[int] = mapped_column(Integer, default=0)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Stripe Connect (commerce.stripe_connect): the company's connected account and its onboarding
    # state, refreshed from ``accounts.retrieve`` and ``account.updated`` webhooks. Payments go to
    # this account as direct charges; without ``stripe_charges_enabled`` no Stripe link is issued.
    stripe_account_id: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    stripe_charges_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    stripe_details_submitted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The API key of the company's language-model server (issue 9; ``bot.llm.config``): SecretBox
    # ciphertext, rotated with every other encrypted column, never returned (shown masked) or logged.
    model_api_key: Mapped[str | None] = mapped_column(EncryptedText())

    @property
    def locale(self) -> str:
        """The Babel locale the company's money is written in (``en_US``, ``ru_RU``): its
        ``settings["locale"]``, else the usual locale of its language (``core.i18n.company_locale``)."""
        return company_locale(self)


class KnowledgeItem(TenantOwned, Base):
    """A product or service of a company's knowledge base. ``price_minor`` is the base price (the
    lowest variant price when variants differ); ``stock`` is ``None`` when stock is not tracked."""

    __tablename__ = "kb_items"
    __table_args__ = (Index("ix_kb_items_company", "company_id"),)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="product")
    handle: Mapped[str | None] = mapped_column(String(255))
    sku: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(255))
    price_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int | None] = mapped_column(Integer)
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    image_url: Mapped[str | None] = mapped_column(String(1000))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    variants: Mapped[list[KnowledgeVariant]] = relationship(
        back_populates="item", order_by="KnowledgeVariant.position", cascade="all, delete-orphan", lazy="selectin"
    )


class KnowledgeVariant(TenantOwned, Base):
    """A variant of an item (size, colour...). ``options`` maps option name to value, e.g.
    ``{"Size": "Medium"}``; ``name`` is the values joined with `` / ``."""

    __tablename__ = "kb_variants"
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kb_items.id", ondelete="CASCADE"), index=True)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sku: Mapped[str | None] = mapped_column(String(128))
    price_minor: Mapped[int | None] = mapped_column(BigInteger)
    stock: Mapped[int | None] = mapped_column(Integer)
    image_url: Mapped[str | None] = mapped_column(String(1000))
    position: Mapped[int] = mapped_column(Integer, default=0)
    item: Mapped[KnowledgeItem] = relationship(back_populates="variants")


class FaqEntry(TenantOwned, Base):
    """A question/answer row of a company's knowledge base."""

    __tablename__ = "kb_faq"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)


class KnowledgeImport(TenantOwned, Base):
    """Audit record of one knowledge-base import (successful or refused)."""

    __tablename__ = "kb_imports"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))  # "ok" | "failed"
    items: Mapped[int] = mapped_column(Integer, default=0)
    variants: Mapped[int] = mapped_column(Integer, default=0)
    faq: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class ImportJob(TenantOwned, Base):
    """A knowledge-base import running in the background (``knowledge.import_jobs``).

    ``status`` goes ``queued`` → ``running`` → ``done`` | ``failed`` (each step one atomic UPDATE).
    ``size_bytes`` is the upload's size; ``rows_processed`` the rows read so far and ``total_rows``
    the file's row count once known (``None`` before). ``counts`` is ``{"items", "variants", "faq"}``
    once done; ``warnings`` a list of strings; ``errors`` a list of ``{"message", "row", "column",
    "sheet", "limit"}`` when failed. ``heartbeat_at`` is refreshed while the job runs: a queued or
    running job whose heartbeat is old belonged to a process that died and is failed by the sweep.
    Times are aware UTC.
    """

    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_company_created", "company_id", "created_at"),)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    rows_processed: Mapped[int] = mapped_column(Integer, default=0)
    total_rows: Mapped[int | None] = mapped_column(Integer)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    kb_version: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Inbox(TenantOwned, Base):
    """A company's configured channel (the adapter class is a ``Channel``). ``credentials`` is
    ciphertext made by ``core.security.SecretBox``; ``settings`` is plain JSON."""

    __tablename__ = "inboxes"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    credentials: Mapped[str | None] = mapped_column(EncryptedText())
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Contact(TenantOwned, Base):
    """A customer of a tenant's company."""

    __tablename__ = "contacts"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))


class ContactInbox(TenantOwned, Base):
    """How a contact is known in one inbox: ``source_id`` is the provider's id (chat id, e-mail, web id)."""

    __tablename__ = "contact_inboxes"
    __table_args__ = (UniqueConstraint("inbox_id", "source_id", name="uq_contact_inbox_source"),)
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    inbox_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    source_id: Mapped[str] = mapped_column(String(255))


class Conversation(TenantOwned, Base):
    """A thread between a contact and a company in one inbox. ``status``: open | pending | resolved;
    ``handoff`` means a manager owns it and the bot stays silent; ``state`` is the dialogue state."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_company", "company_id", "updated_at"),)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    inbox_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    handoff: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(8))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The campaign the contact came from (``core.leads.lead_source_of`` of the first message: a
    # ``ref: <code>`` / ``#ref-<code>`` tag or a Telegram ``/start <param>``), lower case; None if untagged.
    lead_source: Mapped[str | None] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # The person the conversation is assigned to (``api.inbox.assign``: the manager of its company, an
    # owner of the tenant or a platform admin). ``None``: nobody; deleting the user unassigns it.
    assignee_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                               index=True)
    # The ``seq`` of the latest message (``core.conversations.append_message`` keeps it).
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Message(TenantOwned, Base):
    """One message of a conversation. ``direction``: in | out; ``sender``: contact | bot | manager |
    system; ``source_id`` is the provider's message id (the dedupe key, unique per inbox and
    direction); ``status``: received | pending | sent | failed; ``payload`` holds buttons and url."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("inbox_id", "direction", "source_id", name="uq_message_source"),
        Index("ix_messages_conversation", "conversation_id", "created_at"),
        Index("ix_messages_status", "status"),
    )
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    inbox_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(3))
    sender: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="received")
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When an outbound message was claimed for sending (``status = "sending"``): a claim older than
    # ``channels.pipeline.SENDING_STALE`` no longer holds back the conversation's later replies.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Cart(TenantOwned, Base):
    """The open cart of a conversation (``status``: open | checked_out)."""

    __tablename__ = "carts"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    lines: Mapped[list[CartLine]] = relationship(
        back_populates="cart", order_by="CartLine.created_at", cascade="all, delete-orphan", lazy="selectin"
    )


class CartLine(TenantOwned, Base):
    """One line of a cart: an item, an optional variant, a quantity (prices are read at checkout)."""

    __tablename__ = "cart_lines"
    cart_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kb_items.id", ondelete="CASCADE"))
    variant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("kb_variants.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(Integer)
    cart: Mapped[Cart] = relationship(back_populates="lines")


class Order(TenantOwned, Base):
    """A frozen order. ``number`` is per company and human-readable; ``payment_status`` follows the
    latest ``Payment``: no_payment_link → payment_link_sent → paid (also expired, refunded, failed)."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("company_id", "number", name="uq_order_number"),)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"),
                                                              index=True)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(24), default="pending_payment")
    payment_status: Mapped[str] = mapped_column(String(24), default="no_payment_link")
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    delivery_address: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.position", cascade="all, delete-orphan", lazy="selectin"
    )


class OrderLine(TenantOwned, Base):
    """A snapshot line: names and unit price copied at checkout, so later KB edits do not change it."""

    __tablename__ = "order_lines"
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    variant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    sku: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(500))
    variant: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer, default=0)
    order: Mapped[Order] = relationship(back_populates="lines")

    @property
    def line_total_minor(self) -> int:
        return self.unit_price_minor * self.quantity


class Payment(TenantOwned, Base):
    """A payment attempt for an order (customer → business). ``token_hash`` is the SHA-256 hex of the
    manual payment page's token (``/pay/{token}``; the token itself is never stored, see
    ``commerce.payments``), ``None`` for a payment without a page (marked paid by a manager);
    ``checkout_url`` is the link the customer is sent (for the manual provider it contains the token,
    like the chat message that carried it: it is the customer's link, re-sent while it is live);
    ``method`` records how a paid payment was settled (test, cash, bank_transfer, card...)."""

    __tablename__ = "payments"
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24), default="no_payment_link")
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(String(2000))
    provider_ref: Mapped[str | None] = mapped_column(String(255))
    method: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookEvent(TimestampMixin, Base):
    """A payment-provider webhook event that was handled (platform-level, not tenant-owned: an event
    may belong to no tenant). The unique ``(provider, event_id)`` row is claimed in the same
    transaction as the change the event causes, so a redelivered event changes nothing.
    ``outcome``: processed | ignored; ``reason`` says why an event was ignored; ``account`` is the
    connected account the event came from (Stripe Connect), ``tenant_id`` the tenant it touched."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_webhook_event"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    account: Mapped[str | None] = mapped_column(String(64))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    outcome: Mapped[str] = mapped_column(String(16), default="processed")
    reason: Mapped[str | None] = mapped_column(String(255))


# --- Bookings of service companies, delivery windows and calendar feeds (commerce.schedule,
# commerce.bookings, commerce.delivery, commerce.calendar_feed; migration 0003) ---

BookingStatus = Literal["held", "confirmed", "released", "cancelled", "no_show"]
BOOKING_STATUSES: tuple[str, ...] = ("held", "confirmed", "released", "cancelled", "no_show")


class Resource(TenantOwned, Base):
    """Who or what performs a service (a stylist, a chair, a room). ``capacity`` is how many bookings
    it takes at the same time (1 for a person). ``hours`` overrides the company's opening hours (same
    shape as ``Company.settings["schedule"]["hours"]``: ``{"mon": ["09:00-13:00"], ...}``); ``days_off``
    lists ISO dates (``"2026-12-24"``) on top of the company's. Deactivate (``active``) rather than
    delete a resource that has bookings."""

    __tablename__ = "resources"
    __table_args__ = (UniqueConstraint("company_id", "name", name="uq_resource_name"),)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    days_off: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Booking(TenantOwned, Base):
    """An appointment for a service. ``status``: held (waiting for the prepayment until
    ``hold_expires_at``) → confirmed (prepaid, or nothing to prepay); held → released (hold expired,
    payment failed); held/confirmed → cancelled. Times are aware UTC; money in minor units of
    ``currency`` (``prepay_minor`` is what the linked ``order_id`` asks for, 0 when nothing is
    prepaid). ``refund_due`` is set when a paid prepayment must be returned (early cancellation, or a
    payment that arrived after the slot was lost). Service/resource/customer names are snapshots."""

    __tablename__ = "bookings"
    __table_args__ = (
        Index("ix_bookings_company_start", "company_id", "start_at"),
        Index("ix_bookings_status_hold", "status", "hold_expires_at"),
    )
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    service_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("kb_items.id", ondelete="SET NULL"))
    resource_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("resources.id"), index=True)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="held")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    service_name: Mapped[str] = mapped_column(String(500))
    resource_name: Mapped[str] = mapped_column(String(200))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    price_minor: Mapped[int | None] = mapped_column(BigInteger)
    prepay_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(16))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    release_reason: Mapped[str | None] = mapped_column(String(32))
    refund_due: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class BookingSlot(TenantOwned, Base):
    """One 5-minute cell (``commerce.schedule.CELL_MINUTES``, aligned to the UTC epoch) of a resource's
    time taken by an active (held or confirmed) booking, on ``seat`` 0..capacity-1. The unique
    ``(resource_id, slot_start, seat)`` constraint makes double booking impossible in the database on
    SQLite and PostgreSQL alike; rows are deleted when the booking is released or cancelled."""

    __tablename__ = "booking_slots"
    __table_args__ = (UniqueConstraint("resource_id", "slot_start", "seat", name="uq_booking_slot"),)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    slot_start: Mapped[datetime] = mapped_column(UTCDateTime())
    seat: Mapped[int] = mapped_column(Integer, default=0)


class DeliveryWindow(TenantOwned, Base):
    """A recurring delivery window of a company for a city (and optional zone): local wall-clock
    ``start_time``-``end_time`` (``"HH:MM"``, company timezone) on ``weekdays`` (0 = Monday; empty =
    every day), taking ``capacity`` orders per day; orders must choose it ``cutoff_minutes`` before it
    starts."""

    __tablename__ = "delivery_windows"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    city: Mapped[str] = mapped_column(String(200))
    zone: Mapped[str | None] = mapped_column(String(200))
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)
    start_time: Mapped[str] = mapped_column(String(5))
    end_time: Mapped[str] = mapped_column(String(5))
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    cutoff_minutes: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OrderDelivery(TenantOwned, Base):
    """The delivery window chosen for a paid order (one per order): the window, the local ``day``
    (ISO ``YYYY-MM-DD``), its instants ``start_at``/``end_at`` (aware UTC) and the ``seat`` taken. The
    unique ``(window_id, day, seat)`` constraint enforces the window's capacity in the database."""

    __tablename__ = "order_deliveries"
    __table_args__ = (UniqueConstraint("window_id", "day", "seat", name="uq_delivery_seat"),)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    window_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("delivery_windows.id", ondelete="CASCADE"))
    day: Mapped[str] = mapped_column(String(10))
    seat: Mapped[int] = mapped_column(Integer, default=0)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    city: Mapped[str] = mapped_column(String(200))
    zone: Mapped[str | None] = mapped_column(String(200))


class CalendarFeed(TenantOwned, Base):
    """A company's secret iCalendar feed (``/calendar/{company}/{token}.ics``). Only ``token_hash``
    (SHA-256 hex, the indexed lookup key) is stored: the URL is shown once, when issued or rotated."""

    __tablename__ = "calendar_feeds"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    rotated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- Google Calendar sync (commerce.calendar_sync; migration 0004) ---


class GoogleCalendarLink(TenantOwned, Base):
    """A company's connected Google Calendar (one per company). ``credentials`` is ciphertext made by
    ``core.security.SecretBox`` of a JSON object: a service-account key or an OAuth refresh token with
    its client id/secret; ``auth_kind`` says which (service_account | oauth) and ``account`` is the
    non-secret identity shown to admins (service-account e-mail or OAuth client id). ``last_error``
    is the message of the last sync that failed (``None`` after one that succeeded)."""

    __tablename__ = "google_calendar_links"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), unique=True)
    calendar_id: Mapped[str] = mapped_column(String(255))
    auth_kind: Mapped[str] = mapped_column(String(16))
    account: Mapped[str | None] = mapped_column(String(320))
    credentials: Mapped[str] = mapped_column(EncryptedText())
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)


class CalendarEvent(TenantOwned, Base):
    """The Google Calendar event made for a confirmed booking: ``event_id`` in ``calendar_id``, and
    what was last written (``start_at``/``end_at`` aware UTC, event ``status``, ``digest`` = SHA-256 of
    the event body), so a sync only sends what changed. ``booking_id`` becomes NULL when the booking
    row is deleted (the next sync then deletes the event)."""

    __tablename__ = "calendar_events"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    booking_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"),
                                                         unique=True)
    calendar_id: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str] = mapped_column(String(255))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="confirmed")
    digest: Mapped[str] = mapped_column(String(64))
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- Accounts and roles (core.users, api.auth; migration 0010) ---
# Users are people of the platform, not of one tenant: ``users``, ``refresh_tokens`` and
# ``auth_codes`` carry no tenant_id (a person may own one tenant and manage companies of another).
# Every row that grants rights inside a tenant (``tenant_owners``, ``company_managers``, ``api_keys``)
# belongs to that tenant.


class User(TimestampMixin, Base):
    """A person who signs in. ``email`` is stored lower-cased and unique; ``password_hash`` is a
    ``pwdlib`` Argon2 hash (``None`` for a user invited by e-mail who has not set one yet);
    ``email_verified_at`` is set by the e-mailed 6-digit code, a magic link or a password reset;
    ``is_platform_admin`` makes the user the platform ``admin`` (every tenant)."""

    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class TenantOwner(TenantOwned, Base):
    """``user_id`` is an ``owner`` of the tenant: every right inside it."""

    __tablename__ = "tenant_owners"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id", name="uq_tenant_owner"),)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class CompanyManager(TenantOwned, Base):
    """``user_id`` is the ``manager`` of the company. ``company_id`` is unique: a company has at most
    one manager (a manager may serve many companies, of any tenant)."""

    __tablename__ = "company_managers"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assigned_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ApiKey(TenantOwned, Base):
    """A tenant's API key for scripts and the CLI (``Authorization: Bearer cc_...``). Only
    ``key_hash`` (SHA-256 hex of the whole key) is stored; ``prefix`` (the first 10 characters) is
    shown to tell keys apart. ``last_used_at`` is updated when the key authenticates a request;
    a key with ``revoked_at`` is refused."""

    __tablename__ = "api_keys"
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RefreshToken(TimestampMixin, Base):
    """One refresh token of a sign-in (``family_id``: every token rotated from the same sign-in).
    Only ``token_hash`` (SHA-256 hex) is stored. A token is spent (``used_at``) when exchanged;
    presenting a spent token again revokes the whole family (``revoked_at``)."""

    __tablename__ = "refresh_tokens"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuthCode(TimestampMixin, Base):
    """A single-use, expiring secret mailed to a user: ``purpose`` is ``verify`` (6-digit code),
    ``magic`` (sign-in link) or ``reset`` (password reset link). ``code_hash`` is HMAC-SHA256 of the
    secret under a key derived from the server's key material (a 6-digit code is too small to store
    as a plain hash); ``attempts`` counts wrong codes (5 spend it)."""

    __tablename__ = "auth_codes"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
# --- The manager's inbox (api.inbox; migration 0011) ---


class Label(TenantOwned, Base):
    """A label of a company's label set (``vip``, ``wholesale``...); conversations carry labels
    through ``ConversationLabel``. ``name`` is unique per company; ``color`` is a free CSS colour."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("company_id", "name", name="uq_label_name"),)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str | None] = mapped_column(String(32))


class ConversationLabel(TenantOwned, Base):
    """A label put on a conversation (one row per conversation and label)."""

    __tablename__ = "conversation_labels"
    __table_args__ = (UniqueConstraint("conversation_id", "label_id", name="uq_conversation_label"),)
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                       index=True)
    label_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), index=True)


class ConversationNote(TenantOwned, Base):
    """A private note of the shop's staff on a conversation (never sent to the customer).
    ``author_user_id`` is the writer (a user; ``None`` for an API key, the admin token or a deleted user)."""

    __tablename__ = "conversation_notes"
    __table_args__ = (Index("ix_conversation_notes_conversation", "conversation_id", "created_at"),)
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    author_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)


class CannedReply(TenantOwned, Base):
    """A ready-made answer of a company, picked by its ``shortcut`` (unique per company)."""

    __tablename__ = "canned_replies"
    __table_args__ = (UniqueConstraint("company_id", "shortcut", name="uq_canned_reply_shortcut"),)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    shortcut: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

# --- Alerts to a company's staff (core.alerts, channels.alerts; migration 0012) ---

AlertKind = Literal["handoff.requested", "message.failed", "order.paid", "booking.confirmed", "booking.cancelled"]
ALERT_KINDS: tuple[str, ...] = ("handoff.requested", "message.failed", "order.paid", "booking.confirmed",
                                "booking.cancelled")
SubscriptionKind = Literal["email", "telegram", "webhook"]
SUBSCRIPTION_KINDS: tuple[str, ...] = ("email", "telegram", "webhook")


class AlertSubscription(TenantOwned, Base):
    """Who of a company's staff is told about which events, and how. ``kind``: email (``target`` an
    address) | telegram (``target`` a chat id) | webhook (``target`` an http(s) URL, ``secret`` the
    ``core.security.SecretBox`` ciphertext of its HMAC signing key). ``events`` lists ``ALERT_KINDS``."""

    __tablename__ = "alert_subscriptions"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str | None] = mapped_column(EncryptedText())
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class AlertEvent(TenantOwned, Base):
    """Something a company's staff should hear about, written in the same transaction as the change
    (a transactional outbox). ``status``: pending → dispatched (its deliveries were created, once:
    the claim is ``UPDATE ... WHERE status = 'pending'``). ``data`` is the event's JSON body
    (identifiers, order number, amounts in minor units + currency, aware UTC times as ISO strings)."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_status", "status", "created_at"),
                      Index("ix_alert_events_company", "company_id", "kind", "created_at"))
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"),
                                                              index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertDelivery(TenantOwned, Base):
    """One event to one subscription. ``status``: pending → sending (claimed, committed before the
    provider is called, so it is never sent twice) → sent | failed. ``attempts`` counts calls;
    ``status_code``/``error`` are the last attempt's (every attempt is in ``alert_delivery_attempts``)."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "subscription_id", name="uq_alert_delivery"),
                      Index("ix_alert_deliveries_status", "status"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_subscriptions.id", ondelete="CASCADE"),
                                                       index=True)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertDeliveryAttempt(TenantOwned, Base):
    """One call to the provider for a delivery: ``number`` (1-based), ``ok``, the HTTP/SMTP
    ``status_code`` when there was an answer and the ``error`` text otherwise (secrets never included)."""

    __tablename__ = "alert_delivery_attempts"
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_deliveries.id", ondelete="CASCADE"),
                                                   index=True)
    number: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)



class ModelUsage(TenantOwned, Base):
    """One turn answered with a language model (issue 9): the tokens the model server reported, the cost
    in micro-units of USD (from the company's prices per million tokens), and ``fallback`` (why the
    rules answered instead: ``timeout``, ``error``, ``circuit_open``, ``not_configured``, ``budget``,
    ``guard``; ``None`` when the model's reply was sent). Per-tenant and per-conversation totals are sums."""

    __tablename__ = "model_usage"
    __table_args__ = (Index("ix_model_usage_tenant_created", "tenant_id", "created_at"),)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[str] = mapped_column(String(16))
    requests: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    fallback: Mapped[str | None] = mapped_column(String(32))
