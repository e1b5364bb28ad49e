"""The account's currency: its billable unit, which every bid is a whole multiple of, and how its amounts are shown.

Google Ads bills, and accepts bids, only in whole multiples of a currency's billable unit: a cent for USD or EUR, a
whole yen for JPY. A bid between two units is refused. The unit is what Google's currency constants state,
`currency_constant.billable_unit_micros` (micros: millionths of the currency), and `BILLABLE_UNIT_MICROS` holds it
for the currencies Daily Bids knows. Amounts are shown with as many decimals as the unit needs: `1.20` in USD, `120`
in JPY.

Why a table here and not a library: babel (CLDR) and ISO 4217 give each currency's decimal digits, which say how
prices are written, not what Google bills in. Google's billable unit is a fact of Google's billing, which it states
per currency, and only it keeps a bid from being refused; so it is the one fact kept here, and the display decimals
follow from it (no dependency for a table this small).

Adding a currency: its billable unit is `SELECT currency_constant.code, currency_constant.billable_unit_micros FROM
currency_constant WHERE currency_constant.code = 'XXX'` in the Google Ads API, or the "Currency codes" table of the
API's reference. Where in doubt between two units, the larger is safe: a multiple of it is a multiple of the smaller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MICROS_PER_UNIT = 1_000_000
CENT = 10_000  # a hundredth of the currency, in micros

# ISO 4217 code → Google's billable unit in micros. KRW: Google's table is the authority; 10 won is the larger of
# the units it could be, so bids in it are accepted whichever it is.
BILLABLE_UNIT_MICROS: dict[str, int] = {
    "AUD": CENT,
    "BRL": CENT,
    "CAD": CENT,
    "CHF": CENT,
    "DKK": CENT,
    "EUR": CENT,
    "GBP": CENT,
    "HKD": CENT,
    "INR": CENT,
    "JPY": MICROS_PER_UNIT,
    "KRW": 10 * MICROS_PER_UNIT,
    "MXN": CENT,
    "NOK": CENT,
    "NZD": CENT,
    "PLN": CENT,
    "SEK": CENT,
    "SGD": CENT,
    "USD": CENT,
    "ZAR": CENT,
}
DEFAULT_CURRENCY = "USD"


class UnknownCurrencyError(ValueError):
    """A currency code whose billable unit Daily Bids does not know."""


@dataclass(frozen=True)
class Currency:
    """One currency: its ISO 4217 `code` and Google's `billable_unit_micros`."""

    code: str
    billable_unit_micros: int

    @property
    def billable_unit(self) -> float:
        """The bid increment, in the currency: 0.01 for USD, 1.0 for JPY."""
        return self.billable_unit_micros / MICROS_PER_UNIT

    @property
    def decimals(self) -> int:
        """The decimals an amount is shown with: as many as the billable unit needs (USD 2, JPY 0)."""
        places = 0
        while (self.billable_unit_micros * 10**places) % MICROS_PER_UNIT:
            places += 1
        return places

    def format(self, amount: float, thousands: bool = False) -> str:
        """`amount` with the currency's decimals and no code: `1.20` in USD, `120` in JPY (`1,234` with thousands)."""
        return f"{amount:{',' if thousands else ''}.{self.decimals}f}"

    def is_multiple(self, amount: float) -> bool:
        """Whether `amount` is a whole multiple of the billable unit (float noise such as 0.1 + 0.2 aside)."""
        steps = amount * MICROS_PER_UNIT / self.billable_unit_micros
        return math.isfinite(steps) and abs(steps - round(steps)) < 1e-6


def currency(code: str) -> Currency:
    """The currency of ISO 4217 `code` (any case); UnknownCurrencyError where its billable unit is not known."""
    normalized = str(code).strip().upper()
    if normalized not in BILLABLE_UNIT_MICROS:
        raise UnknownCurrencyError(
            f"{code!r} is not a currency whose billable unit Daily Bids knows; use one of "
            f"{', '.join(sorted(BILLABLE_UNIT_MICROS))}"
        )
    return Currency(normalized, BILLABLE_UNIT_MICROS[normalized])


def billable_unit(code: str) -> float:
    """The bid increment of `code`, in the currency: `billable_unit("USD")` 0.01, `billable_unit("JPY")` 1.0."""
    return currency(code).billable_unit


def decimals(code: str) -> int:
    """The decimals amounts of `code` are shown with: USD 2, JPY 0."""
    return currency(code).decimals


def format_amount(amount: float, code: str, thousands: bool = False) -> str:
    """`amount` as the currency shows it, without the code: `1.20` (USD), `120` (JPY)."""
    return currency(code).format(amount, thousands)
