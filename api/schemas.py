"""Request and response bodies of the HTTP API (money in integer minor units, times in UTC ISO-8601)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TenantIn(BaseModel):
    """A new tenant: ``slug`` is 1-64 chars of a-z, 0-9 and '-'."""

    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=1, max_length=64)


class TenantOut(_Out):
    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime


class CompanyIn(BaseModel):
    """A new company. ``slug`` is global (it is the web chat URL ``/chat/{slug}``); ``type`` is
    product | service | hybrid; ``currency`` ISO-4217; ``language`` en | ru; ``timezone`` IANA;
    ``locale`` the locale money is written in for customers (``de_DE``; default: the language's usual
    locale, ``en_US``/``ru_RU``)."""

    slug: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    type: str = "product"
    currency: str = "USD"
    language: str = "en"
    timezone: str = "UTC"
    locale: str | None = Field(default=None, max_length=32)


class CompanyOut(_Out):
    id: uuid.UUID
    slug: str
    human_id: str
    name: str
    type: str
    currency: str
    language: str
    timezone: str
    locale: str
    payment_provider: str
    kb_version: int
    created_at: datetime


class ImportJobError(BaseModel):
    """One reason a file was refused: ``row`` is the spreadsheet row (header = 1), ``column`` the header
    (or the column letter for a limit), ``sheet`` the worksheet, ``limit`` the exceeded limit
    (``max_bytes``, ``max_rows``, ``max_columns``, ``max_cell_chars``) or ``None``."""

    message: str
    row: int | None = None
    column: str | None = None
    sheet: str | None = None
    limit: str | None = None


class ImportWarningOut(BaseModel):
    """A warning of an accepted file (imported anyway): ``kind`` (``duplicate_sku``, ``formula``,
    ``dropped_column``, ``long_name``, ``skipped_sheet``, ``skipped_product``...), ``row`` (header = 1),
    ``column`` the header, ``sheet`` the worksheet (each ``None`` when not about a cell), ``text`` the
    whole line as a person reads it."""

    kind: str | None = None
    message: str
    row: int | None = None
    column: str | None = None
    sheet: str | None = None
    text: str


class ImportCounts(BaseModel):
    """What an import wrote."""

    items: int
    variants: int
    faq: int


class ImportJobOut(_Out):
    """A knowledge-base import job. ``status``: queued → running → done | failed. ``rows_processed``
    is the rows read so far, ``total_rows`` the file's rows once known. ``counts`` is set when done,
    ``errors`` when failed (the knowledge base is then unchanged). Times are UTC."""

    id: uuid.UUID
    filename: str
    size_bytes: int
    status: Literal["queued", "running", "done", "failed"]
    rows_processed: int
    total_rows: int | None
    counts: ImportCounts | None
    warnings: list[ImportWarningOut]
    errors: list[ImportJobError]
    kb_version: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class VariantOut(_Out):
    id: uuid.UUID
    name: str
    options: dict[str, Any]
    sku: str | None
    price_minor: int | None
    stock: int | None


class ItemOut(_Out):
    id: uuid.UUID
    kind: str
    handle: str | None
    sku: str | None
    name: str
    description: str
    category: str | None
    price_minor: int | None
    currency: str
    stock: int | None
    image_url: str | None
    variants: list[VariantOut]


class FaqOut(_Out):
    id: uuid.UUID
    question: str
    answer: str


class MessageOut(BaseModel):
    """One message of a conversation; ``seq`` orders them (1, 2, 3...)."""

    id: uuid.UUID
    seq: int
    direction: str
    sender: str
    text: str
    payload: dict[str, Any]
    status: str
    created_at: datetime


class ContactOut(BaseModel):
    id: uuid.UUID
    display_name: str = Field(default="", description="Name, else phone, else e-mail, else '<channel> visitor <id>'")
    name: str | None
    phone: str | None
    email: str | None
    source_id: str | None = Field(description="How the contact is known in the conversation's inbox (web id...)")


class ConversationOut(BaseModel):
    """A conversation as listed: ``handoff`` means a manager owns it and the bot is silent."""

    id: uuid.UUID
    company_id: uuid.UUID | None = None
    channel: str
    status: str
    handoff: bool
    needs_human: bool = Field(default=False, description="A manager owns it (handoff) or it was flagged (pending)")
    assignee_user_id: uuid.UUID | None = None
    labels: list[str] = Field(default_factory=list)
    contact: ContactOut
    last_message: MessageOut | None
    created_at: datetime
    updated_at: datetime


class ConversationDetail(ConversationOut):
    """A conversation with every message and, from ``api.inbox.conversation_view``, its orders (each
    with ``payments``), bookings and private notes."""

    messages: list[MessageOut]
    orders: list[dict[str, Any]] = Field(default_factory=list)
    bookings: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[dict[str, Any]] = Field(default_factory=list)
    assistant: dict[str, Any] | None = None


class ManagerMessageIn(BaseModel):
    """A person's reply: ``text``, or the shortcut of one of the company's canned replies."""

    text: str | None = Field(default=None, min_length=1, max_length=4000)
    canned_reply: str | None = Field(default=None, min_length=1, max_length=65,
                                     description="Shortcut of a canned reply to send instead of text")

    @model_validator(mode="after")
    def _one_of(self) -> ManagerMessageIn:
        if (self.text is None or not self.text.strip()) == (self.canned_reply is None):
            raise ValueError("give either a non-blank text or a canned_reply")
        return self


class MarkPaidIn(BaseModel):
    """How a manager was paid outside the payment page."""

    method: Literal["cash", "bank_transfer", "other"] = "cash"


class WebChatIn(BaseModel):
    """A visitor's message. The visitor is not named here: the server knows it from the ``cc_visitor``
    cookie or the ``visitor_token`` header. ``message_id`` (optional, per visitor) makes a retried POST
    a no-op (``duplicate: true``)."""

    text: str = Field(max_length=4000)
    message_id: str | None = Field(default=None, max_length=128)
    name: str | None = None


class ReplyOut(BaseModel):
    """A bot reply: text, buttons (``title`` shown, ``payload`` sent back when pressed), link, image."""

    text: str
    buttons: list[dict[str, str]]
    url: str | None
    image_url: str | None


class WebChatOut(BaseModel):
    """The answer to a visitor's message. ``visitor_token`` is set only on the answer that started a
    new visitor: clients without cookies send it back as ``Authorization: Bearer <token>`` or
    ``X-Visitor-Token`` (browsers also got it as the HttpOnly ``cc_visitor`` cookie)."""

    conversation_id: uuid.UUID | None
    replies: list[ReplyOut]
    duplicate: bool
    handoff: bool = False
    visitor_token: str | None = None


class WebChatMessage(BaseModel):
    """A message as the chat page shows it (both directions)."""

    seq: int
    direction: str
    sender: str
    text: str
    buttons: list[dict[str, str]]
    url: str | None
    image_url: str | None
    created_at: datetime


class WebChatPoll(BaseModel):
    """The visitor's current conversation (``null`` and no messages for a request without a valid
    visitor identity) and its language (``en``/``ru``, ``null`` when not known yet): the chat page
    switches its own texts to it."""

    conversation_id: uuid.UUID | None
    messages: list[WebChatMessage]
    language: str | None = None
