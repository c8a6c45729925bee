"""The rule-based ``Understander``: ``bot.understand.rules`` readings → commands.

A message may carry several requests ("a teapot and two mugs", "put two scarves in, and do you ship
abroad?"): it is split at conjunctions ("and", "also", "plus", "и", "а ещё", commas) when every part
reads as a request of its own and at least one names an item; otherwise it is read whole (so an item
called "Salt and Pepper Mill" stays one item). "and / also / и ещё X" while shopping means adding X.
"""

from __future__ import annotations

import re
import uuid
import weakref
from dataclasses import replace
from functools import lru_cache

from bot.buttons import decode
from bot.commands import (
    AddToCart,
    AnswerFaq,
    Cancel,
    CancelBooking,
    Choose,
    ClearCart,
    FindSlots,
    GiveDetails,
    Handoff,
    Help,
    MoveBooking,
    NewPaymentLink,
    NotSold,
    NotUnderstood,
    OrderStatus,
    RemoveLine,
    SearchCatalog,
    SetQuantity,
    ShowBooking,
    ShowCart,
    ShowCatalog,
    ShowItem,
    Skip,
    SmallTalk,
    StartCheckout,
    UnknownFact,
)
from bot.commands import SmallTalkKind as SmallTalkKindName
from bot.language.budget import parse_budget
from bot.language.choice import parse_choice
from bot.language.daytime import parse_daytime
from bot.language.details import extract_details, read_name, region_of_timezone
from bot.language.quantities import parse_quantity
from bot.language.roots import is_russian_verb, shares_root
from bot.language.smalltalk import analyze as analyze_small_talk
from bot.state import CHECKOUT_STEPS, DialogueState, Step
from bot.understand.base import DeliveryStatus, UnderstandingContext, Understood, Unresolved
from bot.understand.rules import (
    ASKING,
    INSTEAD,
    STOCK,
    SWAP,
    VARIANTS,
    Aspect,
    Intent,
    Understanding,
    _names_item,
    is_bare,
    not_a_name,
    quantity_in,
    read,
    search_items,
)
from commerce.when import parse_when
from knowledge.search import ItemView, KnowledgeIndex, variant_values
from knowledge.text import detect_language, normalize

_SPLIT = re.compile(r"\s*(?:,\s*(?:and|also|plus|и|а)?|;|&|\+|\band also\b|\band\b|\bplus\b|\bи\b|\bа ещ[её]\b)\s*",
                    re.IGNORECASE)
_ALSO = re.compile(r"^\s*(and|also|plus|и|а|и ещ[её]|ещ[её]|а ещ[её])\b\s*", re.IGNORECASE)
_ASPECTS = {Aspect.PRICE: "price", Aspect.STOCK: "stock", Aspect.DESCRIPTION: "description",
            Aspect.VARIANTS: "variants", Aspect.DURATION: "duration", Aspect.PREPAY: "prepay"}
_ITEM_COMMANDS = (AddToCart, SetQuantity, RemoveLine, ShowItem, Unresolved)
MAX_PARTS = 6
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_DETAIL_STEPS = CHECKOUT_STEPS | {Step.BOOKING_NAME}
_NAME_STEPS = frozenset({Step.CHECKOUT_NAME, Step.BOOKING_NAME})
# At a checkout question: "cancel, I changed my mind"; "I'd rather not give my phone".
_STEP_CANCEL = re.compile(r"^\W*(?:cancel|never ?mind|forget it|stop|отмен\w*|не надо|передумал\w*)\b", re.IGNORECASE)
_STEP_SKIP = re.compile(r"\b(?:rather not|(?:do not|don'?t|dont) want to (?:give|share|leave)|no phone|skip"
                        r"|without (?:a )?phone"
                        r"|пропуст\w*|без телефона|не (?:хочу|буду) (?:давать|оставлять|указывать|писать))\b",
                        re.IGNORECASE)


class RuleUnderstander:
    """Keyword rules over the company's knowledge index (English and Russian); see ``Understander``."""

    def understand(self, text: str, *, state: DialogueState, context: UnderstandingContext) -> list[Understood]:
        """The commands of ``text`` in the order said; ``[NotUnderstood(text)]`` when the rules find none."""
        if state.step in _DETAIL_STEPS:
            answer = _details(text, state=state, context=context)
            if answer:
                return answer
        elif state.step is None and (state.booking_id or state.order_id):
            phone = _phone_only(text, context)
            if phone:  # "+49 151 23456789" after the booking or order was made: for them
                return [GiveDetails(phone=phone)]
        said = text
        text = _compounded(_RETURN_PHRASE.sub("return", _lemmatized(text, context)), context)
        if text != said:  # a Russian case or diminutive form ("вазочку", "букетик") was read as its name
            context = replace(context, extra={**context.extra, "inflected": True})
        if _cart_lines(context) and state.last_item_id is not None:
            context = replace(context, extra={**context.extra, "last_item_id": state.last_item_id})
        if state.step == Step.OFFER_HANDOFF and _YES_ASK.search(text):  # "yes please, ask someone"
            return [Handoff(reason="unknown fact")]
        topical = _topical_faq(text, context)
        if topical:
            return topical
        how_to = _how_to(text, context) or _how_to_faq(text, context)
        if how_to:
            return how_to
        talk = analyze_small_talk(text, context.language)
        if talk.kinds:
            rest = _ADDRESS_WORDS.sub(" ", talk.rest).strip(" ,.!")
            if _only_small_talk(text, talk.kinds, rest) and not _asks_for_more(rest, self, state, context):
                if talk.kinds == ("are_you_open",):  # "are you open on Mondays?": the hours, when the FAQ has them
                    commands = self._understand(text, state=state, context=context)
                    if any(isinstance(c, AnswerFaq) for c in commands):
                        return commands
                return [SmallTalk(kind=_main_kind(talk.kinds))]
            if rest:  # refined as a message of its own: "hi, do you do beard trims?" is not sold, not just "hi"
                commands = _refine(self._understand(rest, state=state, context=context), text=rest, state=state,
                                   context=context)
                if any(isinstance(c, NotUnderstood) for c in commands):
                    commands = self._understand(text, state=state, context=context)
                if "ack" in talk.kinds and _bare_item(commands, context):  # "ok, black then": taken
                    shown = commands[0]
                    commands = [AddToCart(item_id=shown.item_id, variant_id=shown.variant_id)]  # type: ignore[union-attr]
                if (talk.kinds[0] in ("greet", "how_are_you") and commands
                        and not isinstance(commands[0], (SmallTalk, NotUnderstood))):
                    return [SmallTalk(kind=talk.kinds[0]), *commands]
                return commands
        sentences = [p for p in _SENTENCES.split(text) if p.strip(" ,.!?-")]
        if 1 < len(sentences) <= MAX_PARTS:  # "2 white mugs - are they dishwasher safe?": both are done
            said = [_refine(self._understand(p, state=state, context=context), text=p, state=state, context=context)
                    for p in sentences]
            understood = [part for part in said if part and not any(isinstance(c, NotUnderstood) for c in part)]
            lost = [p for p, part in zip(sentences, said, strict=True) if part not in understood]
            if understood and all((len(p.split()) <= 6 and not any(ch.isdigit() for ch in p)) or _who_for(p)
                                  for p in lost):
                return _with_cart(_merged_parts(understood), context)  # "oh sorry, English is fine. How much…"
        return _with_cart(_about_last_item(_focused(_refine(self._understand(text, state=state, context=context),
                                                            text=text, state=state, context=context)),
                                           text=text, state=state, context=context), context)

    def _understand(self, text: str, *, state: DialogueState, context: UnderstandingContext) -> list[Understood]:
        if state.step is None or state.step not in _DETAIL_STEPS:
            budget = _budget(text, context)
            if budget:
                return budget
            gift = _gift(text, context)
            if gift:
                return gift
        shifted = _earlier_or_later(text, state=state) or _with_someone(text, state=state)
        if shifted:
            return shifted
        chosen = _choice(text, state=state, context=context)
        if chosen:
            return chosen
        by_price = _by_price(text, state=state) or _cheaper(text, state=state, context=context)
        if by_price:
            return by_price
        swap = _swap(text, state=state, context=context)
        if swap:
            return swap
        whole = self._one(text, state=state, context=context)
        parts = [p for p in _SPLIT.split(text) if p and p.strip(" ,.!?")]
        if 1 < len(parts) <= MAX_PARTS and not _names_one_item(whole, context):
            readings = [read(part, index=context.index, state=state) for part in parts]
            said = [_commands(reading, text=part, state=state, context=context)
                    for reading, part in zip(readings, parts, strict=True)]
            split = _parts(said, [reading.quantity for reading in readings], context)
            if (not any(isinstance(c, NotUnderstood) for c in split)
                    and sum(isinstance(c, _ITEM_COMMANDS) for c in split) >= 1
                    and (len(split) > 1 or _leading_no(said))):
                return split
        return whole

    def _one(self, text: str, *, state: DialogueState, context: UnderstandingContext) -> list[Understood]:
        reading = read(text, index=context.index, state=state)
        commands = _commands(reading, text=text, state=state, context=context)
        # "and a teapot": adding, not asking
        if _ALSO.match(text) and not text.rstrip().endswith("?") and _bare_item(commands, context):
            shown = commands[0]
            return [AddToCart(item_id=shown.item_id, variant_id=shown.variant_id, quantity=reading.quantity or 1)]
        return commands


# "send something back", "ship it back": the phrasal verb of returning (the FAQ and the rules know "return").
_RETURN_PHRASE = re.compile(r"\b(?:send|ship|mail|post)\s+(?:(?:it|them|this|that|something|stuff|things?|the \w+"
                            r"|an? \w+|my \w+)\s+)?back\b", re.IGNORECASE)
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=\w)|\s+[-–—]\s+")


def _merged_parts(parts: list[list[Understood]]) -> list[Understood]:
    """The commands of sentences said one after the other; an item asked about by pronoun in a later
    sentence ("are they dishwasher safe?") is the one of the earlier sentence, answered by the FAQ."""
    return [c for part in parts for c in part]


def state_last(context: UnderstandingContext) -> object:
    return context.extra.get("last_item_id")


_REQUESTS = (CancelBooking, MoveBooking, ShowBooking, OrderStatus, Handoff, Cancel, NewPaymentLink)


_REFERS_BACK = re.compile(r"\b(?:it|them|this one|that one|the same|его|её|ее|их|эту|этот|такую)\b", re.IGNORECASE)


# "is it cotton?", "does it have pockets?", "are they waterproof?": a yes/no question about the item talked about.
_IS_IT = re.compile(r"^\W*(?:is|are|does|do|has|have|can|will)\s+(?:it|they|this|that|this one|that one)\b",
                    re.IGNORECASE)
_IT_WORDS = frozenset("made from real pure come".split())  # besides the rules' stop words


def _fact(item_id: uuid.UUID, text: str, context: UnderstandingContext) -> ShowItem | UnknownFact:
    """A question about an item's property ("is it cotton?", "does it have pockets?"): its card when its
    own text says so (``_said_of``), else a fact the knowledge base lacks (offered to a manager)."""
    if _said_of(context, item_id, text):
        return ShowItem(item_id=item_id, aspect="description")
    return UnknownFact(item_id=item_id, question=text[:1000])


def _said_of(context: UnderstandingContext, item_id: uuid.UUID, text: str) -> bool:
    """Whether every content word of a yes/no question ("is it cotton?") is in the item's name, category
    or description (compared on their first five letters: "waterproof" / "water-proof" aside)."""
    try:
        view = context.index.item(item_id)
    except KeyError:
        return False
    from bot.understand.rules import _STOP_WORDS

    own = {w[:5] for w in normalize(f"{view.name} {view.category or ''} {view.description or ''}").split()}
    asked = [w for w in normalize(text).split() if w not in _STOP_WORDS and w not in _IT_WORDS and len(w) > 2]
    return bool(asked) and all(w[:5] in own for w in asked)


def _names_option_of(context: UnderstandingContext, item_id: uuid.UUID, text: str) -> bool:
    """Whether every word of one of the item's option values ("Light Blue", "XL") is in ``text``."""
    words = set(normalize(text).split())
    try:
        variants = context.index.item(item_id).variants
    except KeyError:
        return False
    return any(set(normalize(value).split()) <= words for variant in variants for value in variant_values(variant))


def _about_last_item(commands: list[Understood], *, text: str, state: DialogueState,
                     context: UnderstandingContext) -> list[Understood]:
    """"Add it in medium", "size medium please" right after the zipped jacket was shown: its variant words
    match many items, but no item is named, and the item talked about last is among them: that item (its
    variant when the words name one). Also merges "add it, size medium" (the item, then its variant) into
    one command."""
    last = state.last_item_id
    if last is None or not _is_product(context, last):
        return commands
    refers_back = bool(_REFERS_BACK.search(text)) and _names_option_of(context, last, text)
    # "does it come in black?" after the zipped jacket: "black" names the Black Leather Bag, but "it" is the
    # jacket, and the question is about its options (which black is not one of)
    asks_its_options = (not refers_back and bool(_REFERS_BACK.search(text))
                        and any(rx.search(normalize(text)) for rx in (VARIANTS, STOCK)))
    asks_about_it = bool(_IS_IT.match(text)) and not asks_its_options and not refers_back
    out: list[Understood] = []
    for command in commands:
        if (asks_about_it and isinstance(command, ShowItem) and command.item_id != last
                and command.variant_id is None  # "is it the white cotton shirt?" names that one in full
                and _literal_name(text, ((command.item_id, normalize(context.index.item(command.item_id).name)),))
                is None):
            # "is it cotton?" after the flannel shirt: "cotton" names the White Cotton Shirt, but the question
            # is about "it": its card when its text says so, else a fact the knowledge base lacks
            command = _fact(last, text, context)
        if asks_its_options and (
                (isinstance(command, ShowItem) and command.item_id != last)
                or (isinstance(command, Unresolved) and command.then == "show" and last not in command.candidates)):
            command = ShowItem(item_id=last, aspect="variants")
        if isinstance(command, (AddToCart, ShowItem)) and command.item_id != last and refers_back:
            # "add it in light blue" after the zipped jacket: "blue" also names the Ocean Blue Shirt, but "it"
            # is the jacket, which comes in Light Blue
            variant = context.index.match_variant(last, text)
            command = (AddToCart(item_id=last, variant_id=variant, quantity=command.quantity)
                       if isinstance(command, AddToCart) else ShowItem(item_id=last, variant_id=variant))
        if (isinstance(command, Unresolved) and command.then in ("add", "show") and last in command.candidates
                and not command.exact and command.query
                and not any(_names_item(hit) for hit in search_items(context.index, command.query))):
            variant = context.index.match_variant(last, command.query)
            command = (AddToCart(item_id=last, variant_id=variant, quantity=command.quantity or 1)
                       if command.then == "add" else ShowItem(item_id=last, variant_id=variant, aspect=command.aspect))
        out.append(command)
    adds = [c for c in out if isinstance(c, AddToCart) and c.item_id == last]
    if not adds:
        return out
    # "add it, size large", "2 of them, in light blue": one add of the item, with the variant said anywhere
    # in the message, and no card of it after the add ("add it in medium and one in large" stays two adds)
    about = [c for c in out if isinstance(c, (AddToCart, ShowItem)) and c.item_id == last]
    variants = list(dict.fromkeys(c.variant_id for c in about if c.variant_id is not None))
    if len(variants) > 1:
        return [c for c in out if c not in about or (isinstance(c, AddToCart) and c.variant_id is not None)]
    merged = AddToCart(item_id=last, variant_id=variants[0] if variants else None,
                       quantity=max(a.quantity for a in adds))
    at = out.index(about[0])
    return [*[c for c in out[:at] if c not in about], merged, *[c for c in out[at:] if c not in about]]


def _focused(commands: list[Understood]) -> list[Understood]:
    """"Something came up, please cancel my booking": the request, without an item card that a loose
    word of the preamble happened to match."""
    if len(commands) > 1 and any(isinstance(c, _REQUESTS) for c in commands):
        kept = [c for c in commands if not (isinstance(c, ShowItem) and c.aspect is None)]
        return kept or commands
    return commands


def _cart_lines(context: UnderstandingContext) -> list[tuple[uuid.UUID, uuid.UUID | None, int]]:
    lines = context.extra.get("cart")
    return [tuple(line) for line in lines] if isinstance(lines, list) else []  # type: ignore[misc]


_NOT_BUT = re.compile(r"^\W*(?:давайте |лучше |нет,? )?не (?P<old>\w+),? а (?P<new>\w+)\b"
                      r"|^(?P<before>.*?),? not (?P<was>\w+)\W*$", re.IGNORECASE)


def _not_but(text: str, commands: list[Understood], state: DialogueState,
             context: UnderstandingContext) -> list[Understood]:
    """"Давайте не три, а пять", "only one spatula, not two": a correction of the quantity of the item
    named (or talked about last), not an addition."""
    from bot.language.quantities import parse_quantity

    match = _NOT_BUT.match(text)
    if match is None:
        return []
    if match["new"] is not None:
        old, new = parse_quantity(match["old"]), parse_quantity(match["new"])
    else:
        old, new = parse_quantity(match["was"]), parse_quantity(match["before"])
    if old is None or new is None:
        return []
    named = [c for c in commands if isinstance(c, (AddToCart, ShowItem, SetQuantity))]
    item_id = named[0].item_id if len(named) == 1 else state.last_item_id
    variant_id = named[0].variant_id if len(named) == 1 else state.last_variant_id
    if item_id is None or not _is_product(context, item_id):
        return []
    return [SetQuantity(item_id=item_id, variant_id=variant_id, quantity=new)]


def _with_cart(commands: list[Understood], context: UnderstandingContext) -> list[Understood]:
    """Cart changes pinned to the cart's line when the cart is known (``context.extra["cart"]``:
    ``(item_id, variant_id, quantity)`` tuples): "drop the mug" with one mug line removes that line."""
    lines = _cart_lines(context)
    if not lines:
        return commands
    out: list[Understood] = []
    for command in commands:
        if isinstance(command, Unresolved) and command.then == "set" and not command.candidates and command.quantity:
            last = [line for line in lines if line[0] == state_last(context)]
            if len(last) == 1:  # "actually change that to 6": the line of the item talked about last
                command = SetQuantity(item_id=last[0][0], variant_id=last[0][1], quantity=command.quantity)
        if isinstance(command, (RemoveLine, SetQuantity)) and command.variant_id is None:
            matching = [line for line in lines if line[0] == command.item_id]
            if len(matching) == 1 and matching[0][1] is not None:
                command = command.model_copy(update={"variant_id": matching[0][1]})
        out.append(command)
    return out


_YES_ASK = re.compile(r"^\W*(?:yes|yeah|yep|sure|ok|okay|please|да|давайте|ага|конечно|хорошо|спросите)\b",
                      re.IGNORECASE)
_WHAT_ABOUT = re.compile(r"\b(?:what about|how about|and in|а как насч[её]т|а если)\b", re.IGNORECASE)
_HOW_TO = re.compile(r"^\W*(?:what if|what happens if|what(?:'s| is) (?:the|your) policy"
                     r"|как (?:мне |можно )?(?:отменить|перенести|вернуть|обменять)|что если|а если)\b",
                     re.IGNORECASE)


# Questions whose topic a question word carries (search drops "where", "when"): the topic's FAQ entry.
_TOPICS = (
    (re.compile(r"^\W*(?:where(?:'s| is| are)?\b(?!.*\b(?:my|order|parcel|package|booking|delivery)\b)"
                r"|how (?:do i|to) (?:find|get to)\b)|\b(?:your address|located)\b"
                r"|^\W*(?:а )?где (?:вы|у вас|находит\w*|студи\w*|салон\w*|магазин\w*)|\bваш адрес\b",
                re.IGNORECASE),
     re.compile(r"^\W*(?:where|где)\b|\baddress\b|\blocat\w*|\bадрес\w*|\bнаход\w*", re.IGNORECASE)),
    (re.compile(r"\bwhat time do you (?:open|close)\b|\bwhen do you (?:open|close)\b|\bopening hours\b"
                r"|\bво сколько (?:вы )?(?:открыва|закрыва)\w*|\bдо скольки (?:вы )?работа\w*|\bчасы работы\b"
                r"|\bграфик работы\b|\bрежим работы\b", re.IGNORECASE),
     re.compile(r"\bhours\b|\bopen\b|\bчасы работы\b|\bграфик\b|\bрежим работы\b", re.IGNORECASE)),
)


def _topical_faq(text: str, context: UnderstandingContext) -> list[Understood]:
    """"Where's the studio?", "во сколько открываетесь?": the one FAQ entry on that topic (where /
    opening hours), which a word search misses because the question word carries the meaning."""
    for asked, entry in _TOPICS:
        if asked.search(text):
            hits = [f for f in context.index.faq() if entry.search(f.question)]
            if len(hits) == 1:
                return [AnswerFaq(faq_id=hits[0].id)]
    return []


_SHIPPING = re.compile(r"\b(?:ship\w*|send|sending|deliver\w*|post(?:age)?|courier|доставк\w*|доставит\w*|доставляете"
                       r"|отправ\w*|пересыл\w*|привез\w*|привоз\w*)\b|\b(?:gets?|be) (?:to|here)\b|\barrive\w*\b",
                       re.IGNORECASE)
_COST_Q = re.compile(r"\bhow much\b|\bcost\w*|\bprice\w*|\bcharge\w*|\bfee\b|\bсколько стоит\b|\bстоимост\w*"
                     r"|\bцен\w*|\bплатн\w*|\bбесплатн\w*|\bfree\b", re.IGNORECASE)
_TIME_Q = re.compile(r"\bhow long\b|\bhow many days\b|\bwhen\b|\btill\b|\buntil\b|\bhow fast\b"
                     r"|\bсколько (?:дней|времени)\b|\bкак быстро\b|\bкогда\b|\bсрок\w*", re.IGNORECASE)


def _shipping_faq(text: str, context: UnderstandingContext) -> list[Understood]:
    """"How much do you charge to send the pomade to Hamburg?" is the shipping-cost entry, "how long
    till the beard oil gets to Munich?" the shipping-time one: a shipping question names its topic
    (cost or time), and the FAQ entry about shipping on that topic answers it."""
    if not _SHIPPING.search(text):
        return []
    topic = _COST_Q if _COST_Q.search(text) else _TIME_Q if _TIME_Q.search(text) else None
    if topic is None:
        return []
    shipping = [f for f in context.index.faq() if _SHIPPING.search(f.question)]
    on_topic = [f for f in shipping if topic.search(f.question)]
    return [AnswerFaq(faq_id=on_topic[0].id)] if len(on_topic) == 1 else []


def _how_to(text: str, context: UnderstandingContext) -> list[Understood]:
    """"What if I can't make it and need to cancel?", "как перенести запись?": a question about the rules
    (the FAQ), not the request itself."""
    if not _HOW_TO.search(text):
        return []
    from bot.understand.rules import _faq_for

    hit = _faq_for(context.index, text, [])
    return [AnswerFaq(faq_id=hit.faq_id)] if hit is not None else []


# "как сделать, чтобы…", "how do I keep…", "how to clean…": a question asking how to do something (a verb).
_HOW_TO_Q = re.compile(r"^\W*(?:а\s+|and\s+|so\s+)?(?:как|how)\s+(?P<helper>(?:(?:do|can|should|could|would)\s+"
                       r"(?:i|we|you|one)\s+|to\s+|мне\s+|можно\s+|нам\s+|бы\s+|лучше\s+)*)(?P<verb>\w+)(?P<rest>.*)$",
                       re.IGNORECASE | re.DOTALL)


# Verbs of what the rules do themselves (order, buy, book, pay, add): "how do I order…" is that request.
_REQUEST_VERB = re.compile(r"^(?:order|buy|purchase|book|reserve|pay|add|get|checkout|заказ\w*|закаж\w*|куп\w*"
                           r"|запис\w*|заброн\w*|оплат\w*|добав\w*|оформ\w*|полож\w*|взять|получить)$")


def _how_to_faq(text: str, context: UnderstandingContext) -> list[Understood]:
    """"Как сделать, чтобы букет дольше стоял?": a how-to question is answered by the one how-to FAQ
    entry ("Как ухаживать за букетом?") about a thing the question names; ``[]`` when none or several."""
    asked = _how_to_parts(text)
    if asked is None or not asked:
        return []
    found = []
    for entry in context.index.faq():
        about = _how_to_parts(entry.question)
        if about and asked & about:
            found.append(entry.id)
    return [AnswerFaq(faq_id=found[0])] if len(found) == 1 else []


def _how_to_parts(text: str) -> frozenset[str] | None:
    """The matching keys of the words a how-to question is about (after its verb), ``None`` when
    ``text`` is no how-to question: "how" + "do I"/"to" + a verb, or "как" + a Russian infinitive."""
    from bot.language.morph import match_keys, russian_parses
    from bot.understand.rules import _STOP_WORDS

    match = _HOW_TO_Q.match(text)
    if match is None:
        return None
    verb = match["verb"].lower()
    if _REQUEST_VERB.search(normalize(verb)):  # "как заказать букет?" asks for the order itself
        return None
    if _CYRILLIC.match(verb):
        if not any("INFN" in p.tag for p in russian_parses(verb)[:2]):
            return None
    elif not match["helper"].strip():
        return None
    keys: set[str] = set()
    for word in normalize(match["rest"]).split():
        if len(word) > 2 and word not in _STOP_WORDS and word not in _QUESTION_FILLER:
            keys |= match_keys(word)
    return frozenset(keys)


_ADDRESS_WORDS = re.compile(r"\b(?:man|mate|guys|bro|dude|folks|ребята|друзья)\b", re.IGNORECASE)
_KIND_RANK = ("are_you_open", "greet", "how_are_you", "bye", "thanks", "ack")
_QUESTION = re.compile(r"\?\s*$|^\W*(?:is|are|does|do|did|can|could|will|would|should|has|have|а|ли|можно|разве)\b"
                       r"|\b(?:ли)\b", re.IGNORECASE)
_PRONOUN = re.compile(r"\b(?:it|its|it's|they|them|this|that|these|those|he|she"
                      r"|его|её|ее|он|она|они|их|оно|него|неё|нём|нем|ней|них|нему|ним|ними|нею)\b",
                      re.IGNORECASE)


def _only_small_talk(text: str, kinds: tuple[str, ...], rest: str) -> bool:
    """Whether the message is small talk and nothing else ("good morning! busy day?", "thanks mate,
    see you saturday"); "are you open on Sunday?" asks about the hours (the FAQ answers it)."""
    from bot.understand.rules import speaks_of_time

    if "are_you_open" in kinds and speaks_of_time(text) and not set(kinds) & {"greet", "bye", "thanks"}:
        return False
    if not rest:
        return True
    words = rest.split()
    return bool(set(kinds) & {"thanks", "bye"}) and len(words) <= 2 and not any(c.isdigit() for c in rest)


# Commands that a short rest of small talk still asks for ("thanks, checkout please", "thanks! my cart?").
_AFTER_SMALL_TALK = (StartCheckout, ShowCatalog, ShowCart, ClearCart, OrderStatus, NewPaymentLink, Help, Handoff)


def _asks_for_more(rest: str, understander: RuleUnderstander, state: DialogueState,
                   context: UnderstandingContext) -> bool:
    """Whether the words left after small talk ask for one of ``_AFTER_SMALL_TALK`` (then the message
    is understood from them, not answered as small talk)."""
    if not rest:
        return False
    commands = understander._understand(rest, state=state, context=context)
    return bool(commands) and all(isinstance(c, _AFTER_SMALL_TALK) for c in commands)


def _main_kind(kinds: tuple[str, ...]) -> SmallTalkKindName:
    return next(k for k in _KIND_RANK if k in kinds)  # type: ignore[return-value]


def _refine(commands: list[Understood], *, text: str, state: DialogueState,
            context: UnderstandingContext) -> list[Understood]:
    """Second look at what the rules made of a message: a question about a known item the knowledge
    base has no field for ("is the teapot made in the USA?", "пионы пахнут?") is an unknown fact (offered
    to a manager); a booking request with no service named is for the service talked about last."""
    commands = [_named_literally(c, text, context) for c in commands]
    corrected = _not_but(text, commands, state, context)
    if corrected:
        return corrected
    conditional = _conditional(commands, text=text, state=state, context=context)
    if conditional:
        return conditional
    if len(commands) == 1 and isinstance(commands[0], (NotSold, ShowItem, NotUnderstood)):
        shipping = _shipping_faq(text, context)  # "how much to send the pomade to Hamburg?"
        if shipping:
            return shipping
    made_of = _WHAT_OF.match(text)
    if made_of and len(commands) == 1 and (isinstance(commands[0], NotUnderstood) or (
            isinstance(commands[0], ShowItem) and commands[0].aspect is None and commands[0].variant_id is None)):
        return [SearchCatalog(query=made_of.group(1)[:500])]  # "а что есть из тюльпанов?": the items with them
    if len(commands) == 1 and isinstance(commands[0], NotUnderstood) and _BROWSE.search(text):
        browsed = _browse(text)
        if browsed:
            return browsed
    anything_in = _ANYTHING_IN.match(text)
    if anything_in and len(commands) == 1 and isinstance(commands[0], (NotUnderstood, UnknownFact, NotSold, ShowItem)):
        wanted = re.sub(r"\s+(?:please|pls|thanks)$", "", " ".join(anything_in.group("x").strip(" ?!.,").split()))
        if wanted:  # "anything in black?": the items in black
            return [SearchCatalog(query=wanted[:500])]
    about = _WHAT_ABOUT.match(text)
    if about and len(commands) == 1 and isinstance(commands[0], NotUnderstood):
        from bot.understand.rules import speaks_of_time

        wanted = " ".join((about.group("en") or about.group("ru") or "").strip(" ?!.").split())
        if wanted and not speaks_of_time(text):  # "what about sneakers?": not sold ("what about Friday?" is a time)
            return [NotSold(query=wanted[:500])]
    if len(commands) == 1 and _QUESTION.search(text):
        only = commands[0]
        if isinstance(only, NotUnderstood) and _DO_YOU_SELL.search(text):  # "do you do eyelash extensions?"
            return [NotSold(query=_DO_YOU_SELL.sub(" ", normalize(text)).strip()[:500])]
        if (isinstance(only, ShowItem) and only.aspect == "stock" and only.variant_id is None
                and _unknown_words(text, context)):  # "do you sell a tea kettle?" is not the tea towel
            return [NotSold(query=command_free_query(text))]
        extra = _asked_words(text, only.item_id, context) if isinstance(only, ShowItem) else []
        if isinstance(only, ShowItem) and only.aspect is None and only.variant_id is None and extra:
            faq = _faq_about(extra, context)
            if faq is not None:  # "can the mugs go in the dishwasher?": the FAQ knows
                return [AnswerFaq(faq_id=faq)]
            return [_fact(only.item_id, text, context)]
        if (isinstance(only, (NotUnderstood, NotSold)) and state.last_item_id is not None and _PRONOUN.search(text)
                and _known(context, state.last_item_id)):
            return [_fact(state.last_item_id, text, context)]
        if isinstance(only, NotUnderstood) and not _DO_YOU_SELL.search(text):
            named = _named_by_name_words(text, context)
            if named is not None:  # "is the teapot made in the USA?", "у роз шипы срезаны?"
                return [_fact(named, text, context)]
    if (len(commands) == 1 and isinstance(commands[0], ShowItem) and commands[0].aspect is None
            and commands[0].variant_id is not None and not _QUESTION.search(text) and not _WHAT_ABOUT.search(text)
            and _is_product(context, commands[0].item_id)):  # "navy apron": a concrete pick is taken
        return [AddToCart(item_id=commands[0].item_id, variant_id=commands[0].variant_id)]
    if (len(commands) == 1 and isinstance(commands[0], ShowItem) and commands[0].aspect is None
            and _is_product(context, commands[0].item_id) and _ordered_plainly(text, context)):
        return [AddToCart(item_id=commands[0].item_id, variant_id=commands[0].variant_id)]
    if len(commands) == 1 and isinstance(commands[0], NotUnderstood) and _FACT_QUESTION.search(text) \
            and len(_WORDS.findall(text)) >= 3:
        # "is there parking?": a question about the shop that the knowledge base does not answer is
        # offered to a manager, not "sorry, I didn't get that"
        return [UnknownFact(item_id=None, question=text[:1000])]
    out: list[Understood] = []
    for command in commands:
        if isinstance(command, FindSlots) and command.service_id is None:
            named = _literal_name(text, _service_names(context.index))
            if named is not None:  # "маникюр с покрытием" said in full, not "без покрытия"
                command = command.model_copy(update={"service_id": named})
        if (isinstance(command, FindSlots) and command.service_id is None and state.last_item_id is not None
                and _known(context, state.last_item_id) and not _is_product(context, state.last_item_id)):
            command = command.model_copy(update={"service_id": state.last_item_id})
        if isinstance(command, (FindSlots, MoveBooking)) and command.day_part is None and command.time is None:
            daytime = parse_daytime(text, context.language)  # "ближе к вечеру", "at half past ten", "в полдень"
            if daytime.time or daytime.day_part:
                command = command.model_copy(update={"time": daytime.time,
                                                     "day_part": None if daytime.time else daytime.day_part})
        out.append(command)
    return out


# A condition of a question: "…if my husband hates it?", "if I order today, …", "…, если не подойдёт?".
_IF_CLAUSE = re.compile(r"\b(?:if|in case|если|в случае)\b[^?.!,;]*,?", re.IGNORECASE)
# The condition is an order not placed yet: "if I order today", "если закажу сейчас".
_IF_ORDERING = re.compile(r"\b(?:if|если)\s+(?:(?:i|we|я|мы)\s+)?(?:order|buy|purchase|place|pay|get"
                          r"|закаж|заказыва|куп|оформ|оплач)\w*", re.IGNORECASE)


def _conditional(commands: list[Understood], *, text: str, state: DialogueState,
                 context: UnderstandingContext) -> list[Understood]:
    """A question with a condition asks about the shop's rules: "when will it arrive if I order
    today?" is the delivery time (not the status of an order), "can I return it if my husband hates
    it?" the FAQ entry its main clause ("can I return it?") finds. ``[]`` when not so."""
    if not _IF_CLAUSE.search(text) or any(isinstance(c, AnswerFaq) for c in commands):
        return []
    if _IF_ORDERING.search(text) and any(isinstance(c, (DeliveryStatus, OrderStatus)) for c in commands):
        shipping = _shipping_faq(text, context)
        if shipping:
            return shipping
    main = _IF_CLAUSE.sub(" ", text).strip(" ,")
    if not main.strip(" ?!.") or not (_QUESTION.search(text) or ASKING.search(normalize(text))):
        return []
    reading = read(main, index=context.index, state=state)
    found = _refine(_commands(reading, text=main, state=state, context=context), text=main, state=state,
                    context=context)
    return found if len(found) == 1 and isinstance(found[0], AnswerFaq) else []


_ORDER_CUE = re.compile(r"^\W*(?:a|an|one|some)\b|\b(?:please|pls|plz|пожалуйста|плиз|пжл|пож)\b", re.IGNORECASE)


def _ordered_plainly(text: str, context: UnderstandingContext) -> bool:
    """Whether a message that only names a product orders it: no question ("а розовые?", "what about
    the mug") and a sign of an order: an article ("a water bottle"), "please", or a Russian object case
    or diminutive ("вазочку", "букетик весенний"). A bare name ("букет весенний") shows the item."""
    if _QUESTION.search(text) or _WHAT_ABOUT.search(text) or ASKING.search(normalize(text)):
        return False
    return bool(_ORDER_CUE.search(text)) or bool(context.extra.get("inflected"))


_DO_YOU_SELL = re.compile(r"^\W*(?:do|does|can) (?:you|u|ya)(?: guys)? (?:do|sell|have|offer|make|carry|stock)\b"
                          r"|^\W*(?:а )?(?:вы )?(?:делаете|продаете|продаёте|предлагаете)\b"
                          r"|^\W*(?:а )?(?:у вас )?есть ли\b",
                          re.IGNORECASE)


# "anything in black?", "something in linen": the items described so (English; Russian has no such case yet).
_ANYTHING_IN = re.compile(
    r"^\W*(?:(?:ok|okay|and|so|hmm|well)\W+)*(?:(?:do you have|have you got|you got|got|is there|are there)\s+)?"
    r"(?:anything|something|any ones?|stuff)\s+(?:in|made of|made from)\s+(?P<x>.+)$", re.IGNORECASE)

# "what about sneakers?", "а как насчёт пионов?" after something else was asked about: that thing.
_WHAT_ABOUT = re.compile(r"^\W*(?:(?:ok|okay|and|so|hmm|well)\W+)*(?:what|how) about\s+(?P<en>.+)$"
                         r"|^\W*(?:(?:а|и|ну)\s+)?(?:как\s+)?насч[её]т\s+(?P<ru>.+)$", re.IGNORECASE)

# "а что есть из тюльпанов?", "что у вас есть из роз": the items made of / with something.
_WHAT_OF = re.compile(r"^\W*(?:а |и )?что (?:у вас |вообще )?(?:есть|имеется|бывает) из\s+([^?!.]+?)\s*[?!.]*$",
                      re.IGNORECASE)
# A question about the shop ("is there parking?", "do you have wifi?", "где вы находитесь?").
_FACT_QUESTION = re.compile(
    r"^\W*(?:is|are|do|does|can|could|will|where|when|what|which|who|how)\b[^?]*\?\s*$"
    r"|^\W*(?:а )?(?:есть ли|где|когда|можно ли|у вас есть|вы|как)\b[^?]*\?\s*$", re.IGNORECASE)
_WORDS = re.compile(r"[^\W\d_]{2,}")
# "show me something warm", "anything for a wedding?", "покажите что-нибудь на зиму": a browsing request.
_BROWSE = re.compile(r"\b(?:something|anything|smth)\b|\bчто[- ](?:нибудь|то|либо)\b", re.IGNORECASE)
# Its words that are not what is looked for.
_BROWSE_WORDS = re.compile(
    r"\b(?:show|me|us|i|im|i'm|we|need|want|wanted|would|like|looking|look|searching|for|to|wear|recommend|suggest"
    r"|could|can|you|your|have|got|do|please|a|an|the|some|something|anything|smth|in|that|is|nice|good"
    r"|покажите|покажи|мне|нам|нужно|нужен|нужна|надо|хочу|хотел\w*|ищу|посоветуйте|подберите|предложите|есть"
    r"|else|other|more|m|s|у|вас|что|нибудь|то|либо|ещё|еще|другое|для|на|к|пожалуйста|какое|какой)\b",
    re.IGNORECASE)
_BROWSE_MAX_WORDS = 3
# Someone the thing is for ("something for my mom", "для мамы"): ideas, as for a gift.
_PERSON = re.compile(
    r"\b(?:my|our|her|his|mom|mum|mother|dad|father|wife|husband|girlfriend|boyfriend|friend|sister|brother|son"
    r"|daughter|kids?|child|baby|grandma|grandpa|boss|colleague|teacher|мам\w*|пап\w*|жен\w|мужа?|подруг\w*"
    r"|друга?|сестр\w*|брат\w*|сын\w*|доч\w*|бабушк\w*|дедушк\w*|реб[её]н\w*|детей|коллег\w*|учител\w*)\b",
    re.IGNORECASE)


def _browse(text: str) -> list[Understood]:
    """A browsing request the rules did not otherwise understand: what it asks for, which the catalogue
    does not have ("show me something warm" → ``NotSold("warm")``: offered to a manager, as "do you have
    anything warm?" is); the catalogue when it names nothing ("show me something", "anything else?");
    ideas from the catalogue when it is for someone ("something for my mom": as a gift). ``[]`` when more
    than ``_BROWSE_MAX_WORDS`` words are left: a story ("my hands get scratched by roses, anything to
    protect them?") stays not understood, for the language model of assist mode or a manager."""
    wanted = " ".join(_BROWSE_WORDS.sub(" ", normalize(text)).split())[:500]
    if len(wanted.split()) > _BROWSE_MAX_WORDS:
        return []
    if not wanted:
        return [ShowCatalog()]
    if _PERSON.search(wanted):
        return [SearchCatalog(query=wanted)]
    return [NotSold(query=wanted)]


def command_free_query(text: str) -> str:
    return _DO_YOU_SELL.sub(" ", normalize(text)).strip()[:500] or normalize(text)[:500]


def _unknown_words(text: str, context: UnderstandingContext) -> list[str]:
    """Words of ``text`` (4+ letters, not filler) that no item text of the catalogue has."""
    from bot.understand.rules import _STOP_WORDS

    return [w for w in normalize(_DO_YOU_SELL.sub(" ", text)).split() if len(w) >= 4 and w.isalpha()
            and w not in _STOP_WORDS and w not in _QUESTION_FILLER and not context.index.knows_word(w)
            and w not in ("sell", "have", "stock", "available", "продаете", "есть", "наличии")]


def _named_by_name_words(text: str, context: UnderstandingContext) -> uuid.UUID | None:
    """The one item a question names by words of its name ("teapot", "роз" → "роза") when its other
    words are nothing the catalogue has ("made in the USA", "шипы срезаны"), so the item search, which
    wants most words found, found none."""
    from bot.language.morph import lemma_candidates
    from bot.understand.rules import _STOP_WORDS, is_ambiguous
    from knowledge.text import stem, tokenize

    index = context.index
    names = index.name_stems
    said = [w for w in tokenize(text) if w not in _QUESTION_FILLER and w not in _STOP_WORDS and not w.isdigit()]
    found: list[str] = []
    for word in said:
        form = word if stem(word) in names else next(
            (c for c in lemma_candidates(word) if _CYRILLIC.match(c) and stem(c) in names), None)
        if form is not None:
            found.append(form)
    if not found or len(found) == len(said):
        return None
    hits = index.search_items(" ".join(found), limit=3)
    if not hits or is_ambiguous(hits) or not _names_item(hits[0]):
        return None
    return hits[0].item_id


def _named_literally(command: Understood, text: str, context: UnderstandingContext) -> Understood:
    """Several items matched, but one's whole name is written in ``text``: that one."""
    if not (isinstance(command, Unresolved) and command.candidates and command.then in ("show", "add")):
        return command
    names = {c: normalize(context.index.item(c).name) for c in command.candidates if _known(context, c)}
    named = _literal_name(text, tuple(names.items()))
    if named is None:
        return command
    if command.then == "show":
        return ShowItem(item_id=named, variant_id=command.variant_id, aspect=command.aspect)
    return AddToCart(item_id=named, variant_id=command.variant_id, quantity=command.quantity or 1)


@lru_cache(maxsize=64)
def _service_names(index: object) -> tuple[tuple[uuid.UUID, str], ...]:
    """The company's services with their normalised names (cached per index: an index is immutable)."""
    return tuple((item_id, normalize(index.item(item_id).name))  # type: ignore[attr-defined]
                 for item_id in index.service_ids)  # type: ignore[attr-defined]


def _literal_name(text: str, names: tuple[tuple[uuid.UUID, str], ...]) -> uuid.UUID | None:
    """The one item whose whole name is written in ``text`` (the longest when one name contains another)."""
    norm = f" {normalize(text)} "
    found = [(len(name), item_id) for item_id, name in names if name and f" {name} " in norm]
    if not found:
        return None
    found.sort(reverse=True)
    if len(found) > 1 and found[0][0] == found[1][0]:
        return None
    return found[0][1]


def _known(context: UnderstandingContext, item_id: object) -> bool:
    try:
        context.index.item(item_id)  # type: ignore[arg-type]
    except KeyError:
        return False
    return True


_QUESTION_FILLER = frozenset("""is are does do did can could will would should has have the a an it its this that
    you your we i my me of for in on to with and or be there any ok okay please how what which about tell more
    а ли можно ваш ваши у вас это этот эта эти он она они его её ее их в на с и или ну есть""".split())


def _faq_about(words: list[str], context: UnderstandingContext) -> uuid.UUID | None:
    """The FAQ entry that contains most of ``words`` (the words of a question besides the item's name),
    when it contains more than half of them."""
    from bot.language.morph import match_keys

    best, best_count = None, 0
    for entry in context.index.search_faq(" ".join(words))[:3]:
        known: set[str] = set()
        view = next((f for f in context.index.faq() if f.id == entry.faq_id), None)
        if view is None:
            continue
        for word in normalize(f"{view.question} {view.answer}").split():
            known |= match_keys(word)
        count = sum(1 for w in words if match_keys(w) & known)
        if count > best_count:
            best, best_count = entry.faq_id, count
    return best if best_count * 2 > len(words) else None


def _asked_words(text: str, item_id: object, context: UnderstandingContext) -> list[str]:
    """What ``text`` asks about the item beyond naming it: the words that are neither the item's
    name, its variants nor question filler."""
    from bot.language.morph import match_keys

    view = context.index.item(item_id)  # type: ignore[arg-type]
    named: set[str] = set()
    for word in normalize(" ".join([view.name, *(v.name for v in view.variants)])).split():
        named |= match_keys(word)
    return [w for w in normalize(text).split() if w not in _QUESTION_FILLER and len(w) > 2
            and not (match_keys(w) & named) and not w.isdigit()]


_CYRILLIC_WORD = re.compile(r"[А-Яа-яЁё]{4,}")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def _lemmatized(text: str, context: UnderstandingContext) -> str:
    """``text`` with Russian words the catalogue does not know replaced by their dictionary form when
    the catalogue knows that ("хочу пять ромашечек" → "хочу пять ромашка", "вазочку" → "ваза"): cases
    and diminutives (pymorphy3, ``bot.language.morph``) find the catalogue's names."""
    from bot.language.morph import lemma_candidates

    index = context.index

    def replace(match: re.Match[str]) -> str:
        word = match.group().lower()
        if index.knows_word(word):
            return match.group()
        known = next((c for c in lemma_candidates(word) if c != word and index.knows_word(c)), None)
        if known is None and is_russian_verb(word):  # "покраситься" → "окрашивание", "подстричься" → "стрижка"
            known = _service_noun(word, index)
        return known or match.group()

    return _CYRILLIC_WORD.sub(replace, text)


_WORD = re.compile(r"[^\W\d_]{3,}")
_COMPOUND_STARTS: weakref.WeakKeyDictionary[KnowledgeIndex, frozenset[str]] = weakref.WeakKeyDictionary()
MAX_COMPOUND_WORDS = 24


def _compounded(text: str, context: UnderstandingContext) -> str:
    """``text`` with two words said apart written as the one word of an item's name they make
    ("do you cut kids' hair?" → "do you kids' haircut?" for "Kids haircut"), in either order."""
    from bot.understand.rules import _STOP_WORDS
    from knowledge.text import stem

    index = context.index
    starts = _COMPOUND_STARTS.get(index)
    if starts is None:  # the first three letters of the names' long words: most pairs are ruled out by them
        starts = _COMPOUND_STARTS[index] = frozenset(w[:3] for w in index.name_stems if len(w) >= 6)
    names = index.name_stems
    words = [m for m in _WORD.finditer(text) if m.group().lower() not in _STOP_WORDS][:MAX_COMPOUND_WORDS]
    if not any(m.group()[:3].lower() in starts for m in words):
        return text
    for first in words:
        for second in words:
            a, b = first.group().lower(), second.group().lower()
            if first.start() >= second.start() or (a[:3] not in starts and b[:3] not in starts):
                continue
            glued = next((g for g in (a + b, b + a) if g[:3] in starts and stem(g) in names), None)
            if glued is not None:
                return f"{text[:first.start()]}{text[first.end():second.start()]}{glued}{text[second.end():]}"
    return text


def _who_for(sentence: str) -> bool:
    """Whether a sentence only says who the request is for ("my son is 8", "это для дочки")."""
    from bot.language.audience import audiences

    return bool(audiences(sentence)) and len(sentence.split()) <= 6


_SERVICE_WORDS: weakref.WeakKeyDictionary[KnowledgeIndex, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _service_noun(verb: str, index: KnowledgeIndex) -> str | None:
    """The word of a service's name made from ``verb`` (same root: ``bot.language.roots``), if one."""
    words = _SERVICE_WORDS.get(index)
    if words is None:
        names = (index.item(item_id).name for item_id in index.service_ids)
        words = _SERVICE_WORDS[index] = tuple(dict.fromkeys(
            w for name in names for w in normalize(name).split() if len(w) >= 4 and _CYRILLIC_WORD.fullmatch(w)))
    return next((w for w in words if shares_root(verb, w)), None)


def region_of(context: UnderstandingContext) -> str | None:
    """The company's country (ISO 3166 alpha-2) as its IANA timezone tells (``region_of_timezone``):
    the region local phone numbers are read in ("503 555 0142" in America/Los_Angeles)."""
    return region_of_timezone(context.timezone)


def _details(text: str, *, state: DialogueState, context: UnderstandingContext) -> list[Understood]:
    """At a checkout or booking-name question: cancel, skip (the phone), a manager, or the details
    given in any shape and order ("Li Wei, 4 Cedar Lane, Portland OR 97205, 503 555 0142"); ``[]``
    when the message gives none of these."""
    if _STEP_CANCEL.match(text):
        return [Cancel()]
    if state.step == Step.CHECKOUT_PHONE and _STEP_SKIP.search(text):
        return [Skip()]
    first = read(text, index=context.index, state=state)
    if first.intent in (Intent.HANDOFF, Intent.CANCEL, Intent.SKIP):
        return _commands(first, text=text, state=state, context=context)
    details = extract_details(text, context.language, region_of(context))
    if not (details.name or details.address or details.phone_e164):
        # "Марина" asked for a name: a name alone is the answer (not a request the rules read)
        name = read_name(text) if state.step in _NAME_STEPS and first.intent == Intent.FALLBACK else None
        return [GiveDetails(name=name)] if name and not not_a_name(text) else []
    phone = details.phone_e164 if details.phone_e164 and _E164.match(details.phone_e164) else None
    address = details.address
    if address is None and details.name and state.step == Step.CHECKOUT_NAME:
        address = _rest_address(text, details.name, phone)
    try:
        return [GiveDetails(name=details.name, address=address, phone=phone)]
    except ValueError:  # a value the command refuses (a too long name): the phone alone, if any
        return [GiveDetails(phone=phone)] if phone else []


# A run of digits that may be a phone number ("+49 151 2345678", "8 (912) 345-67-89")
_PHONE_RUN = re.compile(r"[+\d][\d\s().-]{5,}\d")
_PHONE_WORDS = re.compile(r"\b(?:my|the|phone|number|mobile|cell|is|it's|here|тел|телефон|номер|мой|моб|мобильный|"
                          r"вот|это)\b\.?", re.IGNORECASE)


def _phone_only(text: str, context: UnderstandingContext) -> str | None:
    """The E.164 phone number of a message that gives only that ("+49 151 23456789", "my number is 0151
    23456789", "мой телефон 8 912 345-67-89"; local numbers read in the company's country), else ``None``."""
    details = extract_details(text, context.language, region_of(context))
    phone = details.phone_e164
    if not phone or not _E164.match(phone) or details.name or details.address:
        return None
    rest = _PHONE_WORDS.sub(" ", _PHONE_RUN.sub(" ", text))
    return phone if not rest.strip(" ,.:;!-") else None


def _rest_address(text: str, name: str, phone: str | None) -> str | None:
    """What is left of a one-line answer once the name and the phone are taken out, when it reads
    like an address (a number and a word): "Lena Vogel, Oranienstraße 25, 10999 Berlin, 0151 23456789"."""
    rest = text.replace(name, " ")
    if phone:
        digits = phone.lstrip("+")
        for match in _PHONE_RUN.finditer(rest):
            found = re.sub(r"\D", "", match.group())
            if found and (digits.endswith(found.lstrip("0")) or found.endswith(digits[-7:])):
                rest = rest.replace(match.group(), " ")
                break
    rest = " ".join(rest.split()).strip(" ,;.-")
    if re.search(r"\d", rest) and re.search(r"[^\W\d_]{3,}", rest):
        return rest[:500]
    return None


def _minor(amount: object, context: UnderstandingContext) -> int | None:
    if amount is None:
        return None
    from babel.numbers import get_currency_precision

    currency = context.extra.get("currency") if isinstance(context.extra.get("currency"), str) else None
    digits = get_currency_precision(currency) if currency else 2
    return int(round(amount * (10 ** digits)))  # type: ignore[operator]


def _budget(text: str, context: UnderstandingContext) -> list[Understood]:
    """"A gift for a coworker, max 30 dollars", "что-нибудь до 2000 рублей": a catalogue search
    within the budget (minor units of the company's currency)."""
    budget = parse_budget(text, context.language)
    if budget is None or (budget.min_amount is None and budget.max_amount is None):
        return []
    if budget.around is not None and _OR_LESS.search(text):  # "around $50 or less": 50 is the ceiling
        budget = replace(budget, min_amount=None, max_amount=budget.around)
    from bot.understand.rules import speaks_of_time

    if budget.currency is None and speaks_of_time(text):  # "around 5pm" is a time, not a price
        return []
    query = _budget_query(text)
    return [SearchCatalog(query=query, min_price_minor=_minor(budget.min_amount, context),
                          max_price_minor=_minor(budget.max_amount, context))]


_BUDGET_WORDS = re.compile(
    r"\d[\d\s.,]*|[$€£₽]|\b(?:max(?:imum)?|under|below|less|than|no|not|more|up|to|within|at|most|tops|cheaper|budget"
    r"|between|and|or|from|over|around|about|dollars?|bucks?|euros?|pounds?|usd|eur|gbp|rub|something|anything|nice"
    r"|what|have|you|got|for|a|an|the|my|me|i|need|want|is|do|до|не|дороже|больше|более|дешевле|меньше|в|пределах"
    r"|максимум|от|за|рубл\w*|руб|р|тысяч\w*|тыс|что|нибудь|есть|что-нибудь|около|примерно|мне|нужно|хочу"
    r"|трёх|трех|двух|пяти|одной|одну)\b", re.IGNORECASE)


_SAME = r"сам(?:ый|ая|ое|ые|ую|ого)"  # "самый дешёвый", "самую дорогую"
_CHEAPEST = re.compile(rf"\b(?:cheapest|least expensive|lowest[- ]priced|most affordable"
                       rf"|{_SAME} (?:дешёв|дешев|недорог)\w*|подешевле всего|дешевле всего)\b", re.IGNORECASE)
_DEAREST = re.compile(rf"\b(?:most expensive|priciest|dearest|highest[- ]priced|{_SAME} дорог\w*|дороже всего)\b",
                      re.IGNORECASE)
_PRICE_ORDER_WORDS = re.compile(
    r"'s\b|\b(?:thing|things|item|items|product|products|one|ones|option|options|your|please|show|tell|which"
    r"|whats|вещь|товар\w*|у|вас|ваш\w*|как\w*|покажите|пожалуйста)\b", re.IGNORECASE)


def _by_price(text: str, *, state: DialogueState) -> list[Understood]:
    """"What's the cheapest thing you have?", "your most expensive shirt", "самый дешёвый букет": a
    catalogue search ordered by price (the whole catalogue when nothing else is named). Not while options
    are offered ("the cheaper one" picks among them, see ``_choice``)."""
    cheapest, dearest = _CHEAPEST.search(text), _DEAREST.search(text)
    if not (cheapest or dearest) or state.offered() or state.offered_items():
        return []
    rest = _CHEAPEST.sub(" ", _DEAREST.sub(" ", text))
    query = " ".join(_PRICE_ORDER_WORDS.sub(" ", _budget_query(rest)).split())
    return [SearchCatalog(query=query, order="price_asc" if cheapest else "price_desc")]


_CHEAPER = re.compile(
    r"^(?:(?:and|but|ok|okay|so|hmm|well)\s+)*(?:(?:do you have|have you got|you got|is there|are there|got|any)\s+)?"
    r"(?:anything|something|one|ones|options?)?\s*(?:a bit |a little |slightly |a little bit )?"
    r"(?:cheaper|less expensive|more affordable|lower[- ]priced)(?:\s+(?:one|ones|options?|please|than (?:that|this|it)"
    r"|available|in stock))*$"
    r"|^(?:(?:а|и|ну|хм)\s+)*(?:(?:есть|у вас есть|а есть)\s+)?(?:что[- ]?(?:то|нибудь)\s+|какой[- ]?нибудь\s+"
    r"|какие[- ]?нибудь\s+|что\s+)?(?:подешевле|дешевле|бюджетнее|поэкономнее|попроще)(?:\s+(?:есть|варианты"
    r"|вариант|что[- ]?нибудь|чем этот|чем это|пожалуйста))*$", re.IGNORECASE)


def _cheaper(text: str, *, state: DialogueState, context: UnderstandingContext) -> list[Understood]:
    """"Anything cheaper?", "а что-нибудь подешевле?" when no options are offered: what costs less than
    the item talked about last (dearest first, in its category when it has one), or the cheapest of
    the catalogue when no item was. Prices are the knowledge base's (minor units)."""
    if not _CHEAPER.match(" ".join(text.casefold().replace("ё", "е").strip(" ?!.").split())):
        return []
    if state.offered() or state.offered_items():
        return []  # "the cheaper one" among the options: ``_choice``
    last = None
    if state.last_item_id is not None:
        try:
            last = context.index.item(state.last_item_id)
        except KeyError:
            last = None
    floor = _lowest_price(last) if last is not None else None
    if last is None or floor is None:
        return [SearchCatalog(query="", order="price_asc")]
    # In its category when that has something cheaper (a rare message: one pass over the items), else all.
    same = last.category is not None and any(
        v.category == last.category and v.id != last.id and (_lowest_price(v) or floor) < floor
        for v in context.index.items())
    return [SearchCatalog(query=last.category if same and last.category else "", max_price_minor=max(floor - 1, 0),
                          order="price_desc")]


def _lowest_price(view: ItemView) -> int | None:
    """The lowest price of an item or its variants (minor units); ``None``: no price at all."""
    prices = [p for p in (view.price_minor, *(v.price_minor for v in view.variants)) if p is not None]
    return min(prices) if prices else None


# A gift asked for (the noun, "подарить"); not "gift-wrapped", "подарочная коробка" (about an item's packing)
_GIFT = re.compile(r"\b(?:gifts?|presents?)\b(?![-\s]?wrap)|\bподар(?:ок|ка|ки|ков|ку|ить|ю|им|ите|ят)\b",
                   re.IGNORECASE)
_GIFT_FOR = re.compile(r"\b(?:birthday|anniversary|christmas|on|for|her|him|день|рождения|на|для|к)\b", re.IGNORECASE)


def _gift(text: str, context: UnderstandingContext) -> list[Understood]:
    """"I need a gift for my wife", "что подарить маме на день рождения?", "что-нибудь на 8 марта" (an
    occasion with no item named): ideas from the catalogue (a search
    by the other words, the catalogue when they name nothing), not the one item whose description or name
    says "gift". An item named by more than the gift word ("gift card", "подарочный набор") is that item."""
    from bot.understand.rules import OCCASION

    if not _GIFT.search(text):
        if not OCCASION.search(text) or any(_names_item(hit) for hit in search_items(context.index, text)):
            return []  # "a mug for christmas" is the mug; "что-нибудь на 8 марта" asks for ideas
        rest = _PRICE_ORDER_WORDS.sub(" ", _GIFT_FOR.sub(" ", _budget_query(OCCASION.sub(" ", text))))
        return [SearchCatalog(query=" ".join(w for w in rest.split() if re.search(r"\w", w)))]
    if any(_names_item(hit) and any(not _GIFT.fullmatch(w) for w in hit.matched_terms)
           for hit in search_items(context.index, text)):
        return []  # "gift wrapping": more than the gift word names an item
    query = " ".join(_GIFT_FOR.sub(" ", _GIFT.sub(" ", _budget_query(text))).split())
    return [SearchCatalog(query=query)]


_OR_LESS = re.compile(r"\bor (?:less|under|below|cheaper)\b|\bat most\b|\bили (?:меньше|дешевле)\b", re.IGNORECASE)


def _budget_query(text: str) -> str:
    """What is looked for besides the budget ("a present", "букет"); gift words are kept."""
    return " ".join(_BUDGET_WORDS.sub(" ", text).replace("?", " ").split())[:500]


def _named_option(text: str, *, state: DialogueState, context: UnderstandingContext) -> list[Understood]:
    """"Green" while the mug's colours are offered as buttons: the option of the variant named (its
    button, in ``state.choices``); a quantity said with it ("2 green") is an order of its own."""
    waiting = state.waiting_item()
    if waiting is None or not state.choices:
        return []
    reading = read(text, index=context.index, state=state)
    if (reading.intent != Intent.ADD or reading.item_id != waiting or reading.variant_id is None
            or reading.quantity is not None):
        return []
    for n, payload in enumerate(state.choices, 1):
        pressed = decode(payload)
        if isinstance(pressed, AddToCart) and pressed.item_id == waiting and pressed.variant_id == reading.variant_id:
            return [Choose(option=n)]
    return []


def _choice(text: str, *, state: DialogueState, context: UnderstandingContext) -> list[Understood]:
    """"The second", "the cheaper one", "вторую", "the earliest" while options are offered."""
    offers = state.offered()
    items = state.offered_items()
    waiting = state.waiting_item()
    variants: list[uuid.UUID] = []
    if waiting is not None:
        try:
            variants = [v.id for v in context.index.item(waiting).variants]
        except KeyError:
            variants = []
    count = len(offers) or len(items) or len(variants)
    if not count:
        return _pick_variant(text, state=state, context=context)
    choice = parse_choice(text, context.language)
    how_many = _how_many(text) if waiting is not None and variants and not offers and not items else None
    numbered = text.strip().isdigit() and 1 <= int(text.strip()) <= count  # "2": the second of a numbered list
    if how_many is not None and not numbered and (choice is None or choice.index is None):
        # "5 штук" to "which colour?": the quantity is kept and the colour asked again
        return [AddToCart(item_id=waiting, variant_id=None, quantity=how_many)]
    if choice is None:
        if offers and _EARLIEST.search(text):
            return [Choose(option=1)]
        return _named_option(text, state=state, context=context)
    if choice.index is not None:
        n = count if choice.index == -1 else choice.index
        return [Choose(option=n)] if 1 <= n <= count else []

    def price(i: int) -> int:
        if items:
            return _lowest_price(context.index.item(items[i])) or 0
        if variants:
            view = context.index.item(waiting)  # type: ignore[arg-type]
            variant = view.variants[i]
            return variant.price_minor if variant.price_minor is not None else (view.price_minor or 0)
        return 0

    order = sorted(range(count), key=price)
    pick = order[0] if choice.price == "cheapest" else order[-1]
    return [Choose(option=pick + 1)]


_TAKE = re.compile(r"\b(?:take|go with|want|give me|get|buy|order|беру|возьму|берём|давайте|хочу|дайте|купл\w*)\b",
                   re.IGNORECASE)


def _how_many(text: str) -> int | None:
    """The quantity of a message that is only a quantity ("5 штук", "five please", "two of them", "5");
    ``None`` otherwise (a variant or an item named too)."""
    from bot.understand.rules import is_bare

    norm = normalize(text)
    quantity = parse_quantity(norm)
    return quantity if quantity is not None and is_bare(norm) and not _OTHER_THINGS.search(norm) else None


_OTHER_THINGS = re.compile(r"\b(?:anything|something|other|else)\b|что[- ]?(?:нибудь|то)\b|\bесть\b", re.IGNORECASE)


def _pick_variant(text: str, *, state: DialogueState, context: UnderstandingContext) -> list[Understood]:
    """"I'll go with the cheaper one" after an item with variants was shown: that variant (added when
    the customer takes it, shown otherwise)."""
    if state.last_item_id is None or not _is_product(context, state.last_item_id) or _OTHER_THINGS.search(text):
        return []  # "anything cheaper?" asks for other items (``_cheaper``), not a variant
    choice = parse_choice(text, context.language)
    view = context.index.item(state.last_item_id)
    variants = list(view.variants)
    if choice is None or len(variants) < 2:
        return []
    if choice.price is not None:
        ranked = sorted(variants, key=lambda v: v.price_minor if v.price_minor is not None else view.price_minor or 0)
        variant = ranked[0] if choice.price == "cheapest" else ranked[-1]
    elif choice.index is not None and (choice.index == -1 or 1 <= choice.index <= len(variants)):
        variant = variants[choice.index - 1 if choice.index > 0 else -1]
    else:
        return []
    if _TAKE.search(text):
        return [AddToCart(item_id=view.id, variant_id=variant.id)]
    return [ShowItem(item_id=view.id, variant_id=variant.id)]


_EARLIER_LATER = re.compile(
    r"^(?:(?:ok|okay|hmm|and|so|well)\W+)*(?:(?:is there|are there|do you have|have you got|you got|got|any)\s+)?"
    r"(?:anything|something|any|a time|times|one)?\s*(?:a bit |a little |slightly )?(earlier|later)"
    r"(?:\s+(?:in the day|that day|on|times?|please|than that|than these|ones?))*$", re.IGNORECASE)
_PART_ORDER = ("morning", "afternoon", "evening")


_SOMEONE = re.compile(
    r"^(?:(?:ok|okay|and|so|hmm|well)\W+)*(?:(?:is|can|could|would) (?P<a>\w+) (?:be )?(?:available|free|do it|do that)"
    r"(?: then| instead| that day)?|(?:and )?with (?P<b>\w+)(?: please| then| instead)?)$"
    r"|^(?:(?:а|и|ну)\s+)?(?:(?:к|с|у) (?P<c>\w+)(?: можно| получится| есть время)?|(?P<d>\w+) свободн\w*)$",
    re.IGNORECASE)


def _with_someone(text: str, *, state: DialogueState) -> list[Understood]:
    """"Is Marco available?", "with Anna then", "а к Марко можно?" while times are offered: the times of
    the same request again, which the booking action narrows to the staff member named (its
    ``_resource_named`` reads the message; a name that is nobody's offers the same times)."""
    draft = state.booking
    if not state.offered() or draft is None or draft.service_id is None or draft.mode != "book":
        return []
    if not _SOMEONE.match(" ".join(text.strip(" ?!.").split())):
        return []
    return [FindSlots(service_id=draft.service_id, day=draft.local_day)]


def _earlier_or_later(text: str, *, state: DialogueState) -> list[Understood]:
    """"Anything earlier?", "later please" while times are offered: the times of the part of the same day
    before or after the one offered (from the afternoon's, the morning's); from the whole day's, the
    morning's or the evening's. (Was "not sold".)"""
    m = _EARLIER_LATER.match(" ".join(text.strip(" ?!.").split()))
    draft = state.booking
    if m is None or not state.offered() or draft is None or draft.service_id is None or draft.mode != "book":
        return []
    step = -1 if m.group(1).lower() == "earlier" else 1
    part = draft.part_of_day if draft.part_of_day in _PART_ORDER else None
    if part is None:
        new_part = "morning" if step < 0 else "evening"
    else:
        new_part = _PART_ORDER[max(0, min(len(_PART_ORDER) - 1, _PART_ORDER.index(part) + step))]
    return [FindSlots(service_id=draft.service_id, day=draft.local_day, day_part=new_part)]  # type: ignore[arg-type]


_EARLIEST = re.compile(r"\b(?:the )?(?:earliest|soonest|first available|самое раннее|пораньше|ближайш\w*)\b",
                       re.IGNORECASE)


def _bare_item(commands: list[Understood], context: UnderstandingContext) -> bool:
    """Whether ``commands`` is a product named with nothing asked about it ("a teapot", "two mugs")."""
    return (len(commands) == 1 and isinstance(commands[0], ShowItem) and commands[0].aspect is None
            and _is_product(context, commands[0].item_id))


def _leading_no(parts: list[list[Understood]]) -> bool:
    """Whether the first part is only a "no" / "ok" before a cart change ("no, 6 instead")."""
    return len(parts) > 1 and bool(parts[0]) and all(isinstance(c, (Skip, SmallTalk)) for c in parts[0]) and any(
        isinstance(c, (SetQuantity, RemoveLine, AddToCart, Unresolved)) for c in parts[1])


def _parts(parts: list[list[Understood]], quantities: list[int | None],
           context: UnderstandingContext) -> list[Understood]:
    """The commands of a message said in parts: a product named bare ("a teapot and two mugs") is
    added when the other parts add or name products too, and asked about like the others when they
    ask ("how much are the teapot and the mug?")."""
    asked = next((c.aspect for part in parts for c in part if isinstance(c, ShowItem) and c.aspect), None)
    out: list[Understood] = []
    if _leading_no(parts):  # "no, 8 instead", "нет, лучше 8 штук": a correction
        parts, quantities = parts[1:], quantities[1:]
    for part, quantity in zip(parts, quantities, strict=True):
        if _bare_item(part, context):
            shown = part[0]
            if asked is not None:
                out.append(ShowItem(item_id=shown.item_id, variant_id=shown.variant_id, aspect=asked))
            else:
                out.append(AddToCart(item_id=shown.item_id, variant_id=shown.variant_id, quantity=quantity or 1))
        else:
            out += part
    return out


def _swap(text: str, *, state: DialogueState, context: UnderstandingContext) -> list[Understood]:
    """"Swap it for the red one", "replace the mug with a teapot": remove the old line, add the new
    item (or the same item in the variant named); ``[]`` when ``text`` is no such swap."""
    norm = normalize(text)
    match = SWAP.match(norm) or INSTEAD.match(norm)
    if match is None:
        return []
    old = read(f"remove {match['old'] or 'it'}", index=context.index, state=state)
    item_id = old.item_id if old.item_id is not None else state.last_item_id
    if item_id is None or not _is_product(context, item_id):
        return []
    variant_id = old.variant_id if old.item_id is not None else state.last_variant_id
    remove = RemoveLine(item_id=item_id, variant_id=variant_id)
    # the new line keeps the old line's quantity (5 red roses → 5 white ones) unless one is said
    kept = next((q for i, v, q in _cart_lines(context) if i == item_id and v == variant_id), None)
    variant = context.index.match_variant(item_id, match["new"])
    if variant is not None and not _names_other_item(match["new"], item_id, context):
        said = quantity_in(match["new"])
        return [remove, AddToCart(item_id=item_id, variant_id=variant, quantity=said or kept or 1)]
    new = read(f"add {match['new']}", index=context.index, state=DialogueState())
    if new.intent != Intent.ADD or new.item_id is None or new.item_id == item_id and new.variant_id is None:
        return []
    return [remove, AddToCart(item_id=new.item_id, variant_id=new.variant_id, quantity=new.quantity or kept or 1)]


def _names_other_item(text: str, item_id: object, context: UnderstandingContext) -> bool:
    hits = context.index.search_items(text, limit=1)
    return bool(hits) and hits[0].item_id != item_id and hits[0].score > 0 and any(
        w in normalize(hits[0].name) for w in normalize(text).split() if len(w) > 3)


def _is_product(context: UnderstandingContext, item_id: object) -> bool:
    try:
        return context.index.item(item_id).kind != "service"  # type: ignore[arg-type]
    except KeyError:
        return False


def _names_one_item(commands: list[Understood], context: UnderstandingContext) -> bool:
    """Whether the whole message names one item whose name itself has a conjunction or a comma."""
    if len(commands) != 1 or not isinstance(commands[0], (AddToCart, ShowItem, SetQuantity, RemoveLine, FindSlots)):
        return False
    item_id = commands[0].service_id if isinstance(commands[0], FindSlots) else commands[0].item_id
    if item_id is None:
        return False
    try:
        name = context.index.item(item_id).name
    except KeyError:
        return False
    return len(_SPLIT.split(name)) > 1


def _quantity(reading: Understanding, state: DialogueState) -> int | None:
    if reading.quantity is not None:
        return reading.quantity
    pending = state.pending
    if pending is not None and reading.item_id is not None and pending.item_id == reading.item_id:
        return pending.quantity  # "medium" after "add 2 varsity tops": the 2 asked for
    if pending is not None and reading.item_id in state.offered_items():
        return pending.quantity
    return None


def _candidates(reading: Understanding) -> tuple:
    return tuple(h.item_id for h in (reading.options or reading.hits))


def _commands(reading: Understanding, *, text: str, state: DialogueState,
              context: UnderstandingContext) -> list[Understood]:
    intent = reading.intent
    simple = {
        Intent.GREET: SmallTalk(kind="greet"), Intent.HELP: Help(), Intent.THANKS: SmallTalk(kind="thanks"),
        Intent.ACK: SmallTalk(kind="ack"), Intent.CATALOG: ShowCatalog(), Intent.CART_SHOW: ShowCart(),
        Intent.CART_CLEAR: ClearCart(), Intent.CHECKOUT: StartCheckout(), Intent.SKIP: Skip(), Intent.CANCEL: Cancel(),
        Intent.ORDER_STATUS: OrderStatus(), Intent.NEW_LINK: NewPaymentLink(), Intent.HANDOFF: Handoff(),
        Intent.BOOKING_STATUS: ShowBooking(), Intent.BOOKING_CANCEL: CancelBooking(),
    }
    if intent in simple:
        return [simple[intent]]
    quantity = _quantity(reading, state)
    aspect = _ASPECTS.get(reading.aspect) if reading.aspect else None  # type: ignore[arg-type]
    if intent == Intent.CHOOSE_OFFER and reading.offer is not None:
        return [Choose(option=reading.offer + 1)]
    if intent == Intent.FAQ and reading.faq is not None:
        return [AnswerFaq(faq_id=reading.faq.faq_id)]
    if intent == Intent.DELIVERY_STATUS:
        return [DeliveryStatus(faq_id=reading.faq.faq_id if reading.faq else None)]
    if intent == Intent.INFO:
        if reading.options or (reading.aspect == Aspect.LIST and len(reading.hits) > 1):
            return [Unresolved(then="show", candidates=_candidates(reading), aspect=aspect,
                               listing=reading.aspect == Aspect.LIST and not reading.options, query=reading.query)]
        item_id = reading.item_id
        if item_id is None and reading.aspect == Aspect.LIST and reading.hits:
            item_id, aspect = reading.hits[0].item_id, None
        if item_id is None:
            if is_bare(normalize(reading.text)):  # "какие у вас цены?": the catalogue with its prices
                return [ShowCatalog()]
            return [NotSold(query=reading.query or reading.text)]
        return [ShowItem(item_id=item_id, variant_id=reading.variant_id, aspect=aspect)]
    if intent == Intent.ADD:
        if reading.options:
            return [Unresolved(then="add", candidates=_candidates(reading), quantity=quantity, query=reading.text)]
        if reading.item_id is None:
            if reading.hits or not is_bare(normalize(reading.text)):
                return [NotSold(query=reading.query or reading.text)]
            return [NotUnderstood(text=text)]
        return [AddToCart(item_id=reading.item_id, variant_id=reading.variant_id, quantity=max(quantity or 1, 1))]
    if intent == Intent.ADD_MORE:
        if state.last_item_id is None:
            return [Unresolved(then="add", quantity=reading.quantity)]  # the last cart line, if any
        return [AddToCart(item_id=state.last_item_id, variant_id=state.last_variant_id,
                          quantity=max(reading.quantity or 1, 1))]
    if intent in (Intent.CART_SET, Intent.CART_REMOVE):
        then = "set" if intent == Intent.CART_SET else "remove"
        candidates = _candidates(reading)
        if reading.item_id is not None and len(candidates) <= 1:
            if then == "remove" and reading.quantity is None:
                return [RemoveLine(item_id=reading.item_id, variant_id=reading.variant_id)]
            if then == "set" and reading.quantity:
                return [SetQuantity(item_id=reading.item_id, variant_id=reading.variant_id,
                                    quantity=reading.quantity)]
        if reading.item_id is not None and reading.item_id not in candidates:
            candidates = (reading.item_id, *candidates)
        return [Unresolved(then=then, candidates=candidates, variant_id=reading.variant_id,
                           quantity=reading.quantity, query=reading.text)]
    if intent in (Intent.BOOK, Intent.BOOKING_MOVE):
        when = _when(text, context)
        if intent == Intent.BOOKING_MOVE:
            return [MoveBooking(**when)]
        service = reading.item_id if reading.item_id is not None and not _is_product(context, reading.item_id) \
            else None
        return [FindSlots(service_id=service, **when)]
    return [NotUnderstood(text=text)]


def _when(text: str, context: UnderstandingContext) -> dict[str, object]:
    """The day / part of day / time ``text`` asks for, read in the company's timezone."""
    from bot.understand.rules import speaks_of_time

    if not speaks_of_time(text):
        return {}
    try:
        query = parse_when(text, language=detect_language(text, default=context.language), tz=context.timezone,
                           now=context.now)
    except ValueError:
        return {}
    return {"day": query.day, "day_part": query.part_of_day,
            "time": query.after.strftime("%H:%M") if query.after else None}
