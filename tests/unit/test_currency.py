"""The account's currency: every bid a whole multiple of its billable unit, shown with its decimals."""

import csv
import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from daily_bids import currency as currencies
from daily_bids.bidding.decision import bid_rule_note, decide_bids
from daily_bids.bidding.optimizer import BidRange, highest_bid_below
from daily_bids.bidding.policy import BidPolicy
from daily_bids.models.value_per_click import conservative_value
from daily_bids.serving.ads_editor import ads_editor_csv
from daily_bids.serving.publishing import change_summary
from daily_bids.settings import Settings, SettingsError
from resources.deployment import build_resources

DAY = dt.date(2025, 3, 1)
# Per currency: caps set in it, and the size of a typical value per click (USD 1 is about JPY 150).
ACCOUNTS = {
    "USD": {"min_bid": 0.05, "max_bid": 20.0, "scale": 1.0},
    "JPY": {"min_bid": 5.0, "max_bid": 3000.0, "scale": 150.0},
}


def test_the_billable_unit_and_decimals_of_a_currency():
    assert (currencies.billable_unit("USD"), currencies.decimals("USD")) == (0.01, 2)
    assert (currencies.billable_unit("JPY"), currencies.decimals("JPY")) == (1.0, 0)
    assert currencies.currency("jpy").billable_unit_micros == 1_000_000
    assert currencies.format_amount(1.2, "USD") == "1.20"
    assert currencies.format_amount(120.0, "JPY") == "120"
    assert currencies.format_amount(12345.0, "JPY", thousands=True) == "12,345"
    with pytest.raises(currencies.UnknownCurrencyError, match="'XYZ' is not a currency"):
        currencies.currency("XYZ")
    assert BidPolicy().bid_increment == 0.01
    assert BidPolicy(currency="JPY", min_bid=5, max_bid=3000).bid_increment == 1.0


def test_the_highest_bid_below_the_value_is_the_value_rounded_up_less_one_increment():
    values = np.array([0.57, 0.571, 120.0, 120.4, 0.8 * 0.7])
    assert list(highest_bid_below(values)) == [0.56, 0.57, 119.99, 120.39, 0.55]
    assert list(highest_bid_below(values, 1.0)) == [0.0, 0.0, 119.0, 120.0, 0.0]


def _policy(code: str, **fields) -> BidPolicy:
    caps = {name: ACCOUNTS[code][name] for name in ("min_bid", "max_bid")}
    return BidPolicy(currency=code, **caps, **fields)


def _predictions(values, cv) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame(
        {
            "date": pd.Timestamp(DAY),
            "effective_date": pd.Timestamp(DAY + dt.timedelta(days=1)),
            "keyword_id": np.arange(1, n + 1),
            "campaign": "c",
            "ad_group": "g",
            "campaign_id": "1",
            "ad_group_id": "2",
            "keyword": [f"k{i}" for i in range(n)],
            "match_type": "Exact",
            "expected_clicks": 5.0,
            "expected_value_per_click": values,
            "prior_value_per_click": values,
            "value_per_click_cv": cv,
            "history_days": 28,
            "model_version": "test",
        }
    )


def _landscape():
    from daily_bids.bidding.landscape import BidLandscape

    return BidLandscape(
        click_elasticity=0.7,
        click_elasticity_by_position=0.0,
        click_elasticity_by_share=-0.8,
        mean_cpc_to_bid=0.8,
        mean_impression_share=0.7,
        cost_elasticity=1.2,
        cost_level=0.0,
        day_of_week_effects=(0.0,) * 7,
        trained_through=DAY,
        training_rows=1000,
        varied_rows=500,
    )


def _context(in_force: np.ndarray) -> pd.DataFrame:
    n = len(in_force)
    return pd.DataFrame(
        {
            "keyword_id": np.arange(1, n + 1),
            "bid_in_force": in_force,
            "reference_bid": in_force,
            "paid_bid": in_force,
            "base_cpc_to_bid": 0.8,
            "base_impression_share": np.linspace(0.4, 0.95, n),
            "log1p_base_clicks": np.log1p(5.0),
            "day_of_week": 5.0,
        }
    )


def _whole_multiples(amounts: pd.Series, increment: float) -> bool:
    steps = amounts.to_numpy(dtype="float64") / increment
    return bool(np.all(np.abs(steps - np.round(steps)) < 1e-6))


@settings(max_examples=150, deadline=None)
@given(
    code=st.sampled_from(sorted(ACCOUNTS)),
    rows=st.lists(
        # value per click (in USD-sized units), its spread, and the bid in force as a share of the value
        st.tuples(st.floats(0.02, 15.0), st.floats(0.0, 1.5), st.floats(0.2, 3.0)),
        min_size=1,
        max_size=25,
    ),
    rule=st.sampled_from(["fixed_margin", "profit_optimal"]),
    with_landscape=st.booleans(),
    exploration=st.floats(0.0, 0.5),
    max_change=st.sampled_from([0.0, 0.3]),
)
@example(code="JPY", rows=[(0.8, 0.0, 1.0)], rule="fixed_margin", with_landscape=False, exploration=0.0, max_change=0.0)
def test_every_bid_is_a_whole_multiple_of_the_increment_and_keeps_the_money_rule(
    code, rows, rule, with_landscape, exploration, max_change
):
    scale = ACCOUNTS[code]["scale"]
    value, cv, share = map(np.array, zip(*rows))
    value = value * scale
    policy = _policy(
        code, policy=rule, exploration_share=exploration, exploration_spread=0.5, max_bid_change=max_change
    )
    in_force = np.round(value * share / policy.bid_increment) * policy.bid_increment  # the reports' max CPC
    in_force = np.maximum(in_force, policy.bid_increment)
    predictions = _predictions(value, cv)
    decision = decide_bids(predictions, policy, _landscape() if with_landscape else None, _context(in_force))
    bids = decision.bids.set_index("keyword_id")
    assert _whole_multiples(bids["bid"], policy.bid_increment)
    assert (bids["bid"] < bids["expected_value_per_click"]).all()
    assert bids["bid"].between(policy.min_bid, policy.max_bid).all()
    limit = pd.Series(conservative_value(value, cv, policy.value_quantile), index=predictions["keyword_id"])
    assert (bids["expected_cost_per_click"] <= limit[bids.index] + 1e-9).all()
    assert set(decision.unprofitable["keyword_id"]) | set(bids.index) == set(predictions["keyword_id"])


@settings(max_examples=100, deadline=None)
@given(
    code=st.sampled_from(sorted(ACCOUNTS)),
    values=st.lists(st.floats(0.01, 30.0), min_size=1, max_size=20),
    bids=st.lists(st.floats(0.0, 40.0), min_size=1, max_size=20),
)
def test_a_range_its_candidates_and_its_clip_are_whole_increments(code, values, bids):
    """The optimizer's own pieces: the range's ends, the grid, the candidates around a turning point and a clipped
    (explored) bid are all whole multiples of the increment."""
    scale, policy = ACCOUNTS[code]["scale"], _policy(code)
    n = min(len(values), len(bids))
    value, bid = np.array(values[:n]) * scale, np.array(bids[:n]) * scale
    ranges = BidRange.of(value, bid, policy.min_bid, policy.max_bid, 0.3, None, policy.bid_increment)
    allowed = ranges.allowed
    for amounts in (
        ranges.low[allowed],
        ranges.high[allowed],
        ranges.candidates(7)[allowed].ravel(),
        ranges.around(bid[:, None])[allowed].ravel(),
        ranges.clip(bid * 1.137)[allowed],
    ):
        assert _whole_multiples(pd.Series(amounts, dtype="float64"), policy.bid_increment)
    assert np.all(ranges.high[allowed] < value[allowed])


def test_the_ads_editor_csv_writes_max_cpc_with_the_currency_decimals():
    policy = _policy("JPY", policy="fixed_margin", exploration_share=0.0, target_margin=0.25)
    decision = decide_bids(_predictions([160.9, 2000.0], [np.nan, np.nan]), policy)
    assert list(decision.bids["bid"]) == [120.0, 1500.0]  # 160.9 × 0.75 = 120.675, down to the yen
    rows = list(csv.DictReader(io.StringIO(ads_editor_csv(decision.bids, currency="JPY").decode(), newline="")))
    assert [row["Max CPC"] for row in rows] == ["120", "1500"]
    # The default stays USD's cents, for callers that name no currency.
    usd = decision.bids.assign(bid=[1.2, 15.0])
    rows = list(csv.DictReader(io.StringIO(ads_editor_csv(usd).decode(), newline="")))
    assert [row["Max CPC"] for row in rows] == ["1.20", "15.00"]


def test_notes_and_change_summaries_show_amounts_in_the_currency():
    policy = _policy("JPY", value_per_click=150.0)
    note = bid_rule_note({"configured_value": 3, "fixed_margin": 2}, 0, policy)
    assert "valued at value_per_click (BIDS_VALUE_PER_CLICK) 150, and 3 keywords bid the same 105 = 150 x" in note
    assert "rounded down to whole multiples of 1 JPY" in note
    assert "rounded down to the cent" in bid_rule_note({"fixed_margin": 2}, 0, BidPolicy())
    ledger = pd.DataFrame({"keyword_id": [1, 2], "bid": [120.0, 80.0], "previous_bid": [100.0, 90.0]})
    summary = change_summary(ledger, currency="JPY")
    assert (summary["largest_increase"], summary["largest_decrease"]) == (20.0, -10.0)
    assert summary["largest_increase_keyword"] == "keyword 1: 100 → 120"


def test_bids_currency_is_a_known_code_and_the_caps_are_whole_units_of_it(tmp_path):
    def policy(**variables):
        return build_resources(Settings.from_environment({"BIDS_WAREHOUSE": str(tmp_path), **variables}))["bid_policy"]

    assert Settings.defaults().currency == "USD"
    assert policy().bid_increment == 0.01
    yen = policy(BIDS_CURRENCY="jpy", BIDS_MIN_BID="5", BIDS_MAX_BID="3000")
    assert (yen.currency, yen.bid_increment, yen.min_bid, yen.max_bid) == ("JPY", 1.0, 5.0, 3000.0)
    with pytest.raises(SettingsError, match=r"^BIDS_CURRENCY='XYZ' is not a currency .*; use one of .*JPY.*USD"):
        policy(BIDS_CURRENCY="XYZ")
    # The cent defaults are no caps in yen: refused, naming the variables, rather than rounded in silence.
    with pytest.raises(
        ValueError,
        match=r"^bid policy: BIDS_MIN_BID 0.05 is not a whole multiple of the bid increment 1 of BIDS_CURRENCY JPY: "
        r"set BIDS_MIN_BID and BIDS_MAX_BID in JPY$",
    ):
        policy(BIDS_CURRENCY="JPY")
    with pytest.raises(
        ValueError, match=r"^bid policy: BIDS_MIN_BID 0.055 is not a whole multiple .* of BIDS_CURRENCY"
    ):
        policy(BIDS_MIN_BID="0.055")
    with pytest.raises(ValidationError, match="min_bid 0.5 and max_bid 20.5 are not a whole multiple"):
        BidPolicy(currency="JPY", min_bid=0.5, max_bid=20.5)
