"""Pure language helpers of the dialogue engine (English and Russian), one job per module.

- :mod:`bot.language.morph` — Russian/English lemmas (cases, numbers, diminutives), matching keys,
  number–noun agreement for replies ("1 роза, 2 розы, 5 роз").
- :mod:`bot.language.quantities` — quantities in digits, words and colloquial forms ("a couple",
  "half a dozen", "десяток", "пятью", "семерых").
- :mod:`bot.language.segments` — one message → candidate item segments with quantities + the
  leftover non-item clauses (questions).
- :mod:`bot.language.details` — checkout details (name, address, E.164 phone) in any shape/order.
- :mod:`bot.language.budget` — price limits ("under $50", "от 500 до 1000 ₽").
- :mod:`bot.language.smalltalk` — greetings, thanks, acknowledgements, "how are you", "are you
  open", goodbyes, and the substantive remainder of the message.
- :mod:`bot.language.daytime` — day parts ("ближе к вечеру") and clock times ("at 11", "в 11:30").
- :mod:`bot.language.choice` — which offered option is picked ("the second", "вторую", "the
  cheaper one", "подешевле").
- :mod:`bot.language.confirm` — plain yes/no answers ("yes please", "нет, спасибо").
- :mod:`bot.language.audience` — who a service is for (men, women, children; "for my husband")
  and combinations, to tell several matching services apart.
- :mod:`bot.language.roots` — Russian roots shared by a verb and a service noun ("покраситься" →
  "Окрашивание", "подстричься" → "Стрижка").

Nothing here touches the database or engine state; heavy resources (the pymorphy3 analyzer,
number-parser vocabularies, the usaddress model) are created lazily on first use, once per process,
and per-word results are memoised. Nothing is imported or built when this package is imported.
Language detection lives in :func:`knowledge.text.detect_language`.
"""


def warm_up() -> None:
    """Load every lazy resource now (pymorphy3 dictionaries ~0.1 s, number-parser vocabularies,
    phonenumbers metadata and the usaddress model ~25 ms), so the first customer message does not
    pay for it. Call once at engine start-up, off the event loop (e.g. ``asyncio.to_thread``)."""
    from bot.language.budget import parse_budget
    from bot.language.details import extract_details
    from bot.language.morph import agree, lemma
    from bot.language.quantities import parse_quantity
    from bot.language.segments import split_items

    lemma("розы", "ru")
    lemma("roses", "en")
    agree(2, "роза", "ru")
    agree(2, "rose", "en")
    parse_quantity("двадцать одну и twenty one")
    split_items("two mugs")
    parse_budget("до 2000 рублей")
    extract_details("Li Wei, 4 Cedar Lane, Portland OR 97205, 503 555 0142", "en", "US")
