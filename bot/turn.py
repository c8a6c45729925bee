"""One customer message being answered (``Turn``), shared by the pipeline's stages.

Kept in its own module so that understanding, policy, actions, rendering and the booking and
delivery dialogues can all name it without importing the engine (no import cycles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.messages import Button, InboundMessage, OutboundMessage
from bot.state import DialogueState, Pending, Step
from core.i18n import company_locale
from core.models import Company, Conversation
from core.tenancy import TenantScope
from core.timeutil import utcnow
from knowledge.search import KnowledgeIndex


@dataclass
class Turn:
    """One message being answered: the session, the rows involved, the index, the state (changed in
    place by the policy and saved after the turn), the reply language, the question that was open
    (``asked``/``pending``) before this message, the text understood, and ``now`` (aware UTC, from the
    engine's clock). ``scope`` is the tenant scope every query of the turn goes through; ``locale``
    the company's locale money is written in (``en_US``, ``ru_RU``)."""

    session: AsyncSession
    inbound: InboundMessage
    conversation: Conversation
    company: Company
    index: KnowledgeIndex
    state: DialogueState
    language: str
    asked: Step | None = None
    pending: Pending | None = None
    text: str = ""
    now: datetime = field(default_factory=utcnow)
    scope: TenantScope = field(init=False)
    locale: str = field(init=False)

    def __post_init__(self) -> None:
        self.scope = TenantScope(self.company.tenant_id)
        self.locale = company_locale(self.company)

    def t(self, key: str, **values: object) -> str:
        """Text ``key`` of the message catalogue in the reply language."""
        return texts.t(key, self.language, **values)

    def button(self, key: str) -> Button:
        """A standard button (a command reference, see ``bot.buttons``) titled in the reply language."""
        return texts.button(key, self.language)

    def money(self, amount_minor: int, currency: str) -> str:
        """An amount in minor units of ISO-4217 ``currency`` formatted in the company's locale
        (``core.i18n.company_locale``), whatever the reply language: ``15.00 EUR`` / ``1 020,00 ₽``."""
        return texts.money(amount_minor, currency, self.locale)

    def line(self, quantity: int, name: str, variant: str | None, amount_minor: int, currency: str) -> str:
        """A cart or order line in the reply language (``2 × Mug — 24.00 USD``, ``5 Роз — 600,00 ₽``)."""
        return texts.line(quantity, name, variant, self.money(amount_minor, currency), self.language)

    def reply(self, *parts: str, buttons: list[Button] | tuple[Button, ...] = (), url: str | None = None,
              image_url: str | None = None) -> list[OutboundMessage]:
        """One reply message: the non-empty ``parts`` as lines, with buttons, link and image."""
        text = "\n".join(p for p in parts if p)
        return [OutboundMessage(text=text, buttons=tuple(buttons), url=url, image_url=image_url)]
