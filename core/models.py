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
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

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


class Inbox(TenantOwned, Base):
    """A company's configured channel (the adapter class is a ``Channel``). ``credentials`` is
    ciphertext made by ``core.security.SecretBox``; ``settings`` is plain JSON."""

    __tablename__ = "inboxes"
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    credentials: Mapped[str | None] = mapped_column(Text)
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
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


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
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
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
    """A payment attempt for an order (customer → business). ``token`` addresses the manual payment
    page; ``checkout_url`` is what the customer is sent; ``method`` records how a paid payment was
    settled (test, cash, bank_transfer, card...)."""

    __tablename__ = "payments"
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24), default="no_payment_link")
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(String(2000))
    provider_ref: Mapped[str | None] = mapped_column(String(255))
    method: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
