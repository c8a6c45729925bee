"""Money helpers: amounts are integers in minor units with an ISO-4217 currency."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO-4217 minor-unit exponents that differ from 2 (source: ISO 4217 list / Stripe zero-decimal currencies).
_EXPONENTS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
    "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


def exponent(currency: str) -> int:
    """Number of decimal places of ``currency`` (2 unless listed otherwise)."""
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: Decimal, currency: str) -> int:
    """Convert a major-unit ``Decimal`` (``Decimal('19.90')``) to minor units (``1990``), half-up."""
    q = Decimal(1).scaleb(-exponent(currency))
    return int((amount.quantize(q, rounding=ROUND_HALF_UP) * (10 ** exponent(currency))).to_integral_value())

