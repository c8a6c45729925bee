"""Per-call cost of the language helpers in ``bot.language`` (English and Russian samples).

For each function prints: the one-off cost of the first call in this process (loading the
pymorphy3 dictionaries, number-parser vocabularies, the usaddress model, phonenumbers metadata),
then microseconds per call with the memo caches cleared before every pass ("cold": every word
is new to the process) and with warm caches ("warm": the steady state of a running engine,
where customers reuse words). The engine's target is p50 < 5 ms per whole message.
Prints figures only; nothing here asserts on time.

Usage: ``python bench/bench_language.py [--repeat 200]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

EN = [
    "a teapot and two mugs",
    "put two scarves in, and do you ship abroad?",
    "give me half a dozen roses and a dozen tulips",
    "Li Wei, 4 Cedar Lane, Portland OR 97205, 503 555 0142",
    "a gift for a coworker, max 30 dollars",
    "good morning! busy day?",
    "I need my nails done Thursday morning",
    "on Saturday at 11",
]
RU = [
    "дайте три ромашки и две лилии",
    "мне пару кружечек и десяток ромашек, и сколько стоит доставка?",
    "меня зовут Иван, телефон +7 912 345-67-89, ул. Ленина 5, кв 3",
    "я Ольга Петрова",
    "что-нибудь до 2000 рублей, от 500 до 1000 ₽",
    "добрый вечер, вы работаете?",
    "хочу подстричься в четверг ближе к вечеру",
    "с пятью тюльпанчиками и семерых",
]
WORDS_RU = "ромашечек лилий кружечки розочки тюльпанчиков свечку чашечку пионов хризантем вазу".split()
WORDS_EN = "mugs lilies scarves glasses boxes teapots knives roses tulips candles".split()


def _clear_caches() -> None:
    from bot.language import choice, details, morph, quantities

    for module in (morph, quantities, details, choice):
        for value in vars(module).values():
            if callable(value) and hasattr(value, "cache_clear") and value.__name__ not in {
                "_analyzer",
                "_inflection",
                "_vocabulary",
            }:
                value.cache_clear()


def _measure(fn: Callable[[str], object], samples: list[str], repeat: int, *, cold: bool) -> float:
    """Median µs per call over ``repeat`` passes over ``samples``."""
    per_call: list[float] = []
    for _ in range(repeat):
        if cold:
            _clear_caches()
        start = time.perf_counter()
        for sample in samples:
            fn(sample)
        per_call.append((time.perf_counter() - start) / len(samples) * 1e6)
    return statistics.median(per_call)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    from bot.language.budget import parse_budget
    from bot.language.choice import parse_choice
    from bot.language.confirm import parse_yes_no
    from bot.language.daytime import parse_daytime
    from bot.language.details import extract_details
    from bot.language.morph import agree, lemma, match_key
    from bot.language.quantities import parse_quantity
    from bot.language.segments import split_items
    from bot.language.smalltalk import analyze

    cases: list[tuple[str, Callable[[str], object], list[str]]] = [
        ("morph.lemma (ru word)", lambda w: lemma(w, "ru"), WORDS_RU),
        ("morph.lemma (en word)", lambda w: lemma(w, "en"), WORDS_EN),
        ("morph.match_key (ru word)", lambda w: match_key(w, "ru"), WORDS_RU),
        ("morph.agree (ru, n=1..10)", lambda w: [agree(n, "красная роза", "ru") for n in range(1, 11)], ["x"]),
        ("quantities.parse_quantity", lambda t: parse_quantity(t), EN + RU),
        ("segments.split_items", lambda t: split_items(t), EN + RU),
        ("details.extract_details (en)", lambda t: extract_details(t, "en", "US"), EN),
        ("details.extract_details (ru)", lambda t: extract_details(t, "ru", "RU"), RU),
        ("budget.parse_budget", lambda t: parse_budget(t), EN + RU),
        ("smalltalk.analyze", lambda t: analyze(t), EN + RU),
        ("daytime.parse_daytime", lambda t: parse_daytime(t), EN + RU),
        ("choice.parse_choice", lambda t: parse_choice(t), EN + RU),
        ("confirm.parse_yes_no", lambda t: parse_yes_no(t), EN + RU),
    ]
    print(f"{'function':34} {'first call ms':>14} {'cold µs/call':>13} {'warm µs/call':>13}")
    total_cold = total_warm = 0.0
    for name, fn, samples in cases:
        start = time.perf_counter()
        fn(samples[0])
        first = (time.perf_counter() - start) * 1e3
        cold = _measure(fn, samples, max(args.repeat // 10, 5), cold=True)
        warm = _measure(fn, samples, args.repeat, cold=False)
        if "(" not in name or "word" not in name:
            total_cold += cold
            total_warm += warm
        print(f"{name:34} {first:14.1f} {cold:13.1f} {warm:13.1f}")
    print(
        "\none message through every message-level helper (rows except per-word lemma/match_key; "
        f"the agree row is 10 calls): "
        f"cold {total_cold / 1000:.2f} ms, warm {total_warm / 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
