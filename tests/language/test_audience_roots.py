"""Who a service is for (bot.language.audience) and verb/noun roots (bot.language.roots)."""

from __future__ import annotations

from bot.language.audience import audiences, is_combination, narrow_by_audience
from bot.language.roots import is_russian_verb, shares_root

BARBER = [(1, "Men's haircut"), (2, "Haircut and beard combo"), (3, "Kids haircut")]
SALON = [(1, "Женская стрижка"), (2, "Мужская стрижка")]


def test_a_plain_request_leaves_out_childrens_services_and_combinations() -> None:
    assert narrow_by_audience("need a haircut saturday morning", BARBER) == [1]


def test_the_person_named_chooses_the_service() -> None:
    assert narrow_by_audience("a haircut for my husband", [(1, "Women's haircut"), (2, "Men's haircut")]) == [2]
    assert narrow_by_audience("can you cut my son's hair", BARBER) == [3]
    assert narrow_by_audience("хочу постричь дочку", [(1, "Детская стрижка"), *SALON]) == [1]


def test_without_a_person_both_adult_services_stay() -> None:
    assert narrow_by_audience("хочу подстричься", SALON) == [1, 2]


def test_a_combination_said_in_full_stays() -> None:
    assert 2 in narrow_by_audience("haircut and beard please", BARBER)


def test_audience_words_in_both_languages() -> None:
    assert audiences("для мужа") == {"men"}
    assert audiences("Women's haircut") == {"women"}
    assert is_combination("Стрижка + укладка") and not is_combination("Стрижка когтей")


def test_verbs_share_roots_with_service_nouns() -> None:
    assert shares_root("покраситься", "окрашивание")
    assert shares_root("подстричься", "стрижка")
    assert shares_root("вычесать", "вычёсывание")
    assert not shares_root("покраситься", "стрижка")
    assert not shares_root("подстричь", "маникюр")
    assert is_russian_verb("подстричься") and not is_russian_verb("стрижка")
