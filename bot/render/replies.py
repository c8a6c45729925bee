"""Results → replies: every text the engine sends is written here (bookings in ``bot.render.booking``).

``render(turn, results)`` turns the actions' typed results (``bot.actions.results``) into
``OutboundMessage``s in the reply language, through the project's message catalogue (``core.i18n``
via ``bot.texts``); buttons carry command references (``bot.buttons``), never phrases. Money is
formatted from minor units in the company's locale (``Turn.money``); cart lines agree Russian
nouns with their numbers (``Turn.line``).
"""

from __future__ import annotations

import uuid

from bot import texts
from bot.actions import results as r
from bot.buttons import option, reference
from bot.commands import AddToCart, FindSlots, RemoveLine, SetQuantity, ShowItem
from bot.messages import Button, OutboundMessage
from bot.render.booking import duration_answer, prepay_answer, render_booking, service_lines
from bot.turn import Turn
from commerce.cart import PricedLine
from core.models import KnowledgeItem, KnowledgeVariant, Order

LOW_STOCK = 5  # "only N left" at or below this tracked stock
MAX_ITEM_BUTTONS = 4
MAX_DESCRIPTION = 600  # characters of a description shown in an item card


def render(turn: Turn, results: list[r.Result]) -> list[OutboundMessage]:
    """The replies to ``results``, in order (several adds are said as one block with one total)."""
    replies: list[OutboundMessage] = []
    added = [res for res in results if isinstance(res, r.Added)]
    for result in results:
        if isinstance(result, r.Added) and len(added) > 1:
            if result is added[-1]:  # several items added at once: one line each, then one total
                lines = [turn.t("added", line=turn.line(a.quantity, a.item.name, a.variant.name if a.variant else None,
                                                          a.unit_price_minor * a.quantity, a.item.currency))
                         for a in added]
                replies += turn.reply(*lines, turn.t("cart_total", total=_total(turn, result.lines)),
                                      buttons=[turn.button("checkout"), turn.button("cart"), turn.button("continue")])
            continue
        if isinstance(result, r.CartShown) and result.change is not None and result is not results[-1]:
            result = r.CartShown(lines=(), change=result.change, brief=True)  # the next result says the rest
        replies += render_one(turn, result)
    return replies


def render_one(turn: Turn, result: r.Result) -> list[OutboundMessage]:  # noqa: C901 - one case per result
    """The reply to one result."""
    booking = render_booking(turn, result)
    if booking is not None:
        return booking
    t, button = turn.t, turn.button
    match result:
        case r.Chatted(kind="greet"):
            key = {"service": "greeting_service", "hybrid": "greeting_hybrid"}.get(turn.company.type, "greeting")
            return turn.reply(t(key, company=turn.company.name), buttons=_menu(turn))
        case r.Chatted(kind="help"):
            return turn.reply(t("help_service") if _services_only(turn) else t("help"), buttons=_menu(turn))
        case r.Chatted(kind="how_are_you" | "are_you_open" as kind):  # a short human answer, then the menu
            return turn.reply(t(kind), buttons=_menu(turn))
        case r.Chatted(kind="thanks" | "bye"):
            return turn.reply(t("thanks"), buttons=[_catalog_button(turn), _cart_or_booking(turn)])
        case r.Chatted():
            return turn.reply(t("anything_else"), buttons=_menu(turn))
        case r.HandedOff():
            return turn.reply(t("handoff"))
        case r.Cancelled(what="checkout"):
            return turn.reply(t("checkout_cancelled"), buttons=[button("cart"), button("catalog")])
        case r.Cancelled(what=what):
            return turn.reply(t("cancelled") if what == "question" else t("ok"),
                              buttons=[_catalog_button(turn), _cart_or_booking(turn)])
        case r.NotUnderstood(suggestions=suggestions) if suggestions:
            buttons = [_show_button(name, item_id) for item_id, name in suggestions]
            return turn.reply(t("fallback_suggest"), buttons=[*buttons, _catalog_button(turn)])
        case r.NotUnderstood():
            return turn.reply(t("fallback_service") if _services_only(turn) else t("fallback_plain"),
                              buttons=_menu(turn))
        case r.FaqAnswered(answer=answer):
            return turn.reply(answer, buttons=[_catalog_button(turn), _cart_or_booking(turn)])
        case r.CatalogShown():
            return _catalog(turn, result)
        case r.ItemShown():
            return _item(turn, result)
        case r.ItemGone():
            return turn.reply(t("item_unavailable"), buttons=[_catalog_button(turn)])
        case r.NotFound(query=""):
            return turn.reply(t("info_which_item"), buttons=[_catalog_button(turn)])
        case r.NotFound(adding=adding, alternatives=alternatives):
            others = [_show_button(name, item_id) for item_id, name in alternatives]
            tail = [button("catalog"), button("cart")] if adding else [_catalog_button(turn), button("human")]
            # nothing close: a manager may still help (never a dead end)
            return turn.reply(t("not_found"), t("closest") if others else ("" if adding else t("not_found_manager")),
                              buttons=[*others, *tail])
        case r.Found():
            return _found(turn, result)
        case r.FactUnknown(item=item):
            text = t("fact_unknown_item", name=item.name) if item is not None else t("fact_unknown")
            return turn.reply(text, buttons=[button("human"), _cart_or_booking(turn)])
        case r.DetailsNoted():
            return turn.reply(t("details_noted"), buttons=[button("checkout"), button("cart")])
        case r.ItemChoices():
            return _choices(turn, result)
        case r.NothingToAdd():
            return turn.reply(t("ask_what_to_add"), buttons=[button("catalog")])
        case r.VariantNeeded(item=item, available=()):
            return turn.reply(t("ask_variant_sold_out", name=item.name), buttons=[button("catalog")])
        case r.VariantNeeded(item=item, available=available, quantity=quantity):
            text = t("ask_variant", option=_option_name(turn, item), name=item.name,
                     options=", ".join(v.name for v in available))
            return turn.reply(text, buttons=[_add_button(turn, item, v, quantity=quantity or 1)
                                             for v in available][:8])
        case r.Added(item=item, variant=variant, quantity=quantity, unit_price_minor=unit, lines=lines):
            added = turn.line(quantity, item.name, variant.name if variant else None, unit * quantity, item.currency)
            return turn.reply(t("added", line=added), t("cart_total", total=_total(turn, lines)),
                              buttons=[button("checkout"), button("cart"), button("continue")])
        case r.AddRefused():
            return _refused(turn, result)
        case r.PriceMissing(name=name):
            return turn.reply(t("price_missing_error", name=name), buttons=[button("human")])
        case r.CartShown():
            return _cart(turn, result)
        case r.CartCleared():
            return turn.reply(t("cart_cleared"), buttons=[button("catalog")])
        case r.WhichLine(lines=lines, remove=remove, quantity=quantity):
            commands = [RemoveLine(item_id=pl.item_id, variant_id=pl.variant_id) if remove else
                        SetQuantity(item_id=pl.item_id, variant_id=pl.variant_id, quantity=quantity) for pl in lines]
            buttons = [Button(title=texts.item_label(pl.name, pl.variant), payload=reference(c))
                       for pl, c in zip(lines, commands, strict=True)]
            return turn.reply(t("cart_which_line"), buttons=buttons[:8])
        case r.NotInCart(name=name, lines=lines):
            return turn.reply(t("cart_not_in_cart", name=name), *_cart_text(turn, list(lines)),
                              buttons=[button("checkout"), button("continue")])
        case r.QuantityNeeded(name=name):
            return turn.reply(t("ask_new_quantity", name=name), buttons=[button("cart")])
        case r.CheckoutEmpty(has_order=has_order):
            return turn.reply(t("checkout_empty"),
                              buttons=[button("catalog"), *([button("status")] if has_order else [])])
        case r.CheckoutStarted(lines=lines, suggestion=suggestion, ask=ask):
            buttons = [button("skip"), button("cancel")] if ask == "phone" else _suggest(turn, suggestion)
            return turn.reply(t("checkout_intro"), *_cart_text(turn, list(lines))[1:], t(f"ask_{ask}"),
                              buttons=buttons)
        case r.StillAsking(field=field):  # name, address, phone, booking_name: asked again as at first
            return turn.reply(t(f"ask_{field}"), buttons=_answer_buttons(turn, field))
        case r.DetailRejected(field=field):
            return turn.reply(t(f"bad_{field}"), buttons=_answer_buttons(turn, field))
        case r.DetailTaken(next_field="address", suggestion=suggestion):
            return turn.reply(t("ask_address"), buttons=_suggest(turn, suggestion))
        case r.DetailTaken(next_field="phone"):
            return turn.reply(t("ask_phone"), buttons=[button("skip"), button("cancel")])
        case r.DetailTaken():
            return []  # the last answer: the order follows
        case r.CheckoutShortage(name=name, variant=variant, available=available):
            return turn.reply(t("checkout_out_of_stock", name=texts.item_label(name, variant), count=available),
                              buttons=[button("cart"), button("human")])
        case r.OrderPlaced(order=order, url=None):
            return turn.reply(*_order_summary(turn, order), "", t("payment_unavailable", number=order.number),
                              buttons=[button("status")])
        case r.OrderPlaced(order=order, url=url):
            total = turn.money(order.total_minor, order.currency)
            return turn.reply(*_order_summary(turn, order), "", t("pay_link", total=total, url=url), url=url,
                              buttons=[button("status")])
        case r.OrderStatusShown(order=order):
            return _order_status(turn, order)
        case r.LinkSent(order=order, url=url, waiting=waiting):
            total = turn.money(order.total_minor, order.currency)
            text = (t("status_waiting", number=order.number, total=total, url=url) if waiting
                    else t("new_link", number=order.number, total=total, url=url))
            return turn.reply(text, url=url, buttons=[button("status")])
        case r.LinkRefused(order=order, reason="paid") if order.payment_status == "paid":
            return turn.reply(t("already_paid", number=order.number), buttons=[button("catalog")])
        case r.LinkRefused(order=order, reason="unavailable"):
            return turn.reply(t("payment_unavailable", number=order.number), buttons=[button("human")])
        case r.LinkRefused(order=order, reason=reason):
            total = turn.money(order.total_minor, order.currency)
            text = (t("status_refunded", number=order.number, total=total) if reason == "refunded"
                    else t("already_paid", number=order.number, total=total))
            return turn.reply(text, buttons=[button("human")])
        case r.WindowsOffered(order=order, offers=offers, tz=tz, full=full):
            buttons = [Button(title=texts.window_label(o.start.astimezone(tz), o.end.astimezone(tz), turn.language),
                              payload=option(n)) for n, o in enumerate(offers, 1)]
            return turn.reply(t("delivery_full") if full else "", t("delivery_windows", number=order.number),
                              buttons=buttons)
        case r.CityNeeded(order=order, cities=cities, again=again):
            buttons = [button("cancel")] if again else [Button(title=c, payload=c) for c in cities[:6]]
            return turn.reply(t("delivery_ask_city", number=order.number, cities=", ".join(cities)), buttons=buttons)
        case r.NoWindows(city=city, full=full):
            return turn.reply(t("delivery_full") if full else "", t("delivery_none_free", city=city),
                              buttons=[button("human")])
        case r.CityUnknown(city=city):
            return turn.reply(t("delivery_no_city", city=city), buttons=[button("human")])
        case r.WindowChosen(order=order, start=start, end=end, city=city, tz=tz, earlier=earlier):
            window = texts.window_label(start.astimezone(tz), end.astimezone(tz), turn.language)
            key = "delivery_status" if earlier else "delivery_chosen"
            return turn.reply(t(key, number=order.number, window=window, city=city), buttons=[button("catalog")])
        case r.DeliveryDropped():
            return turn.reply(t("ok"), buttons=[button("status")])
        case r.DeliveryByManager(order=order):
            return turn.reply(t("delivery_manager", number=order.number), buttons=[button("human")])
    raise TypeError(f"no rendering for {result!r}")


def _catalog(turn: Turn, result: r.CatalogShown) -> list[OutboundMessage]:
    if not result.total:
        return turn.reply(turn.t("catalog_empty"), buttons=[turn.button("human")])
    shown = list(result.items)
    lines = [turn.t("catalog_header", count=result.total), *_grouped_lines(turn, shown)]
    more = result.total - len(shown)
    hint = "catalog_hint_service" if _services_only(turn) else "catalog_hint"
    lines.append(turn.t("catalog_more", more=more) if more > 0 else turn.t(hint))
    buttons = [_show_button(it.name, it.id) for it in shown if _available(it)][:MAX_ITEM_BUTTONS]
    return turn.reply(*lines, buttons=[*buttons, _cart_or_booking(turn)])


def _answer_buttons(turn: Turn, field: str) -> list[Button]:
    """Under a free-text question (a checkout field, the booking's name): "Skip" for the optional phone,
    then "Cancel"."""
    return [turn.button("skip"), turn.button("cancel")] if field == "phone" else [turn.button("cancel")]


def _item(turn: Turn, result: r.ItemShown) -> list[OutboundMessage]:
    item, variant = result.item, result.variant
    answer = {
        "price": _price_answer, "variants": _variants_answer, "stock": _stock_answer, "description": _card,
        "duration": duration_answer, "prepay": prepay_answer,
    }.get(result.aspect or "", _card)
    body = answer(turn, item, variant) or _card(turn, item, variant)
    image = (variant.image_url if variant and variant.image_url else None) or item.image_url
    return turn.reply(*body, buttons=_item_buttons(turn, item, variant), image_url=image)


def _found(turn: Turn, result: r.Found) -> list[OutboundMessage]:
    currency = result.items[0].currency if result.items else turn.company.currency
    low = turn.money(result.min_price_minor, currency) if result.min_price_minor is not None else None
    high = turn.money(result.max_price_minor, currency) if result.max_price_minor is not None else None
    if result.closest and (low or high):
        head = turn.t("found_nothing_budget")
    elif low and high:
        head = turn.t("found_budget_range", min=low, max=high)
    elif high:
        head = turn.t("found_budget", max=high)
    elif low:
        head = turn.t("found_budget_min", min=low)
    elif result.order == "price_asc":
        head = turn.t("found_cheapest")
    elif result.order == "price_desc":
        head = turn.t("found_dearest")
    else:
        head = turn.t("found_several")
    lines = [texts.bullet(it.name, _price_label(turn, it)) for it in result.items]
    buttons = [_show_button(it.name, it.id) for it in result.items][:MAX_ITEM_BUTTONS]
    return turn.reply(head, *lines, buttons=[*buttons, _cart_or_booking(turn)])


def _choices(turn: Turn, result: r.ItemChoices) -> list[OutboundMessage]:
    """Several items match: list them with prices and ask which one (buttons repeat the action)."""
    items = list(result.items)
    lines = [turn.t("found_several") if result.purpose == "show" else turn.t("ask_which_item")]
    lines += [texts.bullet(it.name, _price_label(turn, it)) for it in items]
    if result.purpose == "show":
        buttons = [_show_button(it.name, it.id) for it in items]
    else:
        buttons = [_add_button(turn, it, result.variants.get(it.id), quantity=result.quantity or 1, title=it.name)
                   for it in items]
    return turn.reply(*lines, buttons=buttons[:MAX_ITEM_BUTTONS + 1])


def _refused(turn: Turn, result: r.AddRefused) -> list[OutboundMessage]:
    t, button = turn.t, turn.button
    if result.reason == "gone":
        return turn.reply(t("item_unavailable"), buttons=[button("catalog")])
    if result.reason == "no_price":
        return turn.reply(t("price_missing_error", name=result.name), buttons=[button("human")])
    if result.reason == "bad_quantity":
        return turn.reply(t("invalid_quantity", max=result.max_quantity), buttons=[button("cart")])
    label = texts.item_label(result.name, result.variant)
    if result.available <= 0:
        text = [t("out_of_stock", name=label)]
    else:
        text = [t("out_of_stock_some", count=result.available, name=label)]
        if result.in_cart:
            text.append(t("already_in_cart", count=result.in_cart))
    return turn.reply(*text, buttons=[button("cart"), button("catalog")])


def _cart(turn: Turn, result: r.CartShown) -> list[OutboundMessage]:
    lines, change = result.lines, result.change
    if lines is None:
        return turn.reply(turn.t("price_missing_error", name="?"), buttons=[turn.button("human")])
    head = ""
    if change is not None and change.kind == "removed":
        names = ", ".join(dict.fromkeys(texts.item_label(pl.name, pl.variant) for pl in change.lines))
        head = turn.t("cart_removed", name=names)
    elif change is not None:
        pl = change.lines[0]
        head = turn.t("cart_updated", line=turn.line(change.quantity, pl.name, pl.variant,
                                                     pl.unit_price_minor * change.quantity, pl.currency))
    if result.brief:
        return turn.reply(head)
    if not lines:
        return turn.reply(head, turn.t("cart_empty"), buttons=[turn.button("catalog")])
    return turn.reply(head, *_cart_text(turn, list(lines)),
                      buttons=[turn.button("checkout"), turn.button("continue"), turn.button("clear")])


def _order_status(turn: Turn, order: Order | None) -> list[OutboundMessage]:
    t, button = turn.t, turn.button
    if order is None:
        return turn.reply(t("order_none"), buttons=[button("catalog"), button("cart")])
    total = turn.money(order.total_minor, order.currency)
    if order.payment_status == "paid":
        return turn.reply(t("status_paid", number=order.number, total=total), buttons=[button("catalog")])
    if order.status == "cancelled":
        return turn.reply(t("status_cancelled", number=order.number), buttons=[button("human")])
    if order.payment_status == "refunded":
        return turn.reply(t("status_refunded", number=order.number, total=total), buttons=[button("human")])
    if order.payment_status == "no_payment_link":
        return turn.reply(t("status_no_link", number=order.number, total=total), buttons=[button("human")])
    return turn.reply(texts.status_other(turn.language, number=order.number, total=total,
                                         status=order.payment_status),
                      buttons=[button("new_link"), button("human")])


# --- building blocks -------------------------------------------------------------------------------


def _services_only(turn: Turn) -> bool:
    """A company of services (bookings, no cart)."""
    return turn.company.type == "service"


def _catalog_button(turn: Turn) -> Button:
    return turn.button("services" if _services_only(turn) else "catalog")


def _cart_or_booking(turn: Turn) -> Button:
    return turn.button("my_booking" if _services_only(turn) else "cart")


def _menu(turn: Turn) -> list[Button]:
    if _services_only(turn):
        return [turn.button("services"), turn.button("book"), turn.button("my_booking"), turn.button("human")]
    return [turn.button("catalog"), turn.button("cart"), turn.button("human")]


def _suggest(turn: Turn, value: str | None) -> list[Button]:
    """A checkout question's buttons: the previous answer (when known) and "Cancel"."""
    buttons = [Button(title=value, payload=value)] if value else []
    return [*buttons, turn.button("cancel")]


def _named_variant(turn: Turn, item: KnowledgeItem, text: str) -> KnowledgeVariant | None:
    """The variant of ``item`` that ``text`` names ("the large"), if any."""
    return _variant(item, turn.index.match_variant(item.id, text)) if text and item.variants else None


def _show_button(title: str, item_id: uuid.UUID) -> Button:
    """A button showing an item's card."""
    return Button(title=title, payload=reference(ShowItem(item_id=item_id)))


def _add_button(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None, *, quantity: int = 1,
                title: str | None = None) -> Button:
    """A button adding ``quantity`` of an item (and variant) to the cart, titled with the variant's
    name (or "Add to cart")."""
    command = AddToCart(item_id=item.id, variant_id=variant.id if variant else None, quantity=quantity)
    return Button(title=title or (variant.name if variant else texts.add_title(turn.language)),
                  payload=reference(command))


def _variant(item: KnowledgeItem, variant_id: uuid.UUID | None) -> KnowledgeVariant | None:
    return next((v for v in item.variants if v.id == variant_id), None) if variant_id else None


def _unit_price(item: KnowledgeItem, variant: KnowledgeVariant | None) -> int | None:
    if variant is not None and variant.price_minor is not None:
        return variant.price_minor
    return item.price_minor


def _stock(item: KnowledgeItem, variant: KnowledgeVariant | None) -> int | None:
    return variant.stock if variant is not None else item.stock


def _available(item: KnowledgeItem) -> bool:
    if item.variants:
        return any(v.stock is None or v.stock > 0 for v in item.variants)
    return item.stock is None or item.stock > 0


def _stock_label(turn: Turn, stock: int | None) -> str:
    if stock is None:
        return turn.t("in_stock")
    if stock <= 0:
        return turn.t("sold_out")
    if stock <= LOW_STOCK:
        return turn.t("few_left", count=stock)
    return turn.t("in_stock")


def _price_label(turn: Turn, item: KnowledgeItem) -> str:
    """``50.00 USD``, ``from 120,00 ₽`` when variants differ, or "price on request"."""
    prices = {_unit_price(item, v) for v in item.variants} if item.variants else {item.price_minor}
    known = sorted(p for p in prices if p is not None)
    if not known:
        label = turn.t("price_missing")
    elif known == [0] and item.kind == "service":
        label = turn.t("free")
    elif len(known) == 1:
        label = turn.money(known[0], item.currency)
    else:
        label = turn.t("price_from", price=turn.money(known[0], item.currency))
    if not _available(item):
        label = f"{label} ({turn.t('sold_out')})"
    return label


def _variant_prices_differ(item: KnowledgeItem) -> bool:
    return len({_unit_price(item, v) for v in item.variants}) > 1


def _option_name(turn: Turn, item: KnowledgeItem) -> str:
    keys = {k for v in item.variants for k in (v.options or {})}
    if len(keys) == 1:
        key = next(iter(keys)).strip()
        if key and key.casefold() not in ("title", "option", "variant"):
            return key.lower()
    return turn.t("option_generic")


def _grouped_lines(turn: Turn, items: list[KnowledgeItem]) -> list[str]:
    """Catalogue lines, under category headings when the items have categories."""
    groups: dict[str, list[KnowledgeItem]] = {}
    for it in items:
        groups.setdefault(it.category or "", []).append(it)
    lines: list[str] = []
    for category, members in groups.items():
        if category and len(groups) > 1:
            lines.append(f"{category}:")
        lines += [texts.bullet(it.name, _price_label(turn, it) + _duration_suffix(turn, it)) for it in members]
    return lines


def _duration_suffix(turn: Turn, item: KnowledgeItem) -> str:
    """``, 60 min`` after a service's price in lists."""
    if item.kind != "service" or not item.duration_minutes:
        return ""
    return ", " + turn.t("minutes", minutes=item.duration_minutes)


def _variant_lines(turn: Turn, item: KnowledgeItem, *, prices: bool, stock: bool) -> list[str]:
    out = []
    for v in item.variants:
        parts = []
        if prices:
            unit = _unit_price(item, v)
            parts.append(turn.money(unit, item.currency) if unit is not None else turn.t("price_missing"))
        if stock:
            parts.append(_stock_label(turn, v.stock))
        out.append(texts.bullet(v.name, ", ".join(parts) if parts else None))
    return out


def _price_answer(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None) -> list[str]:
    if variant is None and item.variants and _variant_prices_differ(item):
        return [turn.t("info_price_variants", name=item.name), *_variant_lines(turn, item, prices=True, stock=False)]
    unit = _unit_price(item, variant)
    if unit is None:
        return [turn.t("info_price", name=item.name, price=turn.t("price_missing"))]
    label = texts.item_label(item.name, variant.name if variant else None)
    if unit == 0 and item.kind == "service":  # "how much is a consultation?": free, not "costs 0.00 EUR"
        return [turn.t("info_free", name=label)]
    out = [turn.t("info_price", name=label, price=turn.money(unit, item.currency))]
    if variant is None and item.variants:
        out.append(turn.t("info_variants", name=item.name, variants=", ".join(v.name for v in item.variants)))
    stock = _stock(item, variant)
    if variant is not None or not item.variants:
        if stock is not None and stock <= 0:
            out.append(turn.t("info_stock_no", name=label))
        elif stock is not None and stock <= LOW_STOCK:
            out.append(turn.t("info_stock_low", name=label, count=stock))
    return out


def _variants_answer(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None) -> list[str]:
    if not item.variants:
        return [turn.t("info_single", name=item.name, price=_price_label(turn, item))]
    tracked = any(v.stock is not None for v in item.variants)
    differ = _variant_prices_differ(item)
    if not tracked and not differ:
        unit = _unit_price(item, item.variants[0])
        out = [turn.t("info_variants", name=item.name, variants=", ".join(v.name for v in item.variants))]
        if unit is not None:
            out.append(turn.t("info_price", name=item.name, price=turn.money(unit, item.currency)))
        return out
    return [turn.t("info_variants", name=item.name, variants=", ".join(v.name for v in item.variants)),
            *_variant_lines(turn, item, prices=True, stock=tracked)]


def _stock_answer(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None) -> list[str]:
    if variant is None and item.variants:
        if all(v.stock is None for v in item.variants):
            return [turn.t("info_stock_yes", name=item.name),
                    turn.t("info_variants", name=item.name, variants=", ".join(v.name for v in item.variants))]
        return [turn.t("info_stock_variants", name=item.name), *_variant_lines(turn, item, prices=False, stock=True)]
    label = texts.item_label(item.name, variant.name if variant else None)
    stock = _stock(item, variant)
    unit = _unit_price(item, variant)
    price = turn.t("info_price", name=label, price=turn.money(unit, item.currency)) if unit is not None else ""
    if stock is None:
        return [turn.t("info_stock_yes", name=label), price]
    if stock <= 0:
        return [turn.t("info_stock_no", name=label)]
    if stock <= LOW_STOCK:
        return [turn.t("info_stock_low", name=label, count=stock), price]
    return [turn.t("info_stock_yes", name=label), price]


def _card(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None) -> list[str]:
    """Everything about an item: name and price, description, variants, availability, duration."""
    label = texts.item_label(item.name, variant.name if variant else None)
    if variant is not None:
        unit = _unit_price(item, variant)
        price = turn.money(unit, item.currency) if unit is not None else turn.t("price_missing")
        out = [f"{label} — {price} ({_stock_label(turn, variant.stock)})"]
    else:
        out = [f"{label} — {_price_label(turn, item)}"]
    description = " ".join((item.description or "").split())
    if description:
        if len(description) > MAX_DESCRIPTION:
            description = description[:MAX_DESCRIPTION].rsplit(" ", 1)[0] + "…"
        out.append(description)
    if item.kind == "service":
        out += service_lines(turn, item)
    elif item.duration_minutes:
        out.append(turn.t("info_duration", minutes=item.duration_minutes))
    if variant is None and item.variants:
        tracked = any(v.stock is not None for v in item.variants)
        if tracked or _variant_prices_differ(item):
            out.append(turn.t("info_variants_header", name=item.name))
            out += _variant_lines(turn, item, prices=_variant_prices_differ(item), stock=tracked)
        else:
            out.append(turn.t("info_variants", name=item.name, variants=", ".join(v.name for v in item.variants)))
    elif variant is None and item.stock is not None:
        out.append(_stock_sentence(turn, item.name, item.stock))
    return out


def _stock_sentence(turn: Turn, label: str, stock: int) -> str:
    if stock <= 0:
        return turn.t("info_stock_no", name=label)
    if stock <= LOW_STOCK:
        return turn.t("info_stock_low", name=label, count=stock)
    return turn.t("info_stock_yes", name=label)


def _item_buttons(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None) -> list[Button]:
    """Buttons under an item answer: add the variant asked about ("Add to cart"), or one per available
    variant (titled with its name), then the cart; for a service: book it."""
    if item.kind == "service":
        book = Button(title=turn.t("button:book_item"), payload=reference(FindSlots(service_id=item.id)))
        return [book, _catalog_button(turn), _cart_or_booking(turn)]
    buttons: list[Button] = []
    if variant is not None:  # the variant asked about: "Add to cart" (its name alone reads as another question)
        if _unit_price(item, variant) is not None and (variant.stock is None or variant.stock > 0):
            buttons.append(_add_button(turn, item, variant, title=texts.add_title(turn.language)))
    elif item.variants:
        for v in item.variants:
            if (v.stock is None or v.stock > 0) and _unit_price(item, v) is not None:
                buttons.append(_add_button(turn, item, v))
        buttons = buttons[:MAX_ITEM_BUTTONS]
    elif item.price_minor is not None and (item.stock is None or item.stock > 0):
        buttons.append(_add_button(turn, item, None))
    return [*buttons, turn.button("cart")]


def _total(turn: Turn, lines: list[PricedLine]) -> str:
    currency = lines[0].currency if lines else turn.company.currency
    return turn.money(sum(pl.total_minor for pl in lines), currency)


def _cart_text(turn: Turn, lines: list[PricedLine]) -> list[str]:
    return [turn.t("cart_header"),
            *[turn.line(pl.quantity, pl.name, pl.variant, pl.total_minor, pl.currency) for pl in lines],
            turn.t("total", total=_total(turn, lines))]


def _order_summary(turn: Turn, order: Order) -> list[str]:
    out = [turn.t("order_summary", number=order.number)]
    out += [turn.line(ln.quantity, ln.name, ln.variant, ln.line_total_minor, order.currency)
            for ln in order.lines]
    out.append(turn.t("total", total=turn.money(order.total_minor, order.currency)))
    if order.customer_name:
        out.append(turn.t("summary_name", value=order.customer_name))
    if order.delivery_address:
        out.append(turn.t("summary_address", value=order.delivery_address))
    if order.phone:
        out.append(turn.t("summary_phone", value=order.phone))
    return out
