"""bot.language.details: name, address and E.164 phone in any shape and order, English and
Russian, one line or several; nothing invented from ordinary messages."""

from __future__ import annotations

import pytest

from bot.language.details import Details, extract_details, normalize_phone, read_name


@pytest.mark.parametrize(
    ("text", "language", "region", "expected"),
    [
        (
            "Li Wei, 4 Cedar Lane, Portland OR 97205, 503 555 0142",
            "en",
            "US",
            Details(name="Li Wei", address="4 Cedar Lane, Portland OR 97205", phone_e164="+15035550142"),
        ),
        (
            "Li Wei\n4 Cedar Lane\nPortland OR 97205\n503-555-0142",
            "en",
            "US",
            Details(name="Li Wei", address="4 Cedar Lane, Portland OR 97205", phone_e164="+15035550142"),
        ),
        (
            "503 555 0142, 4 Cedar Lane, Portland OR 97205, Li Wei",
            "en",
            "US",
            Details(name="Li Wei", address="4 Cedar Lane, Portland OR 97205", phone_e164="+15035550142"),
        ),
        ("my name is John Smith", "en", "US", Details(name="John Smith")),
        ("I'm Maria, phone 415 555 2671", "en", "US", Details(name="Maria", phone_e164="+14155552671")),
        ("phone: (415) 555-2671", "en", "US", Details(phone_e164="+14155552671")),
        (
            "address: 123 Main St Apt 4B, Springfield, IL 62704",
            "en",
            "US",
            Details(address="123 Main St Apt 4B, Springfield, IL 62704"),
        ),
        ("ship to PO Box 12, Austin TX 78701", "en", "US", Details(address="PO Box 12, Austin TX 78701")),
        ("+44 20 7946 0958, Jane Doe", "en", "GB", Details(name="Jane Doe", phone_e164="+442079460958")),
        ("Anna, 12 Baker Street, London", "en", "GB", Details(name="Anna", address="12 Baker Street, London")),
        ("я Ольга Петрова", "ru", "RU", Details(name="Ольга Петрова")),
        (
            "меня зовут Иван, телефон +7 912 345-67-89, ул. Ленина 5, кв 3",
            "ru",
            "RU",
            Details(name="Иван", address="ул. Ленина 5, кв 3", phone_e164="+79123456789"),
        ),
        ("Ольга Петрова, 89123456789", "ru", "RU", Details(name="Ольга Петрова", phone_e164="+79123456789")),
        ("ольга петрова, 8 912 345 67 89", "ru", "RU", Details(name="Ольга Петрова", phone_e164="+79123456789")),
        (
            "Петров Иван Сергеевич\nг. Москва, ул. Тверская, д. 7, кв. 12\n+7 (912) 345-67-89",
            "ru",
            "RU",
            Details(
                name="Петров Иван Сергеевич",
                address="г. Москва, ул. Тверская, д. 7, кв. 12",
                phone_e164="+79123456789",
            ),
        ),
        (
            "доставка на проспект Мира 15 корпус 2, телефон 8 912 345 67 89",
            "ru",
            "RU",
            Details(address="проспект Мира 15 корпус 2", phone_e164="+79123456789"),
        ),
        ("Меня зовут Анна Сергеевна", "ru", "RU", Details(name="Анна Сергеевна")),
        ("это Дмитрий, ул Гагарина 10-25", "ru", "RU", Details(name="Дмитрий", address="ул Гагарина 10-25")),
        ("адрес: 620014, Екатеринбург, Малышева 1", "ru", "RU", Details(address="620014, Екатеринбург, Малышева 1")),
        (
            "Name: Jane Doe\nPhone: 415-555-2671\nAddress: 350 Fifth Avenue, New York, NY 10118",
            "en",
            "US",
            Details(name="Jane Doe", address="350 Fifth Avenue, New York, NY 10118", phone_e164="+14155552671"),
        ),
        (
            "Имя: Ольга\nТелефон: 8-912-345-67-89\nАдрес: Москва, Тверская 7-12",
            "ru",
            "RU",
            Details(name="Ольга", address="Москва, Тверская 7-12", phone_e164="+79123456789"),
        ),
        (
            "deliver to 350 Fifth Avenue, New York NY 10118 please",
            "en",
            "US",
            Details(address="350 Fifth Avenue, New York NY 10118"),
        ),
        (
            "Мария Иванова, Санкт-Петербург, Невский пр. 28, +79211234567",
            "ru",
            "RU",
            Details(name="Мария Иванова", address="Санкт-Петербург, Невский пр. 28", phone_e164="+79211234567"),
        ),
        ("hello, I am Bob", "en", "US", Details(name="Bob")),
        ("Call me Bob", "en", "US", Details(name="Bob")),
        ("my number is 4155552671", "en", "US", Details(phone_e164="+14155552671")),
        # ordinary messages give nothing
        ("I am fine thanks", "en", "US", Details()),
        ("i am going to order", "en", "US", Details()),
        ("хочу в Москву", "ru", "RU", Details()),
        ("two mugs please", "en", "US", Details()),
        ("I'm looking for roses", "en", "US", Details()),
        ("thanks", "en", "US", Details()),
        ("хочу розу", "ru", "RU", Details()),
        ("Роза", "ru", "RU", Details()),
        ("3 tulips and 2 lilies", "en", "US", Details()),
        ("", "en", "US", Details()),
    ],
)
def test_extract_details(text: str, language: str, region: str, expected: Details) -> None:
    assert extract_details(text, language, region) == expected


def test_region_defaults_follow_the_language() -> None:
    assert extract_details("телефон 8 912 345 67 89", "ru", None).phone_e164 == "+79123456789"
    assert extract_details("call me at (415) 555-2671", "en", None).phone_e164 == "+14155552671"


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("8 (912) 345-67-89", "RU", "+79123456789"),
        ("+7 912 3456789", "US", "+79123456789"),
        ("503.555.0142", "US", "+15035550142"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", None, None),  # a national number needs a region
        ("no digits here", "US", None),
    ],
)
def test_normalize_phone(text: str, region: str | None, expected: str | None) -> None:
    assert normalize_phone(text, region) == expected


def test_empty_details_are_falsy() -> None:
    assert not Details()
    assert Details(phone_e164="+15035550142")


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("It's for Jane Doe. Address: 12 Oak Street, Boston MA 02118", "en",
         Details(name="Jane Doe", address="12 Oak Street, Boston MA 02118")),
        ("512-555-0147, and the name is Ann Lee", "en", Details(name="Ann Lee", phone_e164="+15125550147")),
        ("I'm Li Wei. 4 Cedar Lane, Portland OR 97205", "en",
         Details(name="Li Wei", address="4 Cedar Lane, Portland OR 97205")),
        # a full stop after an abbreviation ("ул.", "д.") does not end a sentence; after a house number it does
        ("г. Москва, ул. Тверская, д. 5. Иван Петров", "ru",
         Details(name="Иван Петров", address="г. Москва, ул. Тверская, д. 5")),
    ],
)
def test_details_across_sentences_and_introductions(text: str, language: str, expected: Details) -> None:
    assert extract_details(text, language) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Марина", "Марина"), ("анна смирнова", "Анна Смирнова"), ("Emma Clarke", "Emma Clarke"), ("Oliver.", "Oliver"),
     ("checkout", None), ("Checkout", None), ("завтра", None), ("12 Oak Street", None), ("хочу розу", None)],
)
def test_read_name_takes_a_bare_name_only(text: str, expected: str | None) -> None:
    assert read_name(text) == expected
