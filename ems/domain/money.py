"""Money: an exact ``Decimal`` amount with an ISO 4217 currency.

Rounding rule (documented once, used everywhere): amounts are kept exact while they
are computed; a *priced line item* is rounded to the currency's minor unit with
``ROUND_HALF_EVEN`` (banker's rounding, what EU e-invoicing and most ledgers use),
and a total is the sum of its rounded line items, so a receipt always adds up.
Floats never enter: constructing Money from a float is a ``TypeError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# Minor-unit exponents (ISO 4217) for the currencies a charging operator is likely to bill in.
MINOR_UNITS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "ISK": 0,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "RON": 2,
    "BGN": 2,
    "INR": 2,
    "CNY": 2,
    "JPY": 0,
    "KRW": 0,
    "AUD": 2,
    "NZD": 2,
    "CAD": 2,
    "SGD": 2,
    "HKD": 2,
    "AED": 2,
    "ZAR": 2,
    "BRL": 2,
    "MXN": 2,
    "TRY": 2,
}


MAX_AMOUNT = Decimal("1000000")
"""The largest amount one money movement (top-up, payment, refund) may carry, in the currency's
major units (1,000,000.00 EUR; 1,000,000 JPY). Far below what the ledger's 64-bit minor-unit
columns hold (9.2e18), so no sum of bounded amounts can overflow them."""
MAX_BALANCE = Decimal("10000000")
"""The most an account may hold (available plus held), in major units: a top-up or refund
that would pass it is refused (422)."""


class CurrencyError(ValueError):
    """An unknown currency code, or two different currencies mixed in one operation."""


def check_currency(code: str) -> str:
    """Return ``code`` if it is a supported ISO 4217 code, else raise ``CurrencyError``."""
    if code not in MINOR_UNITS:
        raise CurrencyError(f"unknown currency {code!r}")
    return code


def parse_decimal(text: str | int | Decimal) -> Decimal:
    """Parse a money or price literal exactly; floats are refused (they are not exact)."""
    if not isinstance(text, str | int | Decimal):
        raise TypeError(f"money must be a str, int or Decimal, not {type(text).__name__}")
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a decimal number: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite decimal number: {text!r}")
    return value


def minor_str(minor: int, currency: str) -> str:
    """``Money.from_minor(minor, currency).as_str()`` without making the Money: the decimal string
    of a whole number of minor units (``1600, "EUR"`` -> ``"16.00"``), for reports that print
    thousands of stored amounts."""
    exponent = MINOR_UNITS[check_currency(currency)]
    if exponent == 0:
        return str(minor)
    major, rest = divmod(abs(minor), 10**exponent)
    return f"{'-' if minor < 0 else ''}{major}.{rest:0{exponent}d}"


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money.amount must be a Decimal, got {type(self.amount).__name__}")
        check_currency(self.currency)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        return cls(parse_decimal(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        """From an integer count of minor units (cents): how the ledger stores money."""
        return cls(Decimal(minor).scaleb(-MINOR_UNITS[check_currency(currency)]), currency)

    @property
    def exponent(self) -> int:
        return MINOR_UNITS[self.currency]

    def rounded(self) -> Money:
        """Rounded to the currency's minor unit, half to even."""
        quantum = Decimal(1).scaleb(-self.exponent)
        return Money(self.amount.quantize(quantum, rounding=ROUND_HALF_EVEN), self.currency)

    def to_minor(self) -> int:
        """Integer minor units; the amount must already be a whole number of them."""
        scaled = self.amount.scaleb(self.exponent)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{self} has more precision than {self.currency} minor units; round it first")
        return int(scaled)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyError(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise TypeError("multiply money by a Decimal, not a float")
        return Money(self.amount * factor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __str__(self) -> str:
        return f"{self.rounded().amount} {self.currency}"

    def as_str(self) -> str:
        """The rounded amount as a decimal string, e.g. ``"16.00"``: how the API shows money."""
        return str(self.rounded().amount)
