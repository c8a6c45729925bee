"""Checkout details — name, delivery address, phone — from a message in any shape and order: one
line or several, comma-separated or not, with or without labels ("Li Wei, 4 Cedar Lane, Portland
OR 97205, 503 555 0142"; "я Ольга Петрова"; "меня зовут Иван, телефон +7 912 345-67-89, ул.
Ленина 5, кв 3").

Libraries and why:
- Phones: ``phonenumbers`` (Google libphonenumber) finds numbers in free text and formats them
  as E.164; national numbers need the company's region ("8 912 345-67-89" with region "RU").
- English addresses: ``usaddress`` (a CRF tagger for US-style addresses) labels house numbers,
  street names/types, PO boxes, city, state and ZIP; a clause it reads as a street address, PO
  box, ZIP or "city STATE" is address; clauses right after an address (city, country) join it.
- English names: ``nameparser`` splits a clause into title/first/last to check it reads as a
  person's name.
- Russian names: ``pymorphy3`` grammemes ``Name``/``Surn``/``Patr`` (the analyzer the engine
  loads anyway). ``natasha`` was evaluated and not used: its ``NamesExtractor`` +
  ``AddrExtractor`` cost ~66 ms per message (the engine's whole budget is 5 ms), it pulls in
  ``pymorphy2`` + its own dictionaries beside pymorphy3, and on sample messages it tagged
  "ул", "кв", "корпус" and "Москва" as surnames and read "проспект Мира 15 корпус 2" as
  корпус 15.
- Russian addresses: address words ("ул.", "улица", "проспект", "д.", "кв", "г.", 6-digit
  postcode...) mark a clause as address; following house/flat clauses ("5", "кв 3") join it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bot.language.morph import russian_parses

__all__ = ["Details", "extract_details", "normalize_phone", "read_name"]


@dataclass(frozen=True, slots=True)
class Details:
    """What a message says about the customer: ``name`` (as written, title-cased when all
    lower-case), ``address`` (its clauses joined by ", ", labels removed), ``phone_e164``
    ("+15035550142"); each ``None`` when absent."""

    name: str | None = None
    address: str | None = None
    phone_e164: str | None = None

    def __bool__(self) -> bool:
        return bool(self.name or self.address or self.phone_e164)


_PHONE_LABEL = re.compile(
    r"(?:\b(?:my\s+)?(?:phone(?:\s+number)?|tel|mobile|cell|number|телефон|тел|моб(?:ильный)?|номер"
    r"(?:\s+телефона)?)\b\.?\s*(?:is|:|-)?\s*$)",
    re.IGNORECASE,
)
_NAME_INTRO = re.compile(
    r"""(?:^|[\s,.;!])(?:(?:my\s+|the\s+|her\s+|his\s+)?name\s+is|my\s+name's|name\s*[:\-]|i\s+am|i'm|im|this\s+is|it's|call\s+me
    |меня\s+зовут|моё\s+имя|мое\s+имя|имя\s*[:\-]|зовут|я|это|фио\s*[:\-]?|получатель\s*[:\-]?
    |recipient\s*[:\-]?|for)\s+""",
    re.IGNORECASE | re.VERBOSE,
)
_ADDRESS_LABEL = re.compile(
    r"^\s*(?:(?:my\s+)?(?:delivery\s+|shipping\s+)?address(?:\s+is)?\s*[:\-]?|ship\s+to|deliver\s+to|send\s+(?:it\s+)?to"
    r"|адрес(?:\s+доставки)?\s*[:\-]?|доставка\s+(?:на|по\s+адресу)|доставить\s+(?:на|по\s+адресу)|по\s+адресу"
    r"|привезите\s+на|привезти\s+на)\s*",
    re.IGNORECASE,
)
_RU_ADDRESS_WORDS = re.compile(
    r"""(?:^|[\s,.(])(?:ул|улица|пр|пр-т|просп|проспект|пер|переулок|ш|шоссе|б-р|бул|бульвар|наб|набережная
    |пл|площадь|проезд|тупик|мкр|микрорайон|д|дом|кв|квартира|корп|корпус|к|стр|строение|подъезд|под|этаж
    |эт|офис|оф|г|город|пос|поселок|посёлок|село|деревня|дер|обл|область|край|р-н|район|респ|республика
    |индекс)(?=[\s.,\d]|$)""",
    re.IGNORECASE | re.VERBOSE,
)
_POSTCODE_RU = re.compile(r"(?<!\d)\d{6}(?!\d)")
_HOUSE_TAIL = re.compile(
    r"^\s*(?:(?:д|дом|кв|квартира|корп|корпус|к|стр|строение|подъезд|этаж|офис|apt|apartment|suite|unit|ste|fl|floor)"
    r"\.?\s*)?\d+[a-zа-я]?(?:\s*[/\-]\s*\d+)?\s*$",
    re.IGNORECASE,
)
_CLAUSE_SPLIT = re.compile(r"[;,]+")
_COURTESY = re.compile(
    r"(?:^|\s)(?:please|pls|thanks|thank\s+you|пожалуйста|спасибо)\s*[.!]*\s*$", re.IGNORECASE
)
_WORDS = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*")
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_EN_ADDRESS_LABELS = frozenset(
    {"AddressNumber", "StreetName", "StreetNamePostType", "StreetNamePreType", "OccupancyType", "USPSBoxType",
     "USPSBoxID", "ZipCode", "PlaceName", "StateName", "OccupancyIdentifier", "StreetNamePreDirectional",
     "StreetNamePostDirectional", "CountryName", "BuildingName", "LandmarkName", "SubaddressType"}
)
_NOT_NAME_WORDS = frozenset(
    """hi hello hey thanks thank you please ok okay yes no and the a an i my me to for with of is are was
    checkout order cart buy want need deliver delivery pickup address phone name street st lane road avenue
    привет здравствуйте спасибо пожалуйста да нет ок хочу заказ оформить доставка адрес телефон имя
    улица город дом квартира""".split()
)
_ENDS_WITH_ZIP = re.compile(r"\b\d{5}(?:-\d{4})?\s*$")
_EN_STATE = re.compile(r"\b[A-Z]{2}\b")


# "It's for Jane Doe. Address: 12 Oak Street": a sentence ends at a full stop after a word (not an
# abbreviation such as "ул.", "St.", "Mr.") before a capital letter.
_SENTENCE_END = re.compile(r"(?<=\w)\.\s+(?=[A-ZА-ЯЁ\d])")
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr st ave blvd rd ln apt ste jr sr no fl ул пр просп пер ш б-р бул наб пл мкр д кв корп к стр
    под эт оф г пос дер обл р-н респ им""".split()
)


def _sentences(line: str) -> list[str]:
    """``line`` split into sentences (a full stop after an abbreviation does not end one)."""
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(line):
        word = re.findall(r"\w+(?:-\w+)?", line[start : match.start()])
        if word and word[-1].lower() not in _ABBREVIATIONS and (len(word[-1]) > 1 or word[-1].isdigit()):
            out.append(line[start : match.start()])
            start = match.end()
    out.append(line[start:])
    return out


def _phonenumbers() -> Any:
    import phonenumbers  # lazy: the metadata import costs ~20 ms

    return phonenumbers


def region_of_timezone(timezone: str | None) -> str | None:
    """The country (ISO 3166-1 alpha-2) of an IANA timezone by CLDR's zone territories (via Babel):
    ``"Europe/Berlin"`` → ``"DE"``; ``None`` for an unknown or non-territorial zone (``"UTC"``). The
    region a company's local phone numbers are read in ("503 555 0142" in America/Los_Angeles)."""
    if not timezone:
        return None
    from babel.core import get_global

    territory = get_global("zone_territories").get(timezone)
    return territory if territory and territory != "001" else None


def normalize_phone(text: str, region: str | None) -> str | None:
    """The E.164 form of a phone number written in ``text`` (``"8 912 345-67-89"``, region
    ``"RU"`` → ``"+79123456789"``), or ``None`` when ``text`` holds no possible number.
    ``region`` is an ISO 3166-1 alpha-2 code used for numbers written without "+" and a country
    code; ``None`` accepts international numbers only."""
    found = _find_phone(text, region)
    return found[0] if found else None


def _find_phone(text: str, region: str | None) -> tuple[str, int, int] | None:
    lib = _phonenumbers()
    matcher = lib.PhoneNumberMatcher(text, (region or "ZZ").upper(), leniency=lib.Leniency.POSSIBLE)
    possible = []
    for match in matcher:
        e164 = lib.format_number(match.number, lib.PhoneNumberFormat.E164)
        if lib.is_valid_number(match.number):  # a valid number wins over a possible one (a postcode)
            return e164, match.start, match.end
        if len(str(match.number.national_number)) >= 7:
            possible.append((e164, match.start, match.end))
    return possible[0] if possible else None


def _is_cyrillic(text: str) -> bool:
    return _CYRILLIC.search(text) is not None


def _name_role(word: str) -> str | None:
    """"Name"/"Surn"/"Patr" when pymorphy3 reads the Russian ``word`` as part of a person's name."""
    for parse in russian_parses(word.lower().replace("ё", "е"))[:4]:
        for role in ("Name", "Patr", "Surn"):
            if role in parse.tag:
                return role
    return None


def _looks_like_russian_name(words: list[str]) -> bool:
    if not 1 <= len(words) <= 3:
        return False
    roles = [_name_role(w) for w in words]
    return all(roles) and ("Name" in roles or "Surn" in roles)


@lru_cache(maxsize=1024)
def _usaddress(text: str) -> tuple[frozenset[str], str]:
    import usaddress  # lazy: loads a CRF model

    try:
        tagged, kind = usaddress.tag(text)
    except usaddress.RepeatedLabelError:
        return frozenset({"Repeated"}), "Ambiguous"
    return frozenset(tagged), str(kind)


def _is_english_address(clause: str) -> bool:
    if not any(c.isdigit() for c in clause) and not _EN_STATE.search(clause):
        return False
    labels, kind = _usaddress(clause)
    if kind == "PO Box":
        return "USPSBoxID" in labels
    if kind == "Street Address" and "AddressNumber" in labels:
        # "3 tulips and 2 lilies" is tagged as a street too: demand a street type or a ZIP.
        return bool(labels & {"StreetNamePostType", "StreetNamePreType", "ZipCode", "OccupancyType"})
    if "ZipCode" in labels and ("PlaceName" in labels or "StateName" in labels):
        return True
    return {"PlaceName", "StateName"} <= labels and bool(_EN_STATE.search(clause))


def _is_russian_address(clause: str) -> bool:
    return bool(_RU_ADDRESS_WORDS.search(clause)) or bool(_POSTCODE_RU.search(clause))


def _is_place(clause: str) -> bool:
    """A Russian clause of one to three words naming a place ("Москва", "Санкт-Петербург"):
    pymorphy3's ``Geox`` grammeme on its first word, and not a person's first name."""
    words = _WORDS.findall(clause)
    if not 1 <= len(words) <= 3 or any(c.isdigit() for c in clause):
        return False
    parses = russian_parses(words[0].lower().replace("ё", "е"))
    return bool(parses) and "Geox" in parses[0].tag and _name_role(words[0]) != "Name"


def _is_address(clause: str, russian: bool) -> bool:
    latin = re.search(r"[a-z]", clause, re.IGNORECASE) is not None
    if _is_cyrillic(clause) or (russian and not latin):
        return _is_russian_address(clause)
    return _is_english_address(clause)


def _looks_like_english_name(words: list[str]) -> bool:
    if not 1 <= len(words) <= 4 or any(w.lower() in _NOT_NAME_WORDS for w in words):
        return False
    if not all(w[:1].isupper() for w in words):
        return False
    from nameparser import HumanName  # lazy

    return bool(HumanName(" ".join(words)).first)


def _clean_name(words: list[str]) -> str:
    name = " ".join(words)
    return name.title() if name.islower() else name


def _intro_name(clause: str) -> str | None:
    """The name after "my name is"/"I'm"/"меня зовут"/"я": up to three name-like words."""
    padded = " " + clause
    match = _NAME_INTRO.search(padded)
    while match is not None:  # "it's for Jane Doe": the introduction right before the name
        name = _name_after(padded, match)
        if name is not None:
            return name
        match = _NAME_INTRO.search(padded, match.start() + 1)
    return None


def _name_after(padded: str, match: re.Match[str]) -> str | None:
    tail = padded[match.end() :]
    words = _WORDS.findall(tail)[:3]
    taken: list[str] = []
    for word in words:
        if word.lower() in _NOT_NAME_WORDS:
            break
        if _is_cyrillic(word):
            if _name_role(word) is None and not (taken and word[:1].isupper()):
                break
        elif not word[:1].isupper() and not taken:
            # "i'm looking for..." is not a name; "my name is li wei" is (explicit intro).
            if not re.search(r"name|зовут|имя", match.group(), re.IGNORECASE):
                break
        taken.append(word)
    return _clean_name(taken) if taken else None


def extract_details(text: str, language: str | None = None, region: str | None = None) -> Details:
    """Name, address and phone found in ``text``.

    ``region``: ISO 3166-1 alpha-2 of the company's country ("US", "RU"), used to read national
    phone numbers; when ``None`` it defaults to "RU" for Russian text and "US" otherwise.
    ``language`` ("en"/"ru") only feeds that default; clauses are read by their script.

    A clause (text between commas, semicolons or newlines) is the address when it has Russian
    address words or a postcode, or ``usaddress`` reads it as a street address/PO box/"City ST
    ZIP"; clauses right after it that continue it (city, "кв 3", "5") join it. A name is taken
    after an introduction ("my name is", "I'm", "меня зовут", "я"), or from a clause of
    capitalised name-like words (pymorphy3 Name/Surn/Patr for Russian, nameparser for English)
    when the message also gives a phone or an address, or has two or more such words. Nothing is
    invented: absent parts are ``None``; never raises.
    """
    russian = language == "ru" or _is_cyrillic(text)
    if region is None:
        region = "RU" if russian else "US"
    phone = None
    found = _find_phone(text, region)
    if found is not None:
        phone, start, end = found
        before = _PHONE_LABEL.sub("", text[:start])
        text = before + " , " + text[end:]
    address_parts: list[str] = []
    name: str | None = None
    leftovers: list[str] = []
    for line in (sentence for each in text.splitlines() for sentence in _sentences(each)):
        in_address = False
        labelled = False  # "Адрес: Москва, Тверская 7-12": the rest of the line is the address
        for raw in _CLAUSE_SPLIT.split(line):
            clause = _COURTESY.sub("", raw.strip(" \t.:-")).strip(" \t.:-")
            label = _ADDRESS_LABEL.match(clause)
            if label and label.end():
                clause = clause[label.end() :].strip()
                labelled = True
            if not clause:
                continue
            if labelled:
                address_parts.append(clause)
                continue
            address_like = _is_address(clause, russian)
            intro = None if in_address else _intro_name(clause)
            if intro is not None and name is None and not address_like:
                name = intro
                continue
            if address_like or (russian and _is_place(clause)):
                address_parts.append(clause)
                in_address = True
                continue
            if in_address and (_HOUSE_TAIL.match(clause) or _continues_address(", ".join(address_parts), clause)):
                address_parts.append(clause)
                continue
            in_address = False
            leftovers.append(clause)

    if name is None:
        for clause in leftovers:
            words = _WORDS.findall(clause)
            if len(words) != len(clause.split()):
                continue  # digits or symbols: not a bare name
            strong = len(words) >= 2 or phone is not None or bool(address_parts)
            if not strong:
                continue
            if _is_cyrillic(clause):
                if _looks_like_russian_name(words) and (all(w[:1].isupper() for w in words) or strong):
                    name = _clean_name(words)
                    break
            elif _looks_like_english_name(words):
                name = _clean_name(words)
                break
    address = ", ".join(address_parts) if address_parts else None
    return Details(name=name, address=address, phone_e164=phone)


@lru_cache(maxsize=1024)
def _usaddress_tail_labels(address: str, clause: str) -> frozenset[str]:
    """usaddress labels of ``clause``'s tokens when read as the end of ``address, clause``."""
    import usaddress

    parsed = usaddress.parse(f"{address}, {clause}")
    return frozenset(label for _, label in parsed[-len(clause.split()) :])


def _continues_address(address: str, clause: str) -> bool:
    """A clause after an address that continues it: a city/state/ZIP/country as ``usaddress``
    reads it in context (English), or a capitalised place name of one or two words
    ("Москва")."""
    if _is_cyrillic(clause):
        words = _WORDS.findall(clause)
        return 1 <= len(words) <= 2 and all(w[:1].isupper() for w in words) and not any(
            _name_role(w) == "Name" for w in words
        )
    if _ENDS_WITH_ZIP.search(address) or clause.islower():
        return False  # after "Portland OR 97205" comes something else ("Li Wei")
    labels = _usaddress_tail_labels(address, clause)
    return bool(labels) and labels <= {"ZipCode", "StateName", "CountryName", "PlaceName", "OccupancyType",
                                        "OccupancyIdentifier", "SubaddressType", "SubaddressIdentifier"}


def read_name(text: str) -> str | None:
    """The answer to "what name?" when it is only a name of one to three words ("Марина", "Emma
    Clarke", "анна смирнова"): Russian words pymorphy3 reads as a first name or surname, or English
    capitalised words nameparser reads as a name; ``None`` otherwise (a sentence, a number, a word
    such as "checkout"). Never raises."""
    clause = _COURTESY.sub("", text.strip(" \t.!:-")).strip(" \t.!,:-")
    words = _WORDS.findall(clause)
    if not words or len(words) != len(clause.split()):
        return None
    if _is_cyrillic(clause):
        return _clean_name(words) if _looks_like_russian_name(words) else None
    return _clean_name(words) if _looks_like_english_name(words) else None
