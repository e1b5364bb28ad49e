"""The bid policy: margins, caps, the rule that chooses bids, and its limits on moves and exploration.

It is also the `keyword_bids` asset's run configuration; `daily_bids.bidding.decision` applies it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daily_bids import currency as currencies


class BidPolicy(BaseModel):
    """Margin and caps. Also the `keyword_bids` asset's run configuration."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)  # inf and nan are never a setting

    target_margin: float = Field(
        0.3, gt=0.0, lt=1.0, description="Share of the expected value per click kept as margin."
    )
    min_bid: float = Field(0.05, gt=0.0, description="Lowest max CPC the ad platform accepts.")
    max_bid: float = Field(20.0, gt=0.0, description="Highest max CPC the platform will ever set.")
    currency: str = Field(
        currencies.DEFAULT_CURRENCY,
        description="The account's currency (ISO 4217): every bid is a whole multiple of its billable unit, the bid "
        "increment (USD 0.01, JPY 1), and min_bid and max_bid must be too.",
    )
    min_history_days: int = Field(7, ge=1, le=28, description="Days of history below which a keyword is a cold start.")
    cold_start_margin: float = Field(
        0.5, gt=0.0, lt=1.0, description="Margin for cold-start keywords (wider: less known)."
    )
    value_quantile: float = Field(
        0.1,
        gt=0.0,
        lt=0.5,
        description="The money rule's conservative value: each bid's expected cost per click stays at or below this "
        "quantile of the keyword's value per click (its posterior), so a keyword known little is bid cautiously.",
    )
    value_per_click: float | None = Field(
        None,
        gt=0.0,
        description="Value of a click, for reports without conversion value (impressions and clicks only).",
    )
    max_daily_change: float = Field(
        0.5, gt=0.0, description="A bid that moves by more than this share of yesterday's bid counts as a large move."
    )
    max_share_large_moves: float = Field(
        0.25,
        gt=0.0,
        le=1.0,
        description="The share of keywords with a large move "
        "above which the day's bids are implausible and are not published.",
    )
    policy: Literal["fixed_margin", "profit_optimal"] = Field(
        "profit_optimal",
        description="How bids are chosen: `profit_optimal` (from the bid landscape, falling back to "
        "the fixed margin where there is none) or `fixed_margin`.",
    )
    max_bid_change: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="The largest relative change from the bid in force (the reports' max CPC) in one day, under "
        "every policy; the money rule still wins, lowering a bid further where the capped one would lose money. "
        "0 turns the cap off.",
    )
    exploration_share: float = Field(
        0.1,
        ge=0.0,
        le=0.5,
        description="Share of keywords whose bid is perturbed each day, so the landscape sees bids vary.",
    )
    exploration_spread: float = Field(
        0.2,
        ge=0.0,
        lt=1.0,
        description="An explored bid is multiplied by a factor within 1 ± this (then kept inside every rule).",
    )
    exploration_seed: int = Field(0, description="Seed of the exploration draws (with the day and keyword).")
    campaign_budgets: dict[str, float] = Field(
        default_factory=dict,
        description="Daily budget per campaign name (profit_optimal): expected spend stays within it.",
    )

    @property
    def account_currency(self) -> currencies.Currency:
        """The account's currency: its billable unit and display decimals (`daily_bids.currency`)."""
        return currencies.currency(self.currency)

    @property
    def bid_increment(self) -> float:
        """The step every bid is a whole multiple of: the currency's billable unit (USD 0.01, JPY 1.0)."""
        return self.account_currency.billable_unit

    @property
    def change_cap(self) -> float | None:
        """The change cap, or None where it is turned off (`max_bid_change` 0)."""
        return self.max_bid_change or None

    @field_validator("currency", mode="before")
    @classmethod
    def _known_currency(cls, value):
        try:
            return currencies.currency(value).code
        except currencies.UnknownCurrencyError as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="after")
    def _caps_in_order(self):
        # Caps between two increments are refused, not rounded: a cap rounded in silence is not the one set, and caps
        # left at their cent defaults in a currency without cents (JPY: 0.05 to 20 yen) are a setting forgotten.
        unit = self.account_currency
        off = [name for name in ("min_bid", "max_bid") if not unit.is_multiple(getattr(self, name))]
        if off:
            raise ValueError(
                " and ".join(f"{name} {getattr(self, name):g}" for name in off)
                + (" is" if len(off) == 1 else " are")
                + f" not a whole multiple of the bid increment {unit.format(unit.billable_unit)} of currency "
                f"{unit.code}: set min_bid and max_bid in {unit.code}"
            )
        if self.min_bid > self.max_bid:
            raise ValueError(f"min_bid {self.min_bid} is above max_bid {self.max_bid}")
        return self
