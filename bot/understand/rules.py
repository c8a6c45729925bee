"""The rules of the rule-based understanding (English and Russian, no language model).

``read(text, index=..., state=...)`` reads one message into an :class:`Understanding` (the rules'
own, internal shape: a category, the item, variant, quantity, FAQ entry, what was asked about an
item); ``bot.understand.RuleUnderstander`` turns readings into commands (``bot.commands``). Categories
are found with keyword patterns over ``knowledge.text.normalize``d text (both languages at once, so
a Russian word in an English conversation still works); items, variants and FAQ entries come from
the company's ``KnowledgeIndex``; quantities from ``parse_quantity``.

Only references kept in the state are read (the item talked about last, the item waiting for a
variant, the items, times or windows offered last), never the dialogue step: what a step accepts is
``bot.policy``'s job.

A company with services (items of kind ``"service"``) also gets the booking categories: a service
named with a time or a wish ("a haircut tomorrow afternoon", "запишите на стрижку в пятницу"), a time
alone while a booking is being arranged ("можно завтра утром?"), "my booking", cancel and move. Only
*whether* a message speaks about a time is decided here (``WHEN``); reading the time needs the
company's timezone and clock (``commerce.when.parse_when``).
"""

from __future__ import annotations

import re
import uuid
import weakref
from dataclasses import dataclass
from enum import StrEnum

from bot.language.quantities import parse_quantity
from bot.state import DialogueState, Offer
from knowledge.search import FaqHit, ItemHit, KnowledgeIndex
from knowledge.text import normalize, stem, tokenize

# Two hits whose scores are this close, matching as many query words, are "the same" to the customer.
AMBIGUITY_RATIO = 0.75


class Intent(StrEnum):
    """What the customer wants."""

    GREET = "greet"
    HELP = "help"
    THANKS = "thanks"
    ACK = "ack"
    CATALOG = "catalog"
    INFO = "info"
    FAQ = "faq"
    ADD = "add"
    ADD_MORE = "add_more"
    CART_SHOW = "cart_show"
    CART_SET = "cart_set"
    CART_REMOVE = "cart_remove"
    CART_CLEAR = "cart_clear"
    CHECKOUT = "checkout"
    SKIP = "skip"
    CANCEL = "cancel"
    ORDER_STATUS = "order_status"
    NEW_LINK = "new_link"
    HANDOFF = "handoff"
    FALLBACK = "fallback"
    # bookings of services
    BOOK = "book"
    CHOOSE_OFFER = "choose_offer"  # an offered time, booking or delivery window
    BOOKING_STATUS = "booking_status"
    BOOKING_CANCEL = "booking_cancel"
    BOOKING_MOVE = "booking_move"
    # delivery windows of paid orders
    DELIVERY_STATUS = "delivery_status"


class Aspect(StrEnum):
    """What an information question asks about an item."""

    PRICE = "price"
    VARIANTS = "variants"
    STOCK = "stock"
    DESCRIPTION = "description"
    GENERAL = "general"
    LIST = "list"  # "what jackets do you have": every matching item
    DURATION = "duration"  # "how long does colouring take" (services)
    PREPAY = "prepay"  # "do I have to pay in advance for colouring" (services)


@dataclass(frozen=True, slots=True)
class Understanding:
    """One message understood.

    ``item_id`` is the item meant (``None`` when none or when the name is ambiguous); ``options``
    are the plausible items when the name is ambiguous (best first), ``hits`` every item found;
    ``variant_id`` the variant of ``item_id`` named in the message; ``quantity`` an explicit
    quantity (``None``: not said); ``faq`` the FAQ entry answering the message; ``query`` the
    message without command words (what the customer called the item); ``offer`` the index of the
    offered booking time, booking or delivery window the message chooses (in
    ``DialogueState.booking.offers`` / ``DialogueState.delivery.offers``).
    """

    intent: Intent
    text: str
    aspect: Aspect | None = None
    quantity: int | None = None
    item_id: uuid.UUID | None = None
    variant_id: uuid.UUID | None = None
    options: tuple[ItemHit, ...] = ()
    hits: tuple[ItemHit, ...] = ()
    faq: FaqHit | None = None
    query: str = ""
    offer: int | None = None


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


# --- keyword patterns (over normalised text: lower case, ё → е, no punctuation, "i'll" → "ill") -----

HANDOFF = _rx(
    r"\b(human|humans|operator|manager|real person|live person|live agent|live chat|someone real|real human)\b",
    r"\b(talk|speak|chat) (to|with) (a |an |the )?(person|someone|somebody|agent|support|staff)\b",
    r"\bменеджер\w*", r"\bоператор\w*", r"\bжив\w* (человек\w*|люд\w*)", r"\bс человеком\b",
    r"\bконсультант\w*", r"\bпозов\w* (кого|человек\w*|сотрудник\w*)",
    r"\bпозов\w* (администратор\w*|мастер\w*|владел\w*|хозя\w*)",
    r"\b(talk|speak|chat) (to|with) (the |a |your )?(barber|owner|stylist|florist|boss|manager|admin\w*)\b",
)
CANCEL = _rx(
    r"^(cancel|stop|never ?mind|forget it|abort|exit|quit|отмена|отменить|отмени|отменяю|стоп|не надо|"
    r"передумал\w*|выйти|выход)( (it|that|this|please|checkout|the checkout|пожалуйста|оформление|заказ))?$",
)
SKIP = _rx(r"^(skip|no|nope|none|no thanks|no phone|not now|пропустить|пропусти|пропуск|нет|не надо|"
           r"без телефона|не хочу)( (it|please|thanks|пожалуйста|спасибо))?$")
THANKS = _rx(r"^(ok |okay |great |thanks? |thank you |спасибо |отлично |хорошо )*(thanks|thank you|thx|ty|cheers|"
             r"спасибо|благодарю|спс)( (a lot|so much|very much|большое|огромное|вам))*$")
ACK = _rx(r"^(ok|okay|ок|окей|k|good|great|cool|fine|nice|perfect|got it|i see|alright|all right|sure|yes|yep|no|"
          r"nope|no thanks|not now|хорошо|ладно|понятно|ясно|отлично|супер|класс|да|ага|угу|нет|не сейчас)"
          r"( (ok|okay|thanks|спасибо|хорошо))?$")
GREETING = _rx(
    r"^(hi|hello|hey|hiya|howdy|yo|greetings|good (morning|afternoon|evening|day)|start$|hola|"
    r"привет\w*|здравствуй\w*|здрасте|здравствуйте|добр\w* (день|утро|утра|вечер|вечера|дня)|"
    r"доброго (дня|утра|вечера)|хай|салют)\b( (there|all|everyone|bot|всем|вам))*"
)
HELP = _rx(r"\b(help|what can you do|how does (this|it) work)\b", r"\bпомо(щь|ги|гите)\b", r"\bчто (ты )?умеешь\b")
CART_CLEAR = _rx(
    r"\b(clear|empty|reset|wipe)( (my|the|your))? (cart|basket)\b", r"\b(cart|basket) (clear|empty)\b",
    r"\bstart over\b", r"\bremove (everything|all)\b", r"\bdelete (everything|all)\b",
    r"\bочист\w*", r"\b(удал\w*|убер\w*|убра\w*) вс[её]\b", r"\bначать заново\b",
)
NEW_LINK = _rx(
    r"\b(new|another|fresh|resend|send)\b.*\blinks?\b", r"\blinks? (again|expired)\b", r"\bpayment link\b",
    r"^(link|the link|pay|pay now|payment)$", r"^(i want to|i d like to|id like to|let me|can i|i ll|ill) pay( now)?$",
    r"\bнов\w* ссылк\w*", r"\bссылк\w* (на оплату|еще|снова|заново)", r"\bеще (одну )?ссылк\w*",
    r"\bпришли\w* ссылк\w*", r"^(ссылка|ссылку|оплатить|оплата|хочу оплатить|оплачу)$",
)
ORDER_STATUS = _rx(
    r"\border status\b", r"\bstatus\b", r"\bwhere is my order\b", r"\bdid you (get|receive)\b",
    r"\b(payment|it|money) (go through|went through|gone through|received|arrived|come through|came through)\b",
    r"\bi (have |ve )?(already )?paid\b", r"\bive paid\b", r"\bhave you (got|received)\b",
    r"\bis (my )?order paid\b",
    r"\bстатус\w*", r"\bгде (мой )?заказ\b", r"\b(я )?(уже )?оплатил\w*", r"\bоплата (прошла|дошла|пришла)\b",
    r"\bпол?учили (оплату|деньги|платеж)\b", r"\bзаказ оплачен\b",
)
CART_REMOVE = _rx(
    r"\b(remove|delete|take out|take off|drop|get rid of|dont want|do not want|no longer want)\b",
    r"^(no|without) (the |that |this |my )?(\w.* )?(after all|anymore|any more)$", r"^without (the |that |my )?\w",
    r"\bубер\w*", r"\bубра\w*", r"\bудал\w*", r"\bвыкин\w*", r"\bне (надо|нужн\w*|хочу)\b",
)
CART_SET = _rx(
    r"\b(change|make it|make that|make them|set|update|adjust|instead of|only want|i want only)\b",
    r"\bизмен\w*", r"\bпомен\w*", r"\bсдела\w*", r"\bисправ\w*", r"\bпусть будет\b", r"\bвместо\b",
    r"\bколичеств\w*", r"^(no |nah |actually )*(better |rather )?\d+ (instead|then)\b",
    r"^(нет |не |ну )?((лучше|давайте|давай|пусть|тогда|уж|можно) )+\d+( штук\w*| шт)?$",
    # "actually 5 mugs instead", "нет, пионов лучше 5", "лучше 5 пионов", "пусть пионов будет 5": only the
    # marker words match (``is_bare`` takes matches out: the item's name must stay)
    r"^(no |nah |actually |oh |sorry )*(better |rather )?(?=\d+ \w+( \w+)? instead$)",
    r"\bлучше(?= \d+( \w+)?$)", r"^(нет |ну |а )?пусть(?=( \w+)? будет \d+( \w+)?$)",
)
# "just one", "actually, only 2 please": with nothing named, the quantity of the line talked about (the
# whole message: "just one french press" names an item and adds it).
JUST_N = re.compile(r"(no |nah |actually |oh |sorry )*(just|only) (one|\d+|a single one)"
                    r"( then| instead| please| thanks)*")
# A placed order changed or cancelled ("can I change the address to 7 Elm St?", "cancel my order",
# "отмените заказ", "поменяйте адрес доставки"): a manager's job (the rules never edit an order; the
# alert carries the customer's words). The address words alone are never a cart edit ("to 7 Elm St").
ADDRESS_CHANGE = _rx(
    r"\b(change|update|modify|edit|correct|fix)\b(\s+\w+){0,3}\s+(address|delivery|shipping)\b",
    r"\bwrong (delivery |shipping )?address\b", r"\bdeliver (it |them )?(to )?(a |another |a different )address\b",
    r"\b(измен|помен|исправ|смен)\w*(\s+\w+){0,2}\s+адрес\w*", r"\bне тот адрес\b", r"\bдругой адрес\b",
)
ORDER_CHANGE = _rx(
    r"\bcancel\b(\s+\w+){0,2}\s+(order|purchase)\b", r"\b(change|modify|edit)\b(\s+\w+){0,2}\s+order\b",
    r"\bdon ?t want (it|the order|my order|them) any ?more\b",
    r"\bотмен\w*(\s+\w+){0,2}\s+заказ\w*", r"\bзаказ\w*(\s+\w+){0,2}\s+отмен\w*",
    r"\b(измен|помен|исправ)\w*(\s+\w+){0,2}\s+заказ\w*",
)
# "swap it for the red one", "replace the mug with a teapot", "поменяй розу на тюльпан": one line for another.
SWAP = re.compile(r"^(?:(?:hm+|ok|okay|actually|so|well|oh|no|ну|а|хм+|тогда|нет)\s+)*(?:please |можно )?"
                  r"(?:swap|switch|exchange|replace|trade|поменяй\w*|замени\w*|смени\w*)\s+"
                  r"(?:(?P<old>.+?)\s+)?(?:for|with|to|на)\s+(?P<new>.+)$")
# "лучше белые вместо красных", "the green ones instead of the blue": the same swap, the new one first.
INSTEAD = re.compile(r"^(?:(?:hm+|ok|okay|actually|so|well|oh|no|ну|а|хм+|тогда|нет|лучше|давайте|давай|можно|better"
                     r"|rather|please|make it|i d rather have|id rather have|i ll have|ill have|i want)\s+)*"
                     r"(?P<new>.+?)\s+(?:вместо|instead of)\s+(?P<old>.+)$")
ADD_STRONG = _rx(
    r"\b(add|put|include|throw in)\b", r"\b(i ?ll|i will|i d|id|lets|i) take\b",
    r"\btake (it|them|this|that|these|those|the|one|\d+)\b", r"\b(to|into) (my |the )?(cart|basket)\b",
    r"\bдобав\w*", r"\bполож\w*", r"\bв корзину\b", r"\bвозьм\w*", r"\bбер(у|ем)\b",
)
ADD_WEAK = _rx(
    r"\b(want|wanna|would like|id like|i d like|buy|purchase|order|get me|give me|grab|need|ill have|"
    r"i ll have|i will have|(can|could|may) (i|we) (get|have|order|grab))\b",
    r"\bхоч\w*", r"\bхотел\w*", r"\bкуп\w*", r"\bзаказ(ать|ываю)\b", r"\bзакаж\w*", r"\bнуж(ен|на|но|ны)\b",
    r"\bдай(те)?\b", r"\bдавай(те)?\b", r"\bмне\b",
)
# A message that asks rather than orders, even without a question mark.
ASKING = _rx(r"^(what|which|who|whose|why|where|when|how|is|are|do|does|did|can|could|will|would|should|have|has"
              r"|tell|show|any|got any|about|info|details)\b", r"\b(about|vs|versus|or|compare)\b",
              r"^(а )?(что|какой|какая|какие|какое|каких|кто|почему|где|когда|как|сколько|почем|почём|есть|ли"
              r"|расскаж\w*|покаж\w*|подскаж\w*|про|о|об|или)\b", r"\b(ли|или|про)\b")
ADD_MORE = _rx(r"\b(another|one more|same again|\d+ more|more of (it|them|that|those))\b",
               r"\bеще\b( (одн\w*|один|\d+|штук\w*|раз))?", r"\bтакую же\b", r"\bтакой же\b")
CHECKOUT_STRONG = _rx(
    r"\b(checkout|check out|place (the |my |an |a )?order|complete (the |my )?order|proceed( to (checkout|payment))?"
    r"|confirm (the |my )?order|pay for (it|this|that|them|the order|my order)|ready to (order|pay)|thats all"
    r"|that is all|thats it|finish (my )?order)\b",
    r"\bоформ\w*", r"\bзаверш\w* (заказ|покупк)\w*", r"\bэто вс[её]\b", r"\bк оплате\b",
)
CHECKOUT_WEAK = _rx(r"^(buy|order|buy now|order now|i want to (buy|order)|pay|купить|заказать|закажу|куплю|"
                    r"хочу (заказать|купить)|хочу оплатить|оплатить)$")
# The customer's own cart, also where an item is called a basket ("покажи мою корзину" at a florist
# selling the basket «Праздник»).
MY_CART = _rx(r"\bmy (shopping )?(cart|basket|bag)\b", r"\b(мою|моя|моей|моё|мое) корзин\w*", r"\bу меня в корзин\w*")
CART_SHOW = _rx(r"\b(cart|basket|bag)\b", r"\bwhat did i (add|order|choose)\b", r"\bкорзин\w*",
                r"\bчто (я )?(заказал|выбрал|добавил)\w*",
                r"\bhow much (is it |is that |does it come to |do i owe )?(all )?(together|altogether|in total)\b",
                r"\b(what s|whats|what is) (my|the) total\b",
                r"\bhow much (is|for|does) (it )?(everything|all of (it|this|them)|all that)( come to| cost)?\b",
                r"\bсколько (это |будет |с меня )?(всего|вместе|итого)\b",
                r"\bкакая (итоговая )?сумма\b")
# "the second", "the last one", "вторую": an option offered last, by its position.
ORDINAL = re.compile(
    r"^(?:(?:i ll take|ill take|i ll have|ill have|give me|add|the|давайте|дайте|возьму|беру)\s+)*"
    r"(?:the\s+)?(first|second|third|fourth|fifth|last|1st|2nd|3rd|4th|5th|"
    r"перв\w+|втор\w+|трет\w+|четв[её]рт\w+|пят\w+|последн\w+)(?:\s+(?:one|option|one please|please|пожалуйста))?$")
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5,
             "5th": 5, "перв": 1, "втор": 2, "трет": 3, "четв": 4, "пят": 5}
# "the cheaper one", "подешевле": the cheapest of the items offered last.
CHEAPEST = _rx(r"^(the )?(cheaper|cheapest|less expensive|least expensive)( one| option)?( please)?$",
               r"^(что[- ]?нибудь |какой[- ]?нибудь |какую[- ]?нибудь )?"
               r"(подешевле|дешевле|самый дешевый|самую дешевую)$")
CATALOG = _rx(
    r"\b(catalog|catalogue|menu|assortment|range|products|all items|price list|pricelist|services|treatments)\b",
    r"\bwhat (else )?(do|can) (you|i) (have|sell|offer|buy|get|book)\b", r"\bwhat have you got\b",
    r"\bwhat (\w+ ){1,3}do you (have|sell|offer|carry)\b", r"\bwhat do you got\b",
    r"\bshow (me )?(everything|all|the products|your products|what you have)\b", r"\bbrowse\b",
    r"\bкаталог\w*", r"\bассортимент\w*", r"\bменю\b", r"\bпрайс\w*", r"\bуслуг[иа]\b",
    r"\bчто (у вас |вообще )?(есть|бывает|имеется|продает\w*|продаете)\b", r"\bчто (можно )?(купить|заказать)\b",
    r"\bпокаж\w* (вс[её]|товары)\b", r"\bчем торгуете\b",
)
PRICE = _rx(r"\bhow much\b", r"\bprices?\b", r"\bpriced\b", r"\bcosts?\b", r"\bpricing\b", r"\bcheap\w*\b",
            r"\bсколько (сто\w*|будет|за)\b", r"\bсколько (он|она|оно|они|это) сто\w*", r"\bстои\w* сколько\b",
            r"\bцен\w*", r"\bпочем\b", r"\bпо чем\b", r"\bстоимост\w*",
            r"\bпочему так дорого\b")
VARIANTS = _rx(
    r"\b(sizes?|colou?rs?|variants?|options?|versions?|flavou?rs?|kinds?|types?|models?|which ones)\b",
    r"\bcome in\b", r"\bкаки\w* (у вас )?(есть|бывают)\b", r"\bразмер\w*", r"\bцвет\w*", r"\bвариант\w*",
    r"\bсорт\w*", r"\bоттен\w*", r"\bкакого цвета\b",
)
STOCK = _rx(
    r"\b(in stock|available|availability|have any|do you have|do you sell|do you carry|sold out|left|got any|"
    r"have you got|out of stock|still have)\b",
    r"\bесть ли\b", r"\bли есть\b", r"\bв наличии\b", r"\bналичи\w*", r"\bостал\w*", r"\bимее\w*", r"\bесть\b",
    r"\bзакончил\w*", r"\bбывает\b", r"\bбывают\b",
)
# What a service or a set includes ("what's included in the combo", "что входит в педикюр"): a question,
# so its "include" is not the add command.
INCLUDED = _rx(r"\b(whats|what is|what s) included\b", r"\bincluded in\b", r"\bwhat does (\w+ ){1,3}include\b",
               r"\bчто (входит|включ\w*)\b", r"\bвходит ли\b")
DESCRIPTION = _rx(
    r"\b(tell me( more)? about|describe|description|details|detail|info|information|what is|whats|what are|"
    r"more about|tell me more|made of|material|fabric|look like|more info)\b",
    r"\bрасскаж\w*", r"\bописан\w*", r"\bподробн\w*", r"\bчто (это|такое)\b", r"\bинформац\w*", r"\bиз чего\b",
    r"\bсостав\b", r"\bкак выгляд\w*",
    r"(?:" + INCLUDED.pattern + r")",
)
PREPAY = _rx(
    r"\bprepa(y|id|yment|ying)\w*", r"\bpay (in advance|upfront|up front|ahead|beforehand)\b", r"\bdeposit\b",
    r"\badvance payment\b", r"\bпредоплат\w*", r"\bаванс\w*", r"\bзалог\w*", r"\bзаранее\b.*\bоплат\w*",
    r"\bоплат\w*\b.*\bзаранее\b",
)
DURATION = _rx(
    r"\bhow long\b.*\b(take|takes|last|lasts)\b", r"\bhow long (is|does|will)\b(?!.*\b(ship|deliver|arrive|get)\w*)",
    r"\bduration\b", r"\bhow many (minutes|hours)\b",
    r"\bсколько (времени|длится|идет|по времени|минут|часов)\b", r"\bдлительн\w*", r"\bпродолжительн\w*",
    r"\bкак долго\b",
)
_ASPECTS = ((Aspect.PREPAY, PREPAY), (Aspect.DURATION, DURATION), (Aspect.PRICE, PRICE), (Aspect.VARIANTS, VARIANTS),
            (Aspect.STOCK, STOCK), (Aspect.DESCRIPTION, DESCRIPTION))

# --- bookings (companies with services) and delivery windows -----------------------------------------

_EN_MONTHS = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)\w*"
_RU_MONTHS = r"(январ|феврал|март|апрел|ма[йя]|июн|июл|август|сентябр|октябр|ноябр|декабр)\w*"
WHEN = _rx(
    r"\b(today|tonight|tomorrow|tmrw|monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend|"
    r"next week|this week|mornings?|afternoons?|evenings?|noon|lunchtime)\b",
    r"\b(mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun) \d", rf"\b\d{{1,2}} {_EN_MONTHS}\b",
    rf"\b{_EN_MONTHS} \d{{1,2}}\b", r"\b(at|after|from|before|around|by|since) \d{1,2}\b", r"\b\d{1,2} ?(am|pm)\b",
    r"\bin \d+ days?\b",
    r"\b(сегодня|завтра|послезавтра|понедельник\w*|вторник\w*|сред[аыу]|четверг\w*|пятниц\w*|суббот\w*|"
    r"воскресень\w*|выходн\w*|утром|утро|днем|вечером|вечерком|после обеда)\b",
    r"\b(пн|вт|ср|чт|пт|сб|вс) \d", rf"\b\d{{1,2}} {_RU_MONTHS}", r"\b(после|в|с|со|к|около|до) \d{1,2}\b",
    r"\bна (этой|следующей) неделе\b", r"\bчерез \d+ (дн|день)",
)
_CLOCK = re.compile(r"(?<![\d:.])(\d{1,2})[:.](\d{2})(?![\d:])|(?<!\d)(\d{1,2})\s*([ap])\.?\s?m\b", re.IGNORECASE)
BOOK = _rx(
    r"\b(book|booking|appointment|appointments|appt|reserve|reservation|schedule me|sign me up)\b",
    r"\b(free|available|open|any) (slots?|times?|spots?|dates?)\b", r"\bwhen can i come\b",
    r"\bзапиш\w*", r"\bзапис(ать|аться|ываться|ывать)\b", r"\bзапись\b", r"\bзабронир\w*",
    r"\bсвободн\w* (время|окн\w*|слот\w*|мест\w*|дн\w*)", r"\bокошк\w*", r"\bкогда можно (прийти|подойти)\b",
)
BOOKING_STATUS = _rx(
    r"\b(my|our) (booking|bookings|appointment|appointments|reservation|reservations|visit)\b",
    r"\bwhen (is|s) my\b", r"\bam i booked\b", r"\bbooking status\b", r"\bdo i have (a |an )?(booking|appointment)\b",
    r"\b(моя|мою|мои|моей|мой|моих) (запис\w*|брон\w*|визит\w*)", r"\bна когда (я )?записан\w*",
    r"\bкогда (у меня )?(моя )?запис\w*", r"\bя записан\w*", r"\bстатус запис\w*",
)
BOOKING_CANCEL = _rx(
    r"\b(cancel|call off)\b.*\b(booking|appointment|reservation|visit)\b",
    r"\b(cant|can ?not|wont be able to) (make it|come)\b",
    r"\bотмен\w*.*\b(запис\w*|брон\w*|визит\w*)", r"\b(запис\w*|брон\w*)\b.*\bотмен\w*",
    r"\bне смогу (прийти|подойти)\b", r"\bне приду\b",
)
BOOKING_MOVE = _rx(
    r"\b(move|reschedule|postpone|rebook|change|shift)\b.*\b(booking|appointment|reservation|visit)\b",
    r"\breschedul\w*", r"\bmove (it|my)\b", r"\b(push|bring|move) (it|my \w+|the \w+)? ?(back |forward )?to\b",
    r"\bперенес\w*", r"\bперенест\w*", r"\bперезапис\w*", r"\b(поменя|измени)\w* (время|день|дату) запис\w*",
    r"\b(поменя|измени)\w* запис\w*",
)
YES = _rx(r"^(yes|yep|yeah|y|sure|ok|okay|confirm|please do|do it|go ahead|да|ага|конечно|подтверждаю|хорошо|ок|"
          r"давайте)\b", r"^(cancel|отмен\w*)( (it|my booking|the booking|запись|мою запись))?( please| пожалуйста)?$")
# What "ok …" / "yes …" still asks for when said after it: a command, not an acknowledgement.
_COMMANDS_AFTER_YES = frozenset({Intent.CHECKOUT, Intent.CATALOG, Intent.CART_SHOW, Intent.CART_CLEAR,
                                 Intent.ORDER_STATUS, Intent.NEW_LINK, Intent.HELP, Intent.HANDOFF})
NO = _rx(r"^(no|nope|nah|dont|do not|keep|leave it|never ?mind|нет|не надо|не отменя\w*|не нужно|оставить|оставьте|"
         r"оставь)\b")
KEEP = _rx(r"(no|nope|nah|keep( it| my booking| the booking)?|leave it|нет|оставить|оставьте|оставь|не отменя\w*|"
           r"не нужно)( (please|thanks|пожалуйста|спасибо))?")
DELIVERY_STATUS = _rx(
    r"\bwhen (will|would|does|do|is|can)\b.*\b(arrive|arriving|arrives|come|coming|delivered|deliver|delivering|"
    r"get here|be here|shipped)\b",
    r"\b(my|the) delivery (time|window|slot|date)\b", r"\bdelivery (window|slot)s?\b",
    r"\bwhere is my (parcel|package|delivery)\b", r"\bwhen (is|s) (my|the) delivery\b",
    r"\bкогда\b.*\b(достав\w*|привез\w*|придет|получ\w*|отправ\w*)", r"\b(окно|интервал|день|дата) доставки\b",
    r"\bмоя доставка\b",
)
# Words of booking requests that are not service names (removed before the item search).
_BOOKING_WORDS = frozenset(
    """
    book booking appointment appt reserve reservation schedule slot slots time times free available today tonight
    tomorrow morning afternoon evening mornings afternoons evenings after before around at from pm am next week
    weekend monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun
    jan feb mar apr jun jul aug sep sept oct nov dec january february march april june july august september
    october november december with like id want would
    запишите запиши записаться записать запись записи записывайте забронировать забронируйте время окно окошко
    свободное свободные сегодня завтра послезавтра утром утро днем вечером после обеда понедельник вторник среду
    среда четверг пятницу пятница субботу суббота воскресенье пн вт ср чт пт сб вс можно хочу хотел хотела бы
    января февраля марта апреля мая июня июля августа сентября октября ноября декабря около до к
    следующей следующую следующие следующих будущей будущие будущих неделе неделю выходные выходных этой эти этих
    fortnight
    """.split()
)
QUANTITY_FIRST = re.compile(
    r"^(\d{1,3}|x ?\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a pair|a couple|a dozen|"
    r"один|одн\w+|два|две|три|четыре|пять|шесть|семь|восемь|девять|десять|пар[уа]|дюжин\w)\b"
)
# Command words the engine understands but the item search does not know to ignore.
_COMMAND_WORDS = frozenset(
    """
    remove delete drop change make set update adjust clear empty status link links describe description details
    detail info information sold instead quantity amount qty it them that those these come comes
    убери уберите убрать удали удалите удалить измени измените изменить поменяй поменяйте поменять
    количество кол во очисти очистить расскажи расскажите рассказать подробнее описание статус ссылка ссылку
    сделай сделайте пусть будет вместо выкинь наличие наличии остались осталось бывают бывает какие какой
    какая какого такую такой же ли
    """.split()
)
_FILLER = re.compile(r"^(please|pls|and|so|well|ну|а|и|пожалуйста)\b\s*")


def _strip_fillers(norm: str) -> str:
    previous = None
    while previous != norm:
        previous, norm = norm, _FILLER.sub("", norm).strip()
    return norm


_STOP_WORDS = frozenset(
    """
    a an the is are am be it its this that these those them they one ones i me my we you your yours do does did
    can could would will shall please pls to in into of for on at with and or so what which how any some there
    here have has got get yes ok okay sure also too just now then thanks well hmm
    а и в во на с со к у о об по за из для это этот эта эту этого его ее их они он она мне мы вы вас вам я ли же
    бы ну да ок окей давай давайте пожалуйста тоже еще там тут есть какой какая какие какую сколько штук штуки
    шт тогда что sorry say said tell told again remind actually oh wait no nah instead rather better лучше нет
    хотя ой other others different else другие другой других
    """.split()
)
_ALL_PATTERNS = (ADD_STRONG, ADD_WEAK, ADD_MORE, CART_SET, CART_REMOVE, CART_SHOW, PRICE, VARIANTS, STOCK,
                 DESCRIPTION, CHECKOUT_STRONG, CATALOG, DURATION)


def is_bare(norm: str) -> bool:
    """Whether a normalised message names nothing besides commands, pronouns and quantities
    ("how much is it?", "add to cart", "беру") — it then refers to the item talked about last."""
    for rx in _ALL_PATTERNS:
        norm = rx.sub(" ", norm)
    return all(w in _STOP_WORDS or parse_quantity(w) is not None for w in norm.split())


# Where the customer puts an item or takes it from ("to my cart", "в корзину"): never part of its name,
# also where an item is called a basket (a florist's «Праздник» basket is not "добавь в корзину 3 розы").
_CART_PLACE = re.compile(r"\b(?:to|into|in|from|out of) (?:my |the |your )?(?:shopping )?(?:cart|basket|bag)\b"
                         r"|(?<!\w)(?:в|из|с|со) (?:мою |моей |мой )?корзин\w*", re.IGNORECASE)


# The occasion of a purchase ("for her birthday", "на день рождения"): never part of an item's name, and
# its words would outweigh the item's in the search ("хочу букет для мамы на день рождения" found nothing).
OCCASION = re.compile(
    r"\bfor (?:a |an |her |his |my |our |your |the |their )?(?:[a-z]+(?:'s|s') )?(?:birthday|bday|anniversary"
    r"|wedding anniversary"
    r"|valentine'?s(?: day)?|mother'?s day|mothers day|father'?s day|fathers day|christmas|xmas|new year"
    r"|graduation|housewarming)\b"
    r"|(?<!\w)(?:на|к|ко) (?:день рождения|др|юбилей|годовщину|8 марта|восьмое марта|день матери|новый год"
    r"|выпускной|день святого валентина|день влюбленных|день влюблённых|14 февраля)(?!\w)", re.IGNORECASE)


def command_free(text: str) -> str:
    """``text`` normalised, without the engine's command words, the cart as a place and the occasion
    ("remove the shirt from my cart" → "the shirt"; "букет на день рождения" → "букет")."""
    return " ".join(w for w in tokenize(OCCASION.sub(" ", _CART_PLACE.sub(" ", text))) if w not in _COMMAND_WORDS)


def is_ambiguous(hits: list[ItemHit] | tuple[ItemHit, ...]) -> bool:
    """Whether the best two hits are too close to tell apart ("shirt" with three shirts)."""
    if len(hits) < 2:
        return False
    top, second = hits[0], hits[1]
    return second.score >= AMBIGUITY_RATIO * top.score and len(second.matched_terms) >= len(top.matched_terms)


def close_hits(hits: list[ItemHit] | tuple[ItemHit, ...]) -> tuple[ItemHit, ...]:
    """The hits as close to the best one as the second is (the choices to offer)."""
    if not hits:
        return ()
    top = hits[0]
    return tuple(h for h in hits if h.score >= AMBIGUITY_RATIO * top.score
                 and len(h.matched_terms) >= len(top.matched_terms))


def _without_booking_words(text: str) -> str:
    """``text`` without the words of a booking request and without numbers ("Women's haircut
    tomorrow after 15:00" → "womens haircut")."""
    return " ".join(w for w in tokenize(text) if w not in _BOOKING_WORDS and not w.isdigit())


def search_items(index: KnowledgeIndex, text: str, *, limit: int = 5) -> list[ItemHit]:
    """Items named in ``text``: searched without command words first, then with the whole text."""
    query = command_free(text)
    hits = index.search_items(query, limit=limit) if query else []
    if not hits and query != normalize(text):
        hits = index.search_items(text, limit=limit)
    return hits


_ONE_PRONOUN = re.compile(r"\b((?:the|this|that)\s+\w+)\s+ones?\b", re.IGNORECASE)


def quantity_in(text: str, *, item_name: str | None = None) -> int | None:
    """The explicit quantity of ``text``, ignoring numbers that are part of ``item_name``
    ("add 2 Bouquet of 15 roses" → 2; "Bouquet of 15 roses, please" → None) and the pronoun in
    "the white one"."""
    text = _ONE_PRONOUN.sub(r"\1", OCCASION.sub(" ", text))  # "розы на 8 марта" are not 8 roses
    if item_name:
        for word in tokenize(item_name):
            if word.isdigit() or parse_quantity(word) is not None:
                text = _last_removed(text, word)
    return parse_quantity(text)


def _last_removed(text: str, word: str) -> str:
    """``text`` without the last occurrence of ``word`` (a name comes after its quantity:
    "add 2 Bouquet 51 roses")."""
    matches = list(re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags=re.IGNORECASE))
    if not matches:
        return text
    last = matches[-1]
    return f"{text[:last.start()]} {text[last.end():]}"


def _faq_for(index: KnowledgeIndex, text: str, hits: list[ItemHit]) -> FaqHit | None:
    """The FAQ entry answering ``text`` when it answers it better than an item does: with no item
    found, any FAQ hit; with an item, only when the words that are not the item still find the
    FAQ entry ("do you deliver shirts" → delivery)."""
    faq = [hit for hit in index.search_faq(text) if _supports(index, text, hit)]
    if not faq:
        return None
    if not hits:
        return faq[0]
    # The words that name an item ("букет" names every bouquet, "тюльпанов" the tulip), of any item found,
    # not only of the closest: the FAQ entry must be found by the other words, and be the entry those
    # words find ("букет тюльпанов" is not "how long do tulips last", whose answer only says "tulips").
    item_words = {w for h in close_hits(hits) for w in h.matched_terms} | {w for h in hits for w in _name_words(h)}
    rest = " ".join(w for w in tokenize(text) if w not in item_words)
    if not rest:
        return None
    by_rest = {h.faq_id for h in index.search_faq(rest) if _supports(index, rest, h)}
    chosen = next((h for h in faq if h.faq_id in by_rest), None)
    if chosen is None:
        return None
    return None if _about_other_item(index, chosen, hits) else chosen


def _about_other_item(index: KnowledgeIndex, faq: FaqHit, hits: list[ItemHit]) -> bool:
    """Whether the FAQ entry's question names an item other than those the message names ("Are your
    mugs dishwasher safe?" does not answer "is the copper saucepan safe for induction?")."""
    named = {h.item_id for h in index.search_items(faq.question, limit=3) if _names_item(h)}
    return bool(named) and not named & {h.item_id for h in close_hits(hits)}


def _supports(index: KnowledgeIndex, text: str, hit: FaqHit) -> bool:
    """Whether some word of ``text`` really leads to the FAQ entry: it occurs in it (exactly or with a
    one-letter typo), or it finds the entry on its own without looking like a misspelt word of it (a
    synonym: "deliver" → shipping). An entry found only through a far-fetched typo correction
    ("unicorns" → "unworn") is ignored."""
    from rapidfuzz import fuzz

    words = {stem(w) for w in tokenize(f"{hit.question} {hit.answer}") if len(w) >= 3}
    for word in tokenize(text):
        if len(word) < 3 or word in _STOP_WORDS:
            continue
        s = stem(word)
        similarity = max((fuzz.ratio(s, w) for w in words), default=0.0)
        if s in words or similarity >= 85:
            return True
        if similarity < 60 and any(h.faq_id == hit.faq_id for h in index.search_faq(word)):
            return True
    return False


@dataclass(slots=True)
class _Items:
    hits: list[ItemHit]
    item_id: uuid.UUID | None
    variant_id: uuid.UUID | None
    options: tuple[ItemHit, ...]

    @property
    def found(self) -> bool:
        return self.item_id is not None or bool(self.options)


def _name_words(hit: ItemHit) -> tuple[str, ...]:
    """The message's words that matched ``hit`` by its name (not by its description or variants)."""
    name = {stem(w) for w in tokenize(hit.name)}
    return tuple(w for w in hit.matched_terms if stem(w) in name)


def _names_item(hit: ItemHit) -> bool:
    """Whether the message matched ``hit`` by words of its name (not only by variant or description
    words: "the large" matches every item sold in Large)."""
    name = {stem(w) for w in tokenize(hit.name)}
    return any(stem(w) in name for w in hit.matched_terms)


def _context_item(index: KnowledgeIndex, state: DialogueState) -> uuid.UUID | None:
    """The item the conversation is about: the one waiting for a variant, else the last one."""
    for candidate in (state.waiting_item(), state.last_item_id):
        if candidate is None:
            continue
        try:
            index.item(candidate)
        except KeyError:
            continue
        return candidate
    return None


def _resolve_items(index: KnowledgeIndex, text: str, state: DialogueState, *, said: str | None = None) -> _Items:
    """The item(s) ``text`` names; variants are matched on ``said`` (the whole message, with the
    numbers a booking search leaves out: "29 inch")."""
    hits = search_items(index, text)
    text = said or text
    if state.offered_items():
        allowed = set(state.offered_items())
        among = [h for h in hits if h.item_id in allowed]
        if among:
            hits = among
    context = _context_item(index, state)
    if context is not None:
        variant = index.match_variant(context, text)
        if variant is not None and (not hits or hits[0].item_id == context or not _names_item(hits[0])):
            return _Items(hits=hits, item_id=context, variant_id=variant, options=())
    if not hits:
        return _Items(hits=[], item_id=None, variant_id=None, options=())
    if is_ambiguous(hits):
        return _Items(hits=hits, item_id=None, variant_id=None, options=close_hits(hits))
    # "my nails done": a word of several services' category or descriptions, no service's name — which one?
    alike = [h for h in hits if set(h.matched_terms) == set(hits[0].matched_terms)]
    if len(alike) > 1 and not any(_names_item(h) for h in alike) and _all_services(index, alike):
        return _Items(hits=hits, item_id=None, variant_id=None, options=tuple(alike))
    item_id = hits[0].item_id
    return _Items(hits=hits, item_id=item_id, variant_id=index.match_variant(item_id, text), options=())


def _all_services(index: KnowledgeIndex, hits: list[ItemHit]) -> bool:
    try:
        return all(index.item(h.item_id).kind == "service" for h in hits)
    except KeyError:
        return False


_SERVICES: weakref.WeakKeyDictionary[KnowledgeIndex, bool] = weakref.WeakKeyDictionary()


def has_services(index: KnowledgeIndex) -> bool:
    """Whether the company sells services (items of kind ``"service"``), i.e. takes bookings
    (remembered per index: an index never changes, a new one is built when the knowledge base does)."""
    known = _SERVICES.get(index)
    if known is None:
        known = _SERVICES[index] = index.has_services  # precomputed: no scan of every item
    return known


def speaks_of_time(text: str) -> bool:
    """Whether ``text`` names a day, a part of day or a clock time ("tomorrow", "после 15:00", "Fri 14:30")."""
    return WHEN.search(normalize(text)) is not None or clock_time(text) is not None


def clock_time(text: str) -> str | None:
    """The first clock time written in ``text`` as ``HH:MM`` ("14:30", "2:30 pm", "3pm"), else ``None``."""
    for m in re.finditer(r"(?<![\d:.])(\d{1,2})(?:[:.](\d{2}))?\s*([ap])?\.?\s?(m\b)?", text, re.IGNORECASE):
        hour, minute, ampm = int(m.group(1)), m.group(2), (m.group(3) or "").lower() if m.group(4) else ""
        if minute is None and not ampm:
            continue
        if ampm == "p" and hour < 12:
            hour += 12
        elif ampm == "a" and hour == 12:
            hour = 0
        if hour <= 23 and int(minute or 0) <= 59:
            return f"{hour:02d}:{int(minute or 0):02d}"
    return None


def match_offer(text: str, offers: list[Offer]) -> int | None:
    """The index of the offer ``text`` chooses: its title as typed (a pressed button), or the clock
    time an offer starts at ("14:30", "at 2:30 pm"), preferring the offer whose words (a staff name)
    the text repeats. ``None`` when it chooses none."""
    norm = normalize(text)
    if not norm:
        return None
    for i, offer in enumerate(offers):
        if normalize(offer.title) == norm:
            return i
    wanted = clock_time(text)
    if wanted is None and re.fullmatch(r"(?:at |в |на )?(\d{1,2})(?: ?(?:o'?clock|h|ч|часов|часа|час))?", norm):
        # a bare hour ("11", "at 3", "в 11"): the offer starting then (1–7 are afternoon hours, as in
        # ``commerce.when``); a bare number that can number an offer is that offer
        hour = int(re.sub(r"\D", "", norm))
        if norm.isdigit() and 1 <= hour <= len(offers):
            return None  # "2" is the second of a numbered list (``_picked``)
        starts = [clock_time(o.title) for o in offers]
        for h in (hour, hour + 12) if 1 <= hour <= 7 else (hour,):
            if f"{h:02d}:00" in starts:
                return starts.index(f"{h:02d}:00")
        return None
    if wanted is None:
        return None
    words = set(tokenize(text))
    found = [(len(words & set(tokenize(o.title))), -i, i) for i, o in enumerate(offers)
             if clock_time(o.title) == wanted]
    return max(found)[2] if found else None


def _picked(norm: str, index: KnowledgeIndex, state: DialogueState, offered: int) -> int | None:
    """The 0-based position of the option offered last that ``norm`` picks by its place ("the second",
    "последний") or as the cheapest ("the cheaper one"); ``None`` when it picks none."""
    items = state.offered_items()
    count = offered or len(items)
    if not count:
        return None
    match = ORDINAL.match(norm)
    if match:
        word = match.group(1)
        if word == "last" or word.startswith("последн"):
            return count - 1
        n = _ORDINALS.get(word) or next((v for k, v in _ORDINALS.items() if word.startswith(k) and len(k) >= 4), None)
        return n - 1 if n is not None and n <= count else None
    if items and CHEAPEST.search(norm):
        def price(item_id: uuid.UUID) -> int:
            try:
                item = index.item(item_id)
            except KeyError:
                return 1 << 62
            prices = [p for p in (item.price_minor, *(v.price_minor for v in item.variants)) if p is not None]
            return min(prices) if prices else 1 << 62
        return min(range(len(items)), key=lambda i: price(items[i]))
    return None


def not_a_name(text: str) -> bool:
    """Whether an answer to "what name?" is rather a request (a time, a booking command, a question)."""
    norm = normalize(text)
    if text.rstrip().endswith("?") or len(norm.split()) > 6 or speaks_of_time(text):
        return True
    return any(rx.search(norm) for rx in (BOOK, BOOKING_STATUS, BOOKING_CANCEL, BOOKING_MOVE, HELP, CATALOG))


def reads_as_request(text: str) -> bool:
    """Whether ``text`` reads as a question or a request for information (ends with "?", or asks a
    price, a description, availability, the options, the cart, the catalogue or help) rather than as an
    answer (a name, an address, a phone number) to a question the bot asked."""
    norm = normalize(text)
    if text.rstrip().endswith("?"):
        return True
    return any(rx.search(norm) for rx in (PRICE, DESCRIPTION, STOCK, VARIANTS, CART_SHOW, CATALOG, HELP))


# "wait", "hold on, …", "sorry, …", "подождите": the customer stops to say something else, not an answer.
HOLD_ON = _rx(r"^(wait|hold on|hang on|one (sec|second|moment)|just a (sec|second|moment)|sorry|oops|"
              r"подожд\w*|погод\w*|стоп|секунд\w*|минутк\w*|ой|извините)\b")


def not_an_answer(text: str) -> bool:
    """Whether a message the rules did not understand, sent where a name or an address was asked for,
    is still not the answer: a question ("wait, can I change the quantity?") or a pause ("hold on",
    "подождите, …")."""
    return text.rstrip().endswith("?") or HOLD_ON.search(normalize(text)) is not None


def bare_command(text: str) -> bool:
    """Whether ``text`` is a command word with nothing else ("checkout", "add to cart"): not a name,
    address or city when one was asked for."""
    norm = normalize(text)
    return is_bare(norm) and any(rx.search(norm) for rx in _ALL_PATTERNS)


def read(text: str, *, index: KnowledgeIndex, state: DialogueState) -> Understanding:
    """Read one customer message with the rules, in the context of the references kept in ``state``
    (the last item, the item waiting for a variant, the options offered last); the dialogue step is
    not read here (what a step accepts is ``bot.policy``'s job). Nothing is changed."""
    norm = normalize(text)
    if not norm:
        return Understanding(Intent.FALLBACK, text)
    if HANDOFF.search(norm):
        return Understanding(Intent.HANDOFF, text)
    if state.order_id is not None and (ORDER_CHANGE.search(norm) or ADDRESS_CHANGE.search(norm)):
        return Understanding(Intent.HANDOFF, text)  # an order placed is changed by a manager
    if ADDRESS_CHANGE.search(norm):
        return Understanding(Intent.FALLBACK, text)  # no order to change: not "7 Elm St" as seven of an item
    offers = state.offered()
    if offers:
        chosen = match_offer(text, offers)
        if chosen is not None:
            return Understanding(Intent.CHOOSE_OFFER, text, offer=chosen)
    picked = _picked(norm, index, state, len(offers))
    if picked is not None:
        return Understanding(Intent.CHOOSE_OFFER, text, offer=picked)
    if CANCEL.fullmatch(norm):
        return Understanding(Intent.CANCEL, text)
    if SKIP.fullmatch(norm) or KEEP.fullmatch(norm):
        return Understanding(Intent.SKIP, text)
    if THANKS.fullmatch(norm):
        return Understanding(Intent.THANKS, text)
    yes = YES.match(norm)
    if yes and not ACK.fullmatch(norm):  # "ok checkout", "yes show me the cart": the command, not "ok"
        after = norm[yes.end():].strip(" ,.!")
        reading = read(after, index=index, state=state) if after else None
        if reading is not None and reading.intent in _COMMANDS_AFTER_YES:
            return reading
    if ACK.fullmatch(norm) or (yes and len(norm.split()) <= 4 and not BOOKING_CANCEL.search(norm)
                               and not CART_SET.search(norm) and not ADD_STRONG.search(norm[yes.end():])
                               and not _names_something(norm[yes.end():], index, state)):
        return Understanding(Intent.ACK, text)
    greeting = GREETING.match(norm)
    if greeting:
        rest = _strip_fillers(norm[greeting.end():].strip())
        if not rest:
            return Understanding(Intent.GREET, text)
        # "hi, how much is the shirt?" is a question about the shirt; "good morning! busy day?" a greeting
        reading = read(rest, index=index, state=state)
        return reading if reading.intent != Intent.FALLBACK else Understanding(Intent.GREET, text)
    if CART_CLEAR.search(norm):
        return Understanding(Intent.CART_CLEAR, text)
    if has_services(index):
        for rx, intent in ((BOOKING_CANCEL, Intent.BOOKING_CANCEL), (BOOKING_MOVE, Intent.BOOKING_MOVE),
                           (BOOKING_STATUS, Intent.BOOKING_STATUS)):
            if rx.search(norm):
                return Understanding(intent, text)
    if DELIVERY_STATUS.search(norm):
        return Understanding(Intent.DELIVERY_STATUS, text, faq=_faq_for(index, text, []))
    if NEW_LINK.search(norm):
        return Understanding(Intent.NEW_LINK, text)
    if ORDER_STATUS.search(norm):
        return Understanding(Intent.ORDER_STATUS, text)
    return _ItemTurn(text, norm, index=index, state=state).decide()


# "for a guy", "for my husband", "для мужа", "сыну": the person a service is for.
_FOR_WHOM = re.compile(r"\b(?:for|для)\s+(?:(?:a|an|my|the|our|моего|моей|моих|нашего|нашей)\s+)?(\w+)")


def _names_something(rest: str, index: KnowledgeIndex, state: DialogueState) -> bool:
    """Whether the words after a "yes"/"ok" name a product or a variant of the item talked about
    ("ok black then"): then the message is a pick, not an acknowledgement ("давайте женскую" among
    offered services stays the agreement the booking rules read)."""
    rest = command_free(rest)
    if not rest or all(w in _STOP_WORDS for w in rest.split()):
        return False
    context = _context_item(index, state)
    if context is not None and index.match_variant(context, rest) is not None:
        return True
    return any(_names_item(h) and index.item(h.item_id).kind != "service" for h in index.search_items(rest, limit=3))


class _ItemTurn:
    """Deciding among the item-related intents (one instance per message)."""

    def __init__(self, text: str, norm: str, *, index: KnowledgeIndex, state: DialogueState) -> None:
        self.text, self.norm, self.index, self.state = text, norm, index, state
        self.services = has_services(index)
        self.when = self.services and speaks_of_time(text)
        # "a haircut tomorrow at 15:00": the time words are not part of the service's name.
        search = _without_booking_words(text) if self.services else text
        self.items = _resolve_items(index, search or text, state, said=text)
        if self.services and self.items.item_id is None and len(self.items.options) > 1:
            self._narrow_services()
        elif self.services and not self.items.found and self.when:
            self._service_for_audience()
        self.context = _context_item(index, state)
        self.query = command_free(text)
        self.quantity = self._quantity()

    def _narrow_services(self) -> None:
        """Several services match ("a haircut"): keep those for whom the message says ("for my husband"),
        and without such words leave out children's services and combinations; one left is the one."""
        from bot.language.audience import narrow_by_audience

        options = self.items.options
        if not all(self._kind(h.item_id) == "service" for h in options):
            return
        kept = narrow_by_audience(self.text, [(h, h.name) for h in options])
        if len(kept) == 1:
            self.items = _Items(hits=self.items.hits, item_id=kept[0].item_id, variant_id=None, options=())
        elif len(kept) < len(options):
            self.items = _Items(hits=self.items.hits, item_id=None, variant_id=None, options=tuple(kept))

    def _service_for_audience(self) -> None:
        """"A quick trim for a guy, Wednesday evening": no service named, but the one service for the
        person said (the only men's service) is meant."""
        from bot.language.audience import audiences

        said = audiences(" ".join(m.group(1) for m in _FOR_WHOM.finditer(normalize(self.text))))
        if not said:
            return
        services = (self.index.item(item_id) for item_id in self.index.service_ids)
        fitting = [item for item in services if audiences(item.name) & said]
        if len(fitting) == 1:
            self.items = _Items(hits=self.items.hits, item_id=fitting[0].id, variant_id=None, options=())

    def _quantity(self) -> int | None:
        if self.items.item_id is None:
            return quantity_in(self.text)
        item = self.index.item(self.items.item_id)
        variant = item.variant(self.items.variant_id) if self.items.variant_id is not None else None
        # Numbers in the item's or the variant's name ("Bouquet, 51 roses") are not quantities.
        return quantity_in(self.text, item_name=f"{item.name} {variant.name if variant else ''}")

    def _use_context(self) -> None:
        """A bare message ("add it", "how much?") is about the context item."""
        if self.context is None or not is_bare(self.norm):
            return
        # Found only through a description word ("change" ~ "cage"): the item talked about is meant.
        if self.items.found and (self.items.item_id == self.context
                                 or any(_names_item(h) for h in (self.items.options or self.items.hits[:1]))):
            return
        variant = self.index.match_variant(self.context, self.text)
        if variant is None and self.context == self.state.last_item_id:
            variant = self.state.last_variant_id
        self.items = _Items(hits=self.items.hits, item_id=self.context, variant_id=variant, options=())

    def make(self, intent: Intent, aspect: Aspect | None = None, faq: FaqHit | None = None) -> Understanding:
        items = self.items
        return Understanding(intent, self.text, aspect=aspect, quantity=self.quantity, item_id=items.item_id,
                             variant_id=items.variant_id, options=items.options, hits=tuple(items.hits), faq=faq,
                             query=self.query)

    def _kind(self, item_id: uuid.UUID | None) -> str | None:
        if item_id is None:
            return None
        try:
            return self.index.item(item_id).kind
        except KeyError:
            return None

    def _booking(self) -> Understanding | None:
        """A booking request: a booking word; a service named with a time or a wish; a time alone
        while a booking is being arranged or in a company of services only."""
        norm, items = self.norm, self.items
        arranging = self.state.booking is not None
        service = self._kind(items.item_id) == "service" or (
            items.item_id is None and any(self._kind(h.item_id) == "service" for h in items.options))
        product = items.found and not service
        question = any(rx.search(norm) for _, rx in _ASPECTS) or CATALOG.search(norm) is not None
        if BOOK.search(norm) and not product and not (question and not self.when):
            return self.make(Intent.BOOK)
        if service and (self.when or ADD_STRONG.search(INCLUDED.sub(" ", norm)) or (not question and (
                ADD_WEAK.search(norm) or arranging))):
            return self.make(Intent.BOOK)
        if self.when and not items.found:
            if arranging or self.state.booking is not None or self._kind(self.state.last_item_id) == "service":
                return self.make(Intent.BOOK)
            # "are you open on Saturday?" is for the FAQ; "can I come tomorrow morning?" is a booking.
            if self.index.services_only and _faq_for(
                    self.index, self.text, []) is None:
                return self.make(Intent.BOOK)
        return None

    def decide(self) -> Understanding:
        norm, found = self.norm, self.items.found
        if self.services:
            booking = self._booking()
            if booking is not None:
                return booking
        # A command word that is part of the item's name ("Bike Light Set", "Drop Earrings") is the name.
        command = self._without_item_name(norm)
        if CART_REMOVE.search(command):
            self._use_context()
            return self.make(Intent.CART_REMOVE)
        if (CART_SET.search(command) and (self.quantity is not None or found)) or (
                JUST_N.fullmatch(norm) and self.quantity is not None):
            self._use_context()
            return self.make(Intent.CART_SET)
        if ADD_STRONG.search(INCLUDED.sub(" ", norm)):
            if not found and ADD_MORE.search(norm):
                return self.make(Intent.ADD_MORE)
            self._use_context()
            return self.make(Intent.ADD)
        # A command with nothing else in the message wins over item words it happens to contain
        # ("check out" is not the Chequered Red Shirt).
        bare = is_bare(norm)
        if CHECKOUT_STRONG.search(norm) and (not found or bare):
            return self.make(Intent.CHECKOUT)
        if ADD_MORE.search(norm) and not found:
            return self.make(Intent.ADD_MORE)
        if (CART_SHOW.search(norm) and (not found or bare)) or MY_CART.search(norm):
            return self.make(Intent.CART_SHOW)
        catalog = CATALOG.search(norm) is not None
        if catalog and (not found or bare):
            return self.make(Intent.CATALOG)
        # "what colours do you have for the floral top?": the options of the one item named, not a list
        if catalog and found and not (VARIANTS.search(norm) and self.items.item_id is not None):
            return self.make(Intent.INFO, Aspect.LIST)
        # "size medium" names a variant: the customer is not asking which sizes there are.
        aspect = next((a for a, rx in _ASPECTS if rx.search(norm)
                       and not (a == Aspect.VARIANTS and self.items.variant_id is not None)), None)
        if aspect is not None:
            # "how long does the combo take?": with an item named, the words asking for one of its
            # fields ("how long", "take") do not find the FAQ ("How long does shipping take?"); the other
            # words must. Prepayment is the company's rule: its words are the FAQ's topic.
            asked = self.text if not found or aspect == Aspect.PREPAY else dict(_ASPECTS)[aspect].sub(" ", norm)
            faq = _faq_for(self.index, asked, self.items.hits)
            if faq is not None:
                return self.make(Intent.FAQ, faq=faq)
            self._use_context()
            return self.make(Intent.INFO, aspect)
        if found and (ADD_WEAK.search(norm) or (self.quantity is not None and "?" not in self.text
                                                and self._kind(self.items.item_id) != "service")):
            return self.make(Intent.ADD)
        if CHECKOUT_WEAK.fullmatch(norm):
            return self.make(Intent.CHECKOUT)
        if HELP.search(norm) and not found:
            return self.make(Intent.HELP)
        pending = self.state.pending
        if self.state.waiting_item() is not None and self.items.variant_id is not None:
            if self.quantity is None and pending is not None and pending.item_id == self.items.item_id:
                self.quantity = pending.quantity
            return self.make(Intent.ADD)
        if (pending and self.items.item_id is not None and self.items.item_id in self.state.offered_items()):
            return self._finish_pending(pending.action, pending.quantity, pending.aspect)
        faq = _faq_for(self.index, self.text, self.items.hits)
        if faq is not None:
            return self.make(Intent.FAQ, faq=faq)
        if found:
            return self.make(Intent.INFO, Aspect.GENERAL)
        if ADD_WEAK.search(norm):
            self._use_context()
            if self.items.found:
                return self.make(Intent.ADD)
        return self.make(Intent.FALLBACK)

    def _without_item_name(self, norm: str) -> str:
        """``norm`` without the words of the name of the item it names (the whole text otherwise)."""
        if self.items.item_id is None:
            return norm
        try:
            name = set(tokenize(self.index.item(self.items.item_id).name))
        except KeyError:
            return norm
        return " ".join(w for w in norm.split() if w not in name)

    def _finish_pending(self, action: str, quantity: int | None, aspect: str | None) -> Understanding:
        try:
            intent = Intent(action)
        except ValueError:
            intent = Intent.INFO
        if self.quantity is None:
            self.quantity = quantity
        if intent != Intent.INFO:
            return self.make(intent)
        try:
            return self.make(intent, Aspect(aspect or Aspect.GENERAL))
        except ValueError:
            return self.make(intent, Aspect.GENERAL)
