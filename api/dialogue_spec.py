"""The YAML format of dialogue tests (``chatcommerce test-dialogues``): parsing and validation only.

A file looks like this (paths are relative to the YAML file)::

    now: 2027-03-09T09:00:00+01:00          # the engine's fixed clock (aware datetime)
    companies:
      kitchen:                              # a key conversations refer to
        name: Copper & Crumb
        type: product                       # product | service | hybrid
        language: en                        # en | ru
        currency: USD
        timezone: America/Chicago
        catalogue: [catalogues/kitchen.csv, catalogues/kitchen-faq.csv]
        staff: [Anna, Marco]                # service companies: resources
        schedule: {hours: {...}, ...}       # Company.settings["schedule"] shape (commerce.schedule)
    conversations:
      - id: kitchen-teapot-and-mugs
        company: kitchen                    # optional with --company SLUG
        turns:
          - hi there
          - say: a teapot and two mugs please
            expect:
              cart: [{item: Teapot, variant: Black, quantity: 1}, {item: Stoneware Mug, quantity: 2}]
          - press: Checkout                 # a button of the last reply, by title or 1-based index
          - pay: true                       # pay the latest payment link (manual provider)
        expect: {payment_status: paid, order_total: "86.00 USD"}

Expectation keys (after a turn, or ``expect`` at the end of the conversation, where reply checks look at
the last turn's replies): ``cart`` (all lines, any order), ``order_lines``, ``order_total`` (int minor
units or formatted text), ``payment_status``, ``customer_name``, ``phone``, ``address_contains``,
``booking`` (``service``, ``time`` as company-local ``YYYY-MM-DD HH:MM``, ``status``) or ``null`` for
none, ``handoff``, ``reply_contains`` / ``reply_contains_any`` / ``reply_not_contains`` (case-insensitive,
any of the turn's replies), ``reply_language`` (``en``/``ru``), ``buttons_include``.

Errors: :class:`DialogueSpecError` names the file and the place (``conversations[3].turns[1]``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "BookingExpect",
    "CartLineExpect",
    "CompanySpec",
    "ConversationSpec",
    "DialogueFile",
    "DialogueSpecError",
    "Expect",
    "TurnSpec",
    "load_dialogue_file",
]


class DialogueSpecError(ValueError):
    """A dialogue file that cannot be used: unreadable, not YAML, or not in the expected shape."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CartLineExpect(_Strict):
    """One expected cart or order line: the catalogue ``item`` name, its ``variant`` name (``None``:
    no variant) and the ``quantity`` (>= 1). Names compare case-insensitively."""

    item: str
    variant: str | None = None
    quantity: int = Field(default=1, ge=1)


class BookingExpect(_Strict):
    """The latest booking of the conversation: ``service`` name, ``time`` (company-local
    ``YYYY-MM-DD HH:MM``), ``status`` (``held``, ``confirmed``, ``cancelled``, ``released``)."""

    service: str | None = None
    time: str | None = None
    status: str | None = None

    @field_validator("time")
    @classmethod
    def _time_shape(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.strptime(value, "%Y-%m-%d %H:%M")
            except ValueError:
                raise ValueError(f"booking time must look like 2027-03-11 10:00, not {value!r}") from None
        return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Expect(_Strict):
    """What must hold after a turn (or at the end). Every key is optional; see the module docstring."""

    cart: list[CartLineExpect] | None = None
    order_lines: list[CartLineExpect] | None = None
    order_total: int | str | None = None
    payment_status: str | None = None
    customer_name: str | None = None
    phone: str | None = None
    address_contains: str | None = None
    booking: BookingExpect | None = None
    no_booking: bool = False
    handoff: bool | None = None
    reply_contains: list[str] = Field(default_factory=list)
    reply_contains_any: list[str] = Field(default_factory=list)
    reply_not_contains: list[str] = Field(default_factory=list)
    reply_language: Literal["en", "ru"] | None = None
    buttons_include: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("reply_contains", "reply_contains_any", "reply_not_contains", "buttons_include"):
                if key in data:
                    data[key] = _as_list(data[key])
            if "booking" in data and data["booking"] is None:
                data.pop("booking")
                data["no_booking"] = True
        return data


class TurnSpec(_Strict):
    """One customer turn: ``say`` a text, ``press`` a button of the last reply (title or 1-based
    index), or ``pay`` the latest payment link; ``expect`` is checked after it."""

    say: str | None = None
    press: str | int | None = None
    pay: bool = False
    expect: Expect | None = None

    @model_validator(mode="before")
    @classmethod
    def _text_shorthand(cls, data: Any) -> Any:
        return {"say": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _exactly_one_action(self) -> TurnSpec:
        actions = sum([self.say is not None, self.press is not None, self.pay])
        if actions != 1:
            raise ValueError("a turn needs exactly one of 'say', 'press' or 'pay: true'")
        if isinstance(self.press, int) and self.press < 1:
            raise ValueError("a button index is 1-based")
        return self

    def describe(self) -> str:
        """Short human form: ``"hi there"``, ``[press Checkout]``, ``[pay]``."""
        if self.say is not None:
            return repr(self.say)
        if self.press is not None:
            return f"[press {self.press}]"
        return "[pay]"


class CompanySpec(_Strict):
    """A company built from catalogue files (owner sheets, Shopify exports, FAQ sheets: whatever
    ``knowledge.importer`` reads); several product/service files are imported together."""

    name: str
    type: Literal["product", "service", "hybrid"] = "product"
    language: Literal["en", "ru"] = "en"
    currency: str = "USD"
    timezone: str = "UTC"
    locale: str | None = None  # the locale money is written in (de_DE); default: the language's usual one
    catalogue: list[str] = Field(min_length=1)
    staff: list[str] = Field(default_factory=list)
    schedule: dict[str, Any] | None = None


class ConversationSpec(_Strict):
    """One conversation: ``id`` (unique in the run), ``company`` key (``None``: the ``--company`` one),
    free-text ``description``, the ``turns`` and the final ``expect``."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    company: str | None = None
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    turns: list[TurnSpec] = Field(min_length=1)
    expect: Expect | None = None


class DialogueFile(_Strict):
    """A parsed dialogue file: ``now`` (aware), company definitions and conversations; ``path`` is
    where it was read from (catalogue paths are relative to its folder)."""

    path: Path
    now: datetime
    companies: dict[str, CompanySpec] = Field(default_factory=dict)
    conversations: list[ConversationSpec] = Field(min_length=1)

    @field_validator("now")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("'now' must be an aware datetime, e.g. 2027-03-09T09:00:00+01:00")
        return value

    @model_validator(mode="after")
    def _references(self) -> DialogueFile:
        seen: set[str] = set()
        for conversation in self.conversations:
            if conversation.id in seen:
                raise ValueError(f"conversation id {conversation.id!r} is used twice")
            seen.add(conversation.id)
        return self

    def catalogue_path(self, name: str) -> Path:
        """A catalogue file named in the YAML, resolved against the YAML file's folder."""
        return (self.path.parent / name).resolve()


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


def load_dialogue_file(path: Path) -> DialogueFile:
    """Read and validate one dialogue YAML file.

    Raises :class:`DialogueSpecError` naming the file and the place of the first problem (unreadable
    file, YAML syntax error with line, unknown key, a turn with no action, a naive ``now``, a missing
    catalogue file, a conversation naming a company the file does not define is allowed: ``--company``).
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DialogueSpecError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise DialogueSpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise DialogueSpecError(f"{path}: expected a mapping with 'now' and 'conversations' at the top")
    # YAML turns "2027-03-09T09:00:00+01:00" into a datetime already; strings are parsed by pydantic.
    try:
        spec = DialogueFile.model_validate({**raw, "path": path})
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        raise DialogueSpecError(f"{path}: {_where(tuple(first['loc']))}: {message}") from exc
    for key, company in spec.companies.items():
        for name in company.catalogue:
            if not spec.catalogue_path(name).is_file():
                raise DialogueSpecError(f"{path}: companies.{key}.catalogue: no file {name!r}")
    return spec
