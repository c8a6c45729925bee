"""``ScriptedShopResponder``: a test double of the dialogue engine with a tiny fixed vocabulary, so that
the dialogue-test runner (``api.dialogue_tests``) can be tested independently of the real engine.

* ``menu`` — one reply with a button per catalogue item (title: the item name, payload: ``add <name>``);
* ``add <name>`` — puts one of the item (first variant, if any) in the cart: ``Added <name>.``; an unknown
  name raises ``LookupError`` (an engine crash);
* ``buy`` — checks the cart out as "Test Customer" and sends a manual payment link: ``Pay here: <url>``;
* ``two`` — two replies (``first reply`` and ``second reply``);
* anything else — ``You said: <text>``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.messages import Button, InboundMessage, OutboundMessage
from commerce.cart import add_to_cart, open_cart
from commerce.orders import checkout
from commerce.payments import issue_payment_link
from commerce.providers import ProviderRegistry
from core.models import Company, Conversation, KnowledgeItem


class ScriptedShopResponder:
    """Implements ``bot.messages.Responder`` with the vocabulary of the module docstring."""

    def __init__(self) -> None:
        self._providers = ProviderRegistry.default(public_base_url="https://scripted.test")

    async def respond(self, session: AsyncSession, *, inbound: InboundMessage, conversation: Conversation,
                      company: Company) -> list[OutboundMessage]:
        text = inbound.text.strip()
        items = list((await session.execute(select(KnowledgeItem).options(selectinload(KnowledgeItem.variants))
                                            .where(KnowledgeItem.tenant_id == company.tenant_id,
                                                   KnowledgeItem.company_id == company.id)
                                            .order_by(KnowledgeItem.position))).scalars())
        if text == "menu":
            return [OutboundMessage(text="Our items:", buttons=tuple(
                Button(title=i.name, payload=f"add {i.name}") for i in items))]
        if text.startswith("add "):
            item = next((i for i in items if i.name == text[4:]), None)
            if item is None:
                raise LookupError(f"no item {text[4:]!r}")  # an engine crash, for the runner's tests
            cart = await open_cart(session, conversation)
            await add_to_cart(session, cart, item_id=item.id, variant_id=item.variants[0].id if item.variants else None,
                              quantity=1)
            return [OutboundMessage(text=f"Added {item.name}.")]
        if text == "buy":
            cart = await open_cart(session, conversation)
            order = await checkout(session, cart=cart, conversation=conversation, company=company,
                                   customer_name="Test Customer", delivery_address="1 Test Street")
            payment = await issue_payment_link(session, order=order, company=company, providers=self._providers)
            return [OutboundMessage(text=f"Pay here: {payment.checkout_url}", url=payment.checkout_url)]
        if text == "two":
            return [OutboundMessage(text="first reply"), OutboundMessage(text="second reply")]
        return [OutboundMessage(text=f"You said: {text}")]
