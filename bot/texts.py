"""Every text the dialogue engine sends, in English and Russian, plus the button set.

``t(key, language, **values)`` formats one text; ``button(key, language)`` gives a standard button;
the ``*_payload`` helpers build the phrases that item buttons send back. Payloads are plain phrases the
NLU understands (``bot.nlu``), so a customer on a channel without buttons can type the same words.
"""

from __future__ import annotations

from datetime import date, datetime, time

from bot.messages import Button

LANGUAGES = ("en", "ru")

_TEXTS: dict[str, dict[str, str]] = {
    # -- greeting, help, small talk ---------------------------------------------------------------
    "greeting": {
        "en": "Hello! This is {company}. I can tell you about our products, prices and availability, "
              "put your order together and send you a payment link. What are you looking for?",
        "ru": "Здравствуйте! Это {company}. Я расскажу о товарах, ценах и наличии, соберу заказ и пришлю "
              "ссылку на оплату. Что вас интересует?",
    },
    "help": {
        "en": "I can show the catalogue, tell you prices and availability, add items to your cart and send "
              "a payment link. Try \"catalogue\", \"how much is …\" or \"add 2 …\".",
        "ru": "Я могу показать каталог, подсказать цены и наличие, добавить товары в корзину и прислать "
              "ссылку на оплату. Напишите, например, «каталог», «сколько стоит …» или «добавь 2 …».",
    },
    "thanks": {"en": "You're welcome! Anything else I can help with?", "ru": "Пожалуйста! Чем ещё помочь?"},
    "ok": {"en": "OK.", "ru": "Хорошо."},
    "anything_else": {"en": "Great! Anything else I can help with?", "ru": "Хорошо! Чем ещё помочь?"},
    "cancelled": {"en": "OK, never mind.", "ru": "Хорошо, отменено."},
    "handoff": {
        "en": "I've passed the conversation to a manager. They will answer here shortly.",
        "ru": "Передаю разговор менеджеру — он ответит здесь в ближайшее время.",
    },
    "fallback_suggest": {
        "en": "Sorry, I'm not sure I understood. Did you mean one of these?",
        "ru": "Извините, не совсем понятно, что вы имеете в виду. Возможно, вас интересует:",
    },
    "fallback_plain": {
        "en": "Sorry, I didn't get that. I can show the catalogue, tell you prices and availability, or take "
              "your order.",
        "ru": "Извините, не совсем понятно. Я могу показать каталог, подсказать цены и наличие или оформить "
              "заказ.",
    },
    # -- catalogue and item information -----------------------------------------------------------
    "catalog_header": {"en": "Here is what we have ({count}):", "ru": "Вот что у нас есть ({count}):"},
    "catalog_more": {
        "en": "…and {more} more. Ask me about any item by name.",
        "ru": "…и ещё {more}. Спросите о любом товаре по названию.",
    },
    "catalog_hint": {"en": "Ask me about any item by name.", "ru": "Спросите о любом товаре по названию."},
    "catalog_empty": {
        "en": "Our catalogue is empty for now. A manager can help you: just say \"talk to a human\".",
        "ru": "Каталог пока пуст. Вам поможет менеджер — напишите «позвать менеджера».",
    },
    "found_several": {"en": "Here is what I found:", "ru": "Вот что нашлось:"},
    "not_found": {
        "en": "Sorry, I couldn't find that in our catalogue.",
        "ru": "К сожалению, такого нет в нашем каталоге.",
    },
    "not_found_named": {
        "en": "Sorry, we don't have \"{query}\".",
        "ru": "К сожалению, «{query}» у нас нет.",
    },
    "price_from": {"en": "from {price}", "ru": "от {price}"},
    "price_missing": {"en": "price on request", "ru": "цена по запросу"},
    "sold_out": {"en": "sold out", "ru": "нет в наличии"},
    "in_stock": {"en": "in stock", "ru": "в наличии"},
    "few_left": {"en": "only {count} left", "ru": "осталось {count} шт."},
    "info_price": {"en": "{name} costs {price}.", "ru": "{name} — {price}."},
    "info_price_variants": {"en": "{name} prices:", "ru": "{name} — цены:"},
    "info_variants": {"en": "{name} comes in: {variants}.", "ru": "{name} — варианты: {variants}."},
    "info_variants_header": {"en": "{name} comes in:", "ru": "{name} — варианты:"},
    "info_single": {"en": "{name} comes in one version, {price}.", "ru": "{name} — один вариант, {price}."},
    "info_stock_yes": {"en": "Yes, {name} is available.", "ru": "Да, {name} есть в наличии."},
    "info_stock_low": {
        "en": "Yes, {name} is available — only {count} left.",
        "ru": "Да, {name} в наличии — осталось {count} шт.",
    },
    "info_stock_no": {
        "en": "Sorry, {name} is sold out right now.",
        "ru": "К сожалению, {name} сейчас нет в наличии.",
    },
    "info_stock_variants": {"en": "Availability of {name}:", "ru": "{name} — наличие:"},
    "info_duration": {"en": "Duration: {minutes} min.", "ru": "Длительность: {minutes} мин."},
    "info_category": {"en": "Category: {category}.", "ru": "Категория: {category}."},
    "info_which_item": {
        "en": "Which item do you mean? Tell me its name or pick one from the catalogue.",
        "ru": "О каком товаре речь? Напишите название или выберите в каталоге.",
    },
    # -- cart ---------------------------------------------------------------------------------------
    "ask_which_item": {"en": "Which one do you mean?", "ru": "Какой именно?"},
    "ask_what_to_add": {
        "en": "What would you like to add? Tell me the item's name, e.g. \"add 2 …\".",
        "ru": "Что добавить? Напишите название товара, например: «добавь 2 …».",
    },
    "ask_variant": {
        "en": "Which {option} would you like for {name}? Available: {options}.",
        "ru": "Уточните, пожалуйста, {option} для {qname}: {options}.",
    },
    "ask_variant_sold_out": {
        "en": "Sorry, every option of {name} is sold out right now.",
        "ru": "К сожалению, все варианты {qname} сейчас закончились.",
    },
    "option_generic": {"en": "option", "ru": "вариант"},
    "added": {"en": "Added {line}.", "ru": "Добавлено в корзину: {line}."},
    "cart_total": {"en": "Cart total: {total}.", "ru": "Сумма корзины: {total}."},
    "out_of_stock": {"en": "Sorry, {name} is sold out.", "ru": "К сожалению, {name} нет в наличии."},
    "out_of_stock_some": {
        "en": "Sorry, only {count} × {name} left in stock.",
        "ru": "К сожалению, в наличии осталось только {count} шт. — {name}.",
    },
    "already_in_cart": {
        "en": "You already have {count} in your cart.",
        "ru": "В вашей корзине уже {count} шт.",
    },
    "price_missing_error": {
        "en": "Sorry, {name} has no price yet, so I can't add it. A manager can help you with it.",
        "ru": "К сожалению, у {qname} пока нет цены, поэтому добавить в корзину не получится. С этим поможет "
              "менеджер.",
    },
    "invalid_quantity": {
        "en": "The quantity must be between 1 and {max}.",
        "ru": "Количество должно быть от 1 до {max}.",
    },
    "item_unavailable": {
        "en": "Sorry, that item is no longer available.",
        "ru": "К сожалению, этот товар больше недоступен.",
    },
    "cart_header": {"en": "Your cart:", "ru": "Ваша корзина:"},
    "total": {"en": "Total: {total}", "ru": "Итого: {total}"},
    "cart_empty": {"en": "Your cart is empty.", "ru": "Ваша корзина пуста."},
    "cart_cleared": {"en": "Done, your cart is empty now.", "ru": "Готово, корзина очищена."},
    "cart_removed": {"en": "Removed {name} from your cart.", "ru": "Удалено из корзины: {name}."},
    "cart_not_in_cart": {"en": "{name} isn't in your cart.", "ru": "{qname} нет в вашей корзине."},
    "cart_which_line": {"en": "Which item in your cart?", "ru": "Какую позицию корзины?"},
    "cart_updated": {"en": "Updated: {line}.", "ru": "Изменено: {line}."},
    "ask_new_quantity": {
        "en": "How many would you like? For example: \"change {name} to 2\".",
        "ru": "Сколько нужно? Например: «измени количество {name} на 2».",
    },
    "line_price_missing": {"en": "price on request", "ru": "цена по запросу"},
    # -- checkout -----------------------------------------------------------------------------------
    "checkout_empty": {
        "en": "Your cart is empty, add something first.",
        "ru": "Ваша корзина пуста — сначала добавьте что-нибудь.",
    },
    "checkout_intro": {"en": "Let's place your order.", "ru": "Оформляем заказ."},
    "ask_name": {"en": "What name should we put on the order?", "ru": "На какое имя оформить заказ?"},
    "ask_address": {
        "en": "What is the delivery address (or city)?",
        "ru": "Укажите адрес доставки (или город).",
    },
    "ask_phone": {
        "en": "Your phone number for the courier? It's optional: press \"Skip\" if you'd rather not.",
        "ru": "Ваш номер телефона для курьера? Можно пропустить — нажмите «Пропустить».",
    },
    "bad_name": {"en": "Please type the name for the order.", "ru": "Напишите, пожалуйста, имя для заказа."},
    "bad_address": {
        "en": "Please type the delivery address or city.",
        "ru": "Напишите, пожалуйста, адрес доставки или город.",
    },
    "bad_phone": {
        "en": "That doesn't look like a phone number (7 to 15 digits, e.g. +1 555 123 4567). Send it again or "
              "press \"Skip\".",
        "ru": "Это не похоже на номер телефона (от 7 до 15 цифр, например +7 999 123-45-67). Отправьте ещё раз "
              "или нажмите «Пропустить».",
    },
    "checkout_cancelled": {
        "en": "OK, I've stopped the checkout. Your cart is still here.",
        "ru": "Хорошо, оформление отменено. Товары остались в корзине.",
    },
    "order_summary": {"en": "Order #{number}:", "ru": "Заказ №{number}:"},
    "summary_name": {"en": "Name: {value}", "ru": "Имя: {value}"},
    "summary_address": {"en": "Address: {value}", "ru": "Адрес: {value}"},
    "summary_phone": {"en": "Phone: {value}", "ru": "Телефон: {value}"},
    "pay_link": {
        "en": "To pay {total}, open this link: {url}",
        "ru": "Оплатить {total} можно по ссылке: {url}",
    },
    "payment_unavailable": {
        "en": "Your order #{number} is saved, but online payment isn't available right now. A manager will "
              "contact you to arrange the payment.",
        "ru": "Заказ №{number} сохранён, но онлайн-оплата сейчас недоступна. Менеджер свяжется с вами, чтобы "
              "договориться об оплате.",
    },
    "checkout_out_of_stock": {
        "en": "Sorry, {name} is no longer available in that quantity ({count} left). Please change your cart.",
        "ru": "К сожалению, {name} уже нет в таком количестве (осталось {count} шт.). Измените, пожалуйста, "
              "корзину.",
    },
    # -- orders and payments ------------------------------------------------------------------------
    "order_none": {"en": "You don't have any orders yet.", "ru": "У вас пока нет заказов."},
    "status_paid": {
        "en": "Order #{number} ({total}) is paid. Thank you!",
        "ru": "Заказ №{number} ({total}) оплачен. Спасибо!",
    },
    "status_waiting": {
        "en": "We haven't received the payment for order #{number} ({total}) yet. You can pay here: {url}",
        "ru": "Оплата заказа №{number} ({total}) пока не поступила. Оплатить можно по ссылке: {url}",
    },
    "status_no_link": {
        "en": "Order #{number} ({total}) is waiting for a manager to arrange the payment.",
        "ru": "Заказ №{number} ({total}) ожидает: менеджер свяжется с вами насчёт оплаты.",
    },
    "status_refunded": {
        "en": "The payment for order #{number} ({total}) was refunded.",
        "ru": "Оплата заказа №{number} ({total}) возвращена.",
    },
    "status_cancelled": {"en": "Order #{number} was cancelled.", "ru": "Заказ №{number} отменён."},
    "new_link": {
        "en": "Here is the payment link for order #{number} ({total}): {url}",
        "ru": "Ссылка на оплату заказа №{number} ({total}): {url}",
    },
    "already_paid": {
        "en": "Order #{number} is already paid. Thank you!",
        "ru": "Заказ №{number} уже оплачен. Спасибо!",
    },
    # -- service companies: greeting, help, service facts -----------------------------------------------
    "greeting_service": {
        "en": "Hello! This is {company}. I can tell you about our services and prices and book an appointment "
              "for you. What would you like?",
        "ru": "Здравствуйте! Это {company}. Я расскажу об услугах и ценах и запишу вас на удобное время. Что вас "
              "интересует?",
    },
    "greeting_hybrid": {
        "en": "Hello! This is {company}. I can tell you about our products and services, put your order together, "
              "book an appointment and send you a payment link. What are you looking for?",
        "ru": "Здравствуйте! Это {company}. Я расскажу о товарах и услугах, соберу заказ, запишу вас на удобное "
              "время и пришлю ссылку на оплату. Что вас интересует?",
    },
    "help_service": {
        "en": "I can list our services, tell you prices and durations and book you in. Try \"services\", "
              "\"how much is …\" or \"book … tomorrow afternoon\".",
        "ru": "Я могу показать услуги, подсказать цены и длительность и записать вас. Напишите, например, "
              "«услуги», «сколько стоит …» или «запишите на … завтра после 15:00».",
    },
    "free": {"en": "free", "ru": "бесплатно"},
    "catalog_hint_service": {
        "en": "Ask me about any service, or book one: e.g. \"book a … tomorrow afternoon\".",
        "ru": "Спросите о любой услуге или запишитесь: например, «запишите на … завтра после 15:00».",
    },
    "fallback_service": {
        "en": "Sorry, I didn't get that. I can list our services, tell you prices and book an appointment, e.g. "
              "\"book a … tomorrow afternoon\".",
        "ru": "Извините, не совсем понятно. Я могу показать услуги, подсказать цены и записать вас, например: "
              "«запишите на … завтра после 15:00».",
    },
    "info_duration_named": {"en": "{name} takes {minutes} min.", "ru": "{name} — {minutes} мин."},
    "info_free": {"en": "{name} is free of charge.", "ru": "{name} — бесплатно."},
    "info_prepay_part": {
        "en": "To book {name} ({price}) you prepay {amount}; the rest is paid at the visit.",
        "ru": "Для записи на {qname} ({price}) нужна предоплата {amount}, остальное — на месте.",
    },
    "info_prepay_full": {
        "en": "{name} ({price}) is paid in full when you book.",
        "ru": "{name} ({price}) оплачивается полностью при записи.",
    },
    "info_prepay_none": {
        "en": "{name} needs no prepayment: you pay {price} at the visit.",
        "ru": "Для {qname} предоплата не нужна: {price} — оплата на месте.",
    },
    "service_details": {"en": "{minutes} min, {price}", "ru": "{minutes} мин, {price}"},
    "minutes": {"en": "{minutes} min", "ru": "{minutes} мин"},
    # -- bookings -------------------------------------------------------------------------------------------
    "which_service": {"en": "Which service would you like to book?", "ru": "На какую услугу вас записать?"},
    "no_services": {
        "en": "Sorry, there is nothing to book online yet. A manager can help you.",
        "ru": "К сожалению, онлайн-запись пока недоступна. Вам поможет менеджер.",
    },
    "slots_header": {"en": "Free times for {service} ({details}) on {day}:",
                     "ru": "Свободное время на {qservice} ({details}), {day}:"},
    "slots_hint": {"en": "Pick a time, or tell me another day or time.",
                   "ru": "Выберите время или напишите другой день или время."},
    "slots_none_days": {
        "en": "Sorry, there are no free times for {service} on {day}{part}. The nearest days with free times:",
        "ru": "К сожалению, на {day}{part} нет свободного времени на {qservice}. Ближайшие свободные дни:",
    },
    "slots_none": {
        "en": "Sorry, there are no free times for {service} in the next two weeks. A manager can help you find one.",
        "ru": "К сожалению, в ближайшие две недели нет свободного времени на {qservice}. Подобрать время поможет "
              "менеджер.",
    },
    "slot_taken": {"en": "Sorry, {when} has just been taken.", "ru": "К сожалению, время {when} только что заняли."},
    "slot_held": {"en": "{service}, {when}{resource}: I'm holding this time for you until {until}.",
                  "ru": "{service}, {when}{resource}: держу это время за вами до {until}."},
    "slot_reserved": {"en": "{service}, {when}{resource}.", "ru": "{service}, {when}{resource}."},
    "ask_booking_name": {
        "en": "What name should I book it under? You can add a phone number too (optional).",
        "ru": "На какое имя записать? Можно добавить и телефон (по желанию).",
    },
    "bad_booking_name": {"en": "Please type the name for the booking.", "ru": "Напишите, пожалуйста, имя для записи."},
    "booking_prepay": {
        "en": "To confirm the booking, please pay the prepayment of {amount}: {url}",
        "ru": "Чтобы подтвердить запись, внесите предоплату {amount}: {url}",
    },
    "booking_held_until": {
        "en": "The time is held for you until {until}; the booking is confirmed once the prepayment arrives.",
        "ru": "Время закреплено за вами до {until}; запись подтвердится, как только поступит предоплата.",
    },
    "booking_confirmed": {"en": "You're booked: {service}, {when}{resource}. See you then!",
                          "ru": "Вы записаны: {service}, {when}{resource}. Ждём вас!"},
    "booking_pay_on_site": {"en": "You pay {price} at the visit.", "ru": "Оплата {price} — на месте."},
    "booking_payment_unavailable": {
        "en": "Online payment isn't available right now, so a manager will contact you about the prepayment. The "
              "time is held until {until}.",
        "ru": "Онлайн-оплата сейчас недоступна, менеджер свяжется с вами насчёт предоплаты. Время закреплено до "
              "{until}.",
    },
    "booking_price_missing": {
        "en": "Sorry, {name} has no price yet, so I can't book it online. A manager can help you.",
        "ru": "К сожалению, у {qname} пока нет цены, поэтому записать онлайн не получится. Вам поможет менеджер.",
    },
    "booking_hold_expired": {
        "en": "Sorry, the time {when} is no longer held for you. Let's find another one.",
        "ru": "К сожалению, время {when} больше не закреплено за вами. Давайте подберём другое.",
    },
    "booking_none": {"en": "You have no upcoming bookings.", "ru": "У вас нет предстоящих записей."},
    "booking_header": {"en": "Your bookings:", "ru": "Ваши записи:"},
    "booking_one": {"en": "Your booking: {line}", "ru": "Ваша запись: {line}"},
    "booking_line_confirmed": {"en": "{service}, {when}{resource} (confirmed)",
                               "ru": "{service}, {when}{resource} (подтверждена)"},
    "booking_line_held": {
        "en": "{service}, {when}{resource} (waiting for the prepayment of {amount}; held until {until})",
        "ru": "{service}, {when}{resource} (ожидает предоплату {amount}; время закреплено до {until})",
    },
    "booking_pay_here": {"en": "Pay here: {url}", "ru": "Оплатить: {url}"},
    "which_booking_cancel": {"en": "Which booking should I cancel?", "ru": "Какую запись отменить?"},
    "which_booking_move": {"en": "Which booking should I move?", "ru": "Какую запись перенести?"},
    "cancel_question": {"en": "Cancel your booking: {service}, {when}?", "ru": "Отменить запись: {service}, {when}?"},
    "cancel_refundable": {"en": "Your prepayment of {amount} will be refunded.",
                          "ru": "Предоплата {amount} будет возвращена."},
    "cancel_not_refundable": {
        "en": "It's less than {hours} hours before the appointment, so the prepayment of {amount} is not refundable.",
        "ru": "До визита осталось меньше {hours} ч, поэтому предоплата {amount} не возвращается.",
    },
    "booking_cancelled": {"en": "Your booking is cancelled: {service}, {when}.",
                          "ru": "Запись отменена: {service}, {when}."},
    "cancelled_refund": {"en": "We will refund your prepayment of {amount}.",
                         "ru": "Мы вернём вам предоплату {amount}."},
    "cancelled_no_refund": {
        "en": "The prepayment of {amount} is not refunded: the booking was cancelled less than {hours} hours "
              "before it.",
        "ru": "Предоплата {amount} не возвращается: запись отменена меньше чем за {hours} ч до начала.",
    },
    "booking_kept": {"en": "OK, your booking stays: {service}, {when}.",
                     "ru": "Хорошо, запись остаётся: {service}, {when}."},
    "booking_released": {"en": "OK, I've released the time.", "ru": "Хорошо, время освобождено."},
    "booking_not_active": {"en": "That booking is no longer active.", "ru": "Эта запись уже неактивна."},
    "ask_move_day": {"en": "To which day should I move {service} ({when})?",
                     "ru": "На какой день перенести запись на {qservice} ({when})?"},
    "move_too_late": {
        "en": "Sorry, a booking can't be moved less than {hours} hours before it starts. A manager can help you.",
        "ru": "К сожалению, перенести запись меньше чем за {hours} ч до начала нельзя. С этим поможет менеджер.",
    },
    "booking_moved": {"en": "Done! {service} is now on {when}{resource}.",
                      "ru": "Готово! Запись на {qservice} перенесена на {when}{resource}."},
    # -- delivery windows of paid orders ---------------------------------------------------------------------
    "delivery_windows": {
        "en": "When should we deliver order #{number}? Choose a delivery window:",
        "ru": "Когда доставить заказ №{number}? Выберите интервал доставки:",
    },
    "delivery_ask_city": {
        "en": "Which city should we deliver order #{number} to? We deliver to: {cities}.",
        "ru": "В какой город доставить заказ №{number}? Мы доставляем: {cities}.",
    },
    "delivery_no_city": {
        "en": "Sorry, we have no delivery windows for {city}. A manager will contact you about the delivery.",
        "ru": "К сожалению, для «{city}» нет интервалов доставки. Менеджер свяжется с вами насчёт доставки.",
    },
    "delivery_none_free": {
        "en": "Sorry, there are no free delivery windows in {city} in the next days. A manager will contact you "
              "about the delivery.",
        "ru": "К сожалению, в ближайшие дни нет свободных интервалов доставки ({city}). Менеджер свяжется с вами "
              "насчёт доставки.",
    },
    "delivery_chosen": {"en": "Done! Order #{number} will be delivered on {window}.",
                        "ru": "Готово! Заказ №{number} доставим {window}."},
    "delivery_full": {
        "en": "Sorry, that window has just filled up. Other windows:",
        "ru": "К сожалению, этот интервал только что заполнился. Другие интервалы:",
    },
    "delivery_status": {"en": "Order #{number} will be delivered on {window} ({city}).",
                        "ru": "Заказ №{number} будет доставлен {window} ({city})."},
    "delivery_manager": {
        "en": "Order #{number} is paid; a manager will contact you about the delivery time.",
        "ru": "Заказ №{number} оплачен; менеджер свяжется с вами насчёт времени доставки.",
    },
}

# key -> language -> (title, payload)
_BUTTONS: dict[str, dict[str, tuple[str, str]]] = {
    "catalog": {"en": ("Catalogue", "catalogue"), "ru": ("Каталог", "каталог")},
    "cart": {"en": ("Cart", "cart"), "ru": ("Корзина", "корзина")},
    "human": {"en": ("Talk to a human", "talk to a human"), "ru": ("Позвать менеджера", "позвать менеджера")},
    "checkout": {"en": ("Checkout", "checkout"), "ru": ("Оформить заказ", "оформить заказ")},
    "continue": {"en": ("Continue shopping", "catalogue"), "ru": ("Продолжить покупки", "каталог")},
    "clear": {"en": ("Clear cart", "clear cart"), "ru": ("Очистить корзину", "очистить корзину")},
    "skip": {"en": ("Skip", "skip"), "ru": ("Пропустить", "пропустить")},
    "cancel": {"en": ("Cancel", "cancel"), "ru": ("Отмена", "отмена")},
    "status": {"en": ("Order status", "order status"), "ru": ("Статус заказа", "статус заказа")},
    "new_link": {"en": ("New payment link", "new link"), "ru": ("Новая ссылка", "новая ссылка")},
    "pay": {"en": ("Pay", "payment link"), "ru": ("Оплатить", "ссылка на оплату")},
    "services": {"en": ("Services", "services"), "ru": ("Услуги", "услуги")},
    "book": {"en": ("Book an appointment", "book an appointment"), "ru": ("Записаться", "записаться")},
    "my_booking": {"en": ("My booking", "my booking"), "ru": ("Моя запись", "моя запись")},
    "cancel_booking": {"en": ("Cancel booking", "cancel my booking"), "ru": ("Отменить запись", "отменить запись")},
    "move_booking": {"en": ("Move booking", "move my booking"), "ru": ("Перенести запись", "перенести запись")},
    "yes_cancel": {"en": ("Yes, cancel it", "yes, cancel it"), "ru": ("Да, отменить", "да, отменить")},
    "keep_booking": {"en": ("Keep it", "keep it"), "ru": ("Оставить", "оставить")},
}
# What each standard button runs (``bot.buttons`` references; the phrases above say the same in words).
_BUTTON_REFERENCES = {
    "catalog": "c:show_catalog", "cart": "c:show_cart", "human": "c:handoff", "checkout": "c:start_checkout",
    "continue": "c:show_catalog", "clear": "c:clear_cart", "skip": "c:skip", "cancel": "c:cancel",
    "status": "c:order_status", "new_link": "c:new_payment_link", "pay": "c:new_payment_link",
    "services": "c:show_catalog", "book": "c:find_slots", "my_booking": "c:show_booking",
    "cancel_booking": "c:cancel_booking", "move_booking": "c:move_booking", "yes_cancel": "c:cancel_booking",
    "keep_booking": "c:skip",
}
_BOOK_TITLE = {"en": "Book", "ru": "Записаться"}
_WEEKDAYS = {"en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), "ru": ("пн", "вт", "ср", "чт", "пт", "сб", "вс")}
_MONTHS = {"en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
           "ru": ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
                  "ноября", "декабря")}
_PARTS = {"en": {"morning": "in the morning", "afternoon": "in the afternoon", "evening": "in the evening"},
          "ru": {"morning": "утром", "afternoon": "днём", "evening": "вечером"}}
_PART_WORDS = {"en": {"morning": "morning", "afternoon": "afternoon", "evening": "evening"},
               "ru": {"morning": "утром", "afternoon": "днём", "evening": "вечером"}}
_AFTER = {"en": "after {time}", "ru": "после {time}"}
_WITH = {"en": " with {name}", "ru": ", мастер {name}"}

_ADD_TITLE = {"en": "Add to cart", "ru": "В корзину"}
_PAYMENT_STATUS = {
    "en": {"expired": "the payment link has expired", "failed": "the payment failed"},
    "ru": {"expired": "срок действия ссылки истёк", "failed": "оплата не прошла"},
}
_STATUS_OTHER = {
    "en": "Order #{number} ({total}): {status}. Say \"new link\" and I'll send a fresh payment link.",
    "ru": "Заказ №{number} ({total}): {status}. Напишите «новая ссылка», и я пришлю новую ссылку на оплату.",
}


def lang_of(language: str | None) -> str:
    """``language`` when the engine speaks it, else English."""
    return language if language in LANGUAGES else "en"


def t(key: str, language: str, **values: object) -> str:
    """The text ``key`` in ``language`` (English when unsupported), formatted with ``values``
    (``{qname}``/``{qservice}`` are ``name``/``service`` in «quotes» unless they have their own). Raises
    ``KeyError`` for an unknown key."""
    if "name" in values:
        values.setdefault("qname", quote(str(values["name"])))
    if "service" in values:
        values.setdefault("qservice", quote(str(values["service"])))
    return _TEXTS[key][lang_of(language)].format(**values)


def quote(name: str) -> str:
    """``«Роза»``; a name that already holds quotes (``Букет «Нежность»``) is left as it is."""
    return name if any(q in name for q in "«»\"“”") else f"«{name}»"


def button(key: str, language: str) -> Button:
    """A standard button (``catalog``, ``cart``, ``human``, ``checkout``, ``continue``, ``clear``,
    ``skip``, ``cancel``, ``status``, ``new_link``, ``pay``, ``services``, ``book``, ``my_booking``,
    ``cancel_booking``, ``move_booking``, ``yes_cancel``, ``keep_booking``) in ``language``."""
    title, _phrase = _BUTTONS[key][lang_of(language)]
    return Button(title=title, payload=_BUTTON_REFERENCES[key])


def status_other(language: str, *, number: int, total: str, status: str) -> str:
    """Order status text for payment statuses without a dedicated message (expired, failed...)."""
    lang = lang_of(language)
    label = _PAYMENT_STATUS[lang].get(status, status)
    return _STATUS_OTHER[lang].format(number=number, total=total, status=label)


def item_label(name: str, variant: str | None) -> str:
    """``Classic Varsity Top (Medium)`` or just the name."""
    return f"{name} ({variant})" if variant else name


def info_payload(name: str) -> str:
    """What an item button sends: the item's name (the NLU answers with the item's card)."""
    return name


def add_payload(language: str, *, name: str, variant: str | None = None, quantity: int = 1) -> str:
    """``add 2 Classic Varsity Top Medium`` / ``добавь 2 Роза красная``."""
    verb = "добавь" if lang_of(language) == "ru" else "add"
    return " ".join(p for p in (verb, str(quantity), name, variant or "") if p)


def add_button(language: str, *, name: str, variant: str | None = None, quantity: int = 1,
               title: str | None = None) -> Button:
    """A button adding ``quantity`` of an item (and variant) to the cart."""
    return Button(
        title=title or (variant if variant else _ADD_TITLE[lang_of(language)]),
        payload=add_payload(language, name=name, variant=variant, quantity=quantity),
    )


def add_title(language: str) -> str:
    """The title of an "add to cart" button without a variant."""
    return _ADD_TITLE[lang_of(language)]


def set_payload(language: str, *, name: str, variant: str | None, quantity: int) -> str:
    """``change Classic Varsity Top Medium to 3`` / ``измени количество Роза красная на 3``."""
    target = " ".join(p for p in (name, variant or "") if p)
    if lang_of(language) == "ru":
        return f"измени количество {target} на {quantity}"
    return f"change {target} to {quantity}"


def remove_payload(language: str, *, name: str, variant: str | None) -> str:
    """``remove Classic Varsity Top Medium`` / ``убери Роза красная``."""
    verb = "убери" if lang_of(language) == "ru" else "remove"
    return " ".join(p for p in (verb, name, variant or "") if p)


def line(quantity: int, name: str, variant: str | None, amount: str) -> str:
    """A cart or order line: ``2 × Classic Varsity Top (Medium) — 120.00 USD``."""
    return f"{quantity} × {item_label(name, variant)} — {amount}"


def bullet(label: str, value: str | None = None) -> str:
    """A list entry: ``• Ocean Blue Shirt — 50.00 USD``."""
    return f"• {label} — {value}" if value else f"• {label}"


def book_button(language: str, *, name: str, title: str | None = None, when: str = "") -> Button:
    """A button booking service ``name`` (``book Colouring`` / ``запишите на Маникюр``), optionally
    for the time words ``when`` ("Sat 14 Mar afternoon")."""
    lang = lang_of(language)
    verb = "запишите на" if lang == "ru" else "book"
    return Button(title=title or _BOOK_TITLE[lang], payload=" ".join(p for p in (verb, name, when) if p))


def day_label(day: date, language: str) -> str:
    """A local date for customers: ``Fri 13 Mar`` / ``пт 13 марта``."""
    lang = lang_of(language)
    return f"{_WEEKDAYS[lang][day.weekday()]} {day.day} {_MONTHS[lang][day.month - 1]}"


def clock(moment: datetime | time) -> str:
    """``14:30``."""
    return f"{moment.hour:02d}:{moment.minute:02d}"


def slot_label(local: datetime, language: str, *, resource: str | None = None) -> str:
    """A slot button's title: ``Fri 14:30`` / ``пт 14:30``, with `` · Anna`` when staff differ."""
    label = f"{_WEEKDAYS[lang_of(language)][local.weekday()]} {clock(local)}"
    return f"{label} · {resource}" if resource else label


def when_label(local: datetime, language: str) -> str:
    """A local date and time: ``Fri 13 Mar, 14:30`` / ``пт 13 марта, 14:30``."""
    return f"{day_label(local.date(), language)}, {clock(local)}"


def window_label(start: datetime, end: datetime, language: str) -> str:
    """A delivery window in local time: ``Fri 13 Mar, 10:00–14:00``."""
    return f"{day_label(start.date(), language)}, {clock(start)}–{clock(end)}"


def with_resource(language: str, name: str | None) -> str:
    """`` with Anna`` / ``, мастер Anna`` (empty without a name)."""
    return _WITH[lang_of(language)].format(name=name) if name else ""


def part_label(language: str, *, part_of_day: str | None, after: time | None) -> str:
    """`` in the afternoon``, `` after 15:00`` / `` днём``, `` после 15:00`` (empty when neither)."""
    lang = lang_of(language)
    parts = []
    if part_of_day in _PARTS[lang]:
        parts.append(_PARTS[lang][part_of_day])
    if after is not None:
        parts.append(_AFTER[lang].format(time=clock(after)))
    return "".join(f" {p}" for p in parts)


def when_words(language: str, *, day: date, part_of_day: str | None, after: time | None) -> str:
    """Words the NLU reads back as this day and time: ``Sat 14 Mar afternoon after 15:00`` /
    ``сб 14 марта днём после 15:00`` (used in button payloads)."""
    lang = lang_of(language)
    words = [day_label(day, lang)]
    if part_of_day in _PART_WORDS[lang]:
        words.append(_PART_WORDS[lang][part_of_day])
    if after is not None:
        words.append(_AFTER[lang].format(time=clock(after)))
    return " ".join(words)
