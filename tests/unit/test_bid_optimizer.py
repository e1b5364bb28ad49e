"""Property checks of the profit-optimal bidding math, budgets and exploration (no Dagster)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from daily_bids.bidding.decision import bid_rule_note, clicks_note, decide_bids, economics_view
from daily_bids.bidding.optimizer import BidRange, explore, optimize
from daily_bids.bidding.policy import BidPolicy

DAY = dt.date(2025, 3, 1)


def _auction(volume, price_scale):
    """An analytic landscape of the kind auctions give: win rate 1 − exp(−bid/scale), price rising with it."""

    def response(bids):
        share = 1.0 - np.exp(-bids / price_scale[:, None])
        return volume[:, None] * share, bids * (0.4 + 0.5 * share)

    return response


def _profit(response, value, bids):
    clicks, cost_per_click = response(bids)
    return clicks * (value[:, None] - cost_per_click)


keywords = st.lists(
    st.tuples(st.floats(0.1, 20.0), st.floats(0.05, 15.0), st.floats(0.2, 3.0), st.floats(1.0, 500.0)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(rows=keywords, max_change=st.floats(0.05, 1.0), caps=st.tuples(st.floats(0.01, 0.5), st.floats(0.5, 30.0)))
@example(rows=[(1.0, 0.0625, 1.0, 1.0)], max_change=0.5, caps=(0.10000000000000002, 1.0))  # float noise on a cap
def test_the_chosen_bid_obeys_every_rule_and_no_allowed_bid_earns_more(rows, max_change, caps):
    value, in_force, scale_share, volume = map(np.array, zip(*rows))
    min_bid, max_bid = caps
    ranges = BidRange.of(value, in_force, min_bid, max_bid, max_change)
    response = _auction(volume, value * scale_share)
    chosen = optimize(value, ranges, response)
    bid = chosen.bid[ranges.allowed]
    # Caps are whole cents read through float noise: a min bid of 0.1 + 2e-17 is the 10 cents it was set to.
    assert np.all(bid < value[ranges.allowed]) and np.all((bid >= min_bid - 1e-9) & (bid <= max_bid + 1e-9))
    # Within the change cap, except where the cap's window misses the caps and the invariant: then the nearest rule.
    cap_ok = np.abs(bid / in_force[ranges.allowed] - 1.0) <= max_change + 0.01 / in_force[ranges.allowed] + 1e-9
    rules_win = (in_force * (1 - max_change) > np.minimum(max_bid, value) - 0.01) | (
        in_force * (1 + max_change) < min_bid
    )
    assert np.all(cap_ok | rules_win[ranges.allowed])
    # A grid of every cent inside the allowed range finds no bid with more expected profit (within 1%).
    for k in np.flatnonzero(ranges.allowed):
        cents = np.arange(round(ranges.low[k] * 100), round(ranges.high[k] * 100) + 1) / 100.0
        assert len(cents) >= 1
        fine = _profit(
            lambda b: tuple(x for x in response(np.broadcast_to(b, (len(value), len(cents))))),
            value,
            cents[None, :].repeat(len(value), axis=0),
        )[k]
        best = _profit(response, value, np.full((len(value), 1), chosen.bid[k]))[k, 0]
        assert best >= fine.max() - 0.01 * abs(fine.max()) - 1e-9
    # A keyword whose value is below the minimum bid gets none.
    assert np.all(np.isnan(chosen.bid[~ranges.allowed]))


def _exact_pricing(landscape, context):
    """The landscape's pricing as decide_bids builds it: an ExactResponse over every keyword of `context`."""
    from daily_bids.bidding.decision import _Pricing

    n = len(context)
    predictions = pd.DataFrame({"keyword_id": context["keyword_id"], "expected_clicks": np.linspace(0.5, 40.0, n)})
    aligned = context.set_index("keyword_id")  # one context row per prediction, in their order
    return _Pricing(predictions, landscape, aligned, np.zeros(n, dtype=bool), context["bid_in_force"].to_numpy())


landscape_keywords = st.lists(
    st.tuples(
        st.floats(0.1, 20.0),
        st.floats(0.05, 15.0),
        st.floats(0.5, 2.0),  # value, bid in force, paid bid / bid in force
        st.one_of(st.just(np.nan), st.floats(0.0, 1.2)),
        st.one_of(st.just(np.nan), st.floats(0.0, 1.0)),  # cpc/bid, share
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(
    rows=landscape_keywords,
    elasticities=st.tuples(st.floats(-0.5, 3.5), st.floats(-2.0, 2.0), st.floats(-2.0, 2.0)),  # e0, e1, e2
    cost=st.tuples(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 3.0)), st.floats(-0.5, 0.5)),  # f, c0
    max_change=st.one_of(st.none(), st.floats(0.05, 1.0)),
    caps=st.tuples(st.floats(0.01, 0.5), st.floats(0.5, 30.0)),
)
def test_on_a_landscape_the_bid_is_the_best_whole_cent_of_the_range(rows, elasticities, cost, max_change, caps):
    from daily_bids.bidding.landscape import BidLandscape

    value, in_force, paid_to_bid, cpc_to_bid, share = map(np.array, zip(*rows))
    landscape = BidLandscape(
        *elasticities,
        mean_cpc_to_bid=0.8,
        mean_impression_share=0.6,
        cost_elasticity=cost[0],
        cost_level=cost[1],
        day_of_week_effects=(0.0,) * 7,
        trained_through=DAY,
        training_rows=1000,
        varied_rows=500,
    )
    context = pd.DataFrame(
        {
            "keyword_id": np.arange(1, len(rows) + 1),
            "bid_in_force": in_force,
            "paid_bid": np.where(np.isnan(cpc_to_bid), np.nan, in_force * paid_to_bid),
            "base_cpc_to_bid": cpc_to_bid,
            "base_impression_share": share,
        }
    )
    pricing = _exact_pricing(landscape, context)
    ranges = BidRange.of(value, in_force, *caps, max_change)
    chosen = optimize(value, ranges, pricing)
    on_grid = optimize(value, ranges, pricing.response)  # a plain Response: the 25-bid grid
    allowed = ranges.allowed
    assert np.all(np.isnan(chosen.bid[~allowed]))
    bid = chosen.bid[allowed]
    assert np.all((bid >= ranges.low[allowed]) & (bid <= ranges.high[allowed]) & (bid < value[allowed]))
    assert np.allclose(bid * 100, np.round(bid * 100), rtol=0, atol=1e-6)  # whole cents
    # Every cent of each range, at once (rows padded with their low end).
    counts = np.where(allowed, np.round((ranges.high - ranges.low) * 100).astype(int) + 1, 1)
    steps = np.arange(counts.max())
    cents = np.round(ranges.low[:, None] * 100 + np.minimum(steps, counts[:, None] - 1)) / 100.0
    every_cent = _profit(pricing, value, cents).max(axis=1)[allowed]
    exact = _profit(pricing, value, np.where(allowed, chosen.bid, ranges.low)[:, None])[allowed, 0]
    grid = _profit(pricing, value, np.where(allowed, on_grid.bid, ranges.low)[:, None])[allowed, 0]
    tolerance = 1e-9 * np.abs(every_cent) + 1e-12
    assert np.all(np.abs(exact - every_cent) <= tolerance)
    assert np.all(exact >= grid - tolerance)


def test_budgets_are_met_and_beat_cutting_every_bid_alike():
    rng = np.random.default_rng(3)
    n = 400
    value = rng.lognormal(np.log(2.0), 0.6, n)
    volume = rng.lognormal(np.log(20.0), 1.0, n)
    campaign = np.where(np.arange(n) < 200, "Hiking 001", "Camping 002")
    response = _auction(volume, value * rng.lognormal(np.log(0.5), 0.35, n))
    # Yesterday's bids scattered around the optimum; today's may move by ±30%.
    in_force = np.round(
        optimize(value, BidRange.of(value, np.full(n, np.nan), 0.05, 20.0, None), response).bid
        * rng.uniform(0.8, 1.2, n),
        2,
    )
    ranges = BidRange.of(value, in_force, 0.05, 20.0, 0.3)
    free = optimize(value, ranges, response)
    free_spend = pd.Series(free.expected_spend).groupby(campaign).sum()
    budgets = {"Hiking 001": 0.75 * free_spend["Hiking 001"]}  # Camping has no budget
    constrained = optimize(value, ranges, response, campaign, budgets)
    spend = pd.Series(constrained.expected_spend).groupby(campaign).sum()
    assert spend["Hiking 001"] <= budgets["Hiking 001"] + 1e-6
    assert spend["Camping 002"] == pytest.approx(free_spend["Camping 002"])
    # Equal scaling: every Hiking bid times one factor, the largest that meets the budget.
    hiking = campaign == "Hiking 001"
    low, high = 0.0, 1.0
    for _ in range(60):
        factor = (low + high) / 2
        clicks, cost = response(np.where(hiking, ranges.clip(free.bid * factor), free.bid)[:, None])
        low, high = (
            (factor, high) if (clicks[hiking, 0] * cost[hiking, 0]).sum() <= budgets["Hiking 001"] else (low, factor)
        )
    scaled = np.where(hiking, ranges.clip(free.bid * low), free.bid)[:, None]
    scaled_profit = _profit(response, value, scaled)[hiking, 0].sum()
    optimal_profit = _profit(response, value, constrained.bid[:, None])[hiking, 0].sum()
    assert optimal_profit > scaled_profit


def test_exploration_is_deterministic_bounded_and_independent_of_the_account():
    ids = np.arange(100_001, 120_001)
    bids = np.full(len(ids), 1.0)
    ranges = BidRange(np.full(len(ids), 0.05), np.full(len(ids), 1.15))  # the rules allow up to 1.15 here
    first, explored = explore(bids, ids, DAY, 7, 0.1, 0.2, ranges)
    again, explored_again = explore(bids, ids, DAY, 7, 0.1, 0.2, ranges)
    assert np.array_equal(first, again) and np.array_equal(explored, explored_again)
    assert abs(explored.mean() - 0.1) < 0.01
    assert np.all(first[~explored] == 1.0)
    assert np.all((first[explored] >= 0.8) & (first[explored] <= 1.15))  # ±20%, then inside the rules
    assert (first[explored] == 1.15).any() and (first[explored] < 1.0).any()
    other_day, other_explored = explore(bids, ids, DAY + dt.timedelta(days=1), 7, 0.1, 0.2, ranges)
    assert (explored != other_explored).mean() > 0.1
    half, half_explored = explore(
        bids[:5000], ids[:5000], DAY, 7, 0.1, 0.2, BidRange(ranges.low[:5000], ranges.high[:5000])
    )
    assert np.array_equal(half_explored, explored[:5000]) and np.array_equal(half, first[:5000])


def _predictions(n: int, value: float = 2.0, history: int = 28) -> pd.DataFrame:
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
            "expected_value_per_click": value,
            "prior_value_per_click": value,
            "history_days": history,
            "model_version": "test",
        }
    )


def test_explored_bids_are_flagged_and_stay_below_value():
    policy = BidPolicy(policy="fixed_margin", exploration_share=0.3, exploration_spread=0.5)
    decision = decide_bids(_predictions(500), policy, context=_context(500))
    bids = decision.bids
    assert bids["exploration"].sum() > 100
    assert (bids["bid"] < bids["expected_value_per_click"]).all()
    assert set(bids.loc[~bids["exploration"], "bid"]) == {1.4}
    assert bids.loc[bids["exploration"], "bid"].between(0.7, 1.99).all()
    # Cold starts are never explored: they keep the conservative rule.
    cold = decide_bids(_predictions(50, history=2), policy, context=_context(50)).bids
    assert not cold["exploration"].any() and (cold["bid_basis"] == "cold_start").all()
    # Without the bid in force in the reports (no max CPC), exploring would teach nothing: no keyword is explored.
    assert not decide_bids(_predictions(500), policy).bids["exploration"].any()


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


def _context(n: int, bid_in_force: float = 1.4) -> pd.DataFrame:
    share = np.linspace(0.4, 0.95, n)
    return pd.DataFrame(
        {
            "keyword_id": np.arange(1, n + 1),
            "bid_in_force": bid_in_force,
            "reference_bid": bid_in_force,
            "paid_bid": bid_in_force,
            "base_cpc_to_bid": 0.8,
            "base_impression_share": share,
            "log1p_base_clicks": np.log1p(5.0),
            "day_of_week": 5.0,
        }
    )


def test_profit_optimal_bids_beat_the_fixed_margin_on_their_landscape_and_keep_to_the_budget():
    predictions = _predictions(200).assign(campaign=np.where(np.arange(200) < 100, "Hiking 001", "Camping 002"))
    policy = BidPolicy(exploration_share=0.0)
    decision = decide_bids(predictions, policy, _landscape(), _context(200))
    bids = decision.bids
    assert (bids["bid_basis"] == "profit_optimal").all()
    assert (bids["bid"] < bids["expected_value_per_click"]).all()
    assert bids["bid"].between(1.4 * 0.7 - 1e-9, 1.4 * 1.3 + 1e-9).all()  # within 30% of the bid in force
    economics = decision.economics
    assert economics.loc["chosen", "expected_profit"] > economics.loc["fixed_margin", "expected_profit"]
    assert bids["expected_profit"].sum() == pytest.approx(economics.loc["chosen", "expected_profit"])
    # A budget on one campaign: its expected spend fits, the other campaign's bids do not change.
    spend = (bids["expected_clicks"] * bids["expected_cost_per_click"]).groupby(bids["campaign"]).sum()
    budget = 0.8 * spend["Hiking 001"]
    limited = decide_bids(
        predictions, policy.model_copy(update={"campaign_budgets": {"Hiking 001": budget}}), _landscape(), _context(200)
    ).bids
    limited_spend = (limited["expected_clicks"] * limited["expected_cost_per_click"]).groupby(limited["campaign"]).sum()
    assert limited_spend["Hiking 001"] <= budget + 1e-6
    camping = limited["campaign"] == "Camping 002"
    assert np.array_equal(limited.loc[camping, "bid"], bids.loc[bids["campaign"] == "Camping 002", "bid"])


def test_without_a_landscape_profit_optimal_falls_back_to_the_fixed_margin():
    decision = decide_bids(_predictions(20), BidPolicy(exploration_share=0.0))
    assert set(decision.bids["bid_basis"]) == {"fixed_margin"} and set(decision.bids["bid"]) == {1.4}
    assert "fixed margin" in decision.landscape_note


def test_campaign_budgets_file_errors_name_file_row_and_column(tmp_path):
    from daily_bids.bidding.budgets import BudgetFileError, read_campaign_budgets

    good = tmp_path / "budgets.csv"
    good.write_text('campaign,budget\nHiking 001,250\n"Camping, 002","1,000.50"\n')
    assert read_campaign_budgets(str(good)) == {"Hiking 001": 250.0, "Camping, 002": 1000.5}
    bad = tmp_path / "bad.csv"
    bad.write_text("campaign,budget\nHiking 001,250\nCamping 002,lots\n")
    with pytest.raises(BudgetFileError, match=r"bad.csv: row 3: column budget: 'lots' is not a number"):
        read_campaign_budgets(str(bad))
    (tmp_path / "twice.csv").write_text("campaign,budget\nA,1\nA,2\n")
    with pytest.raises(BudgetFileError, match="row 3: campaign 'A' is listed twice"):
        read_campaign_budgets(str(tmp_path / "twice.csv"))
    (tmp_path / "columns.csv").write_text("name,amount\nA,1\n")
    with pytest.raises(BudgetFileError, match=r"missing column\(s\) \['budget', 'campaign'\]"):
        read_campaign_budgets(str(tmp_path / "columns.csv"))
    with pytest.raises(BudgetFileError, match="cannot read"):
        read_campaign_budgets(str(tmp_path / "absent.csv"))


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(0.1, 10.0), st.floats(0.0, 3.0), st.floats(0.1, 8.0)),  # value, its cv, bid in force
        min_size=1,
        max_size=40,
    ),
    quantile=st.floats(0.02, 0.45),
    with_landscape=st.booleans(),
    exploration=st.floats(0.0, 0.5),
)
def test_no_bid_expects_to_pay_more_than_the_conservative_value(rows, quantile, with_landscape, exploration):
    """The money rule on what we are sure of: at every bid, explored ones included, the expected cost per click is
    at or below the value's conservative quantile (and the bid below its mean)."""
    from daily_bids.models.value_per_click import conservative_value

    value, cv, in_force = map(np.array, zip(*rows))
    n = len(rows)
    predictions = _predictions(n).assign(expected_value_per_click=value, value_per_click_cv=cv)
    policy = BidPolicy(value_quantile=quantile, exploration_share=exploration, exploration_spread=0.5)
    context = _context(n).assign(bid_in_force=in_force, reference_bid=in_force, paid_bid=in_force)
    decision = decide_bids(predictions, policy, _landscape() if with_landscape else None, context)
    bids = decision.bids.set_index("keyword_id")
    limit = pd.Series(conservative_value(value, cv, quantile), index=predictions["keyword_id"])[bids.index]
    assert (bids["expected_cost_per_click"] <= limit + 1e-9).all()
    assert (bids["bid"] < bids["expected_value_per_click"]).all()
    # A keyword whose conservative value is below the minimum bid's cost gets no bid at all.
    assert set(decision.unprofitable["keyword_id"]) | set(bids.index) == set(predictions["keyword_id"])


@settings(max_examples=100, deadline=None)
@given(limits=st.lists(st.floats(0.001, 12.0), min_size=1, max_size=30), high=st.floats(0.05, 20.0))
def test_the_money_rules_ceiling_is_the_highest_cent_that_keeps_to_it(limits, high):
    limit = np.array(limits)
    pricing = _exact_pricing(_landscape(), _context(len(limit)))
    ceiling = pricing.highest_bid_costing_at_most(limit, np.full(len(limit), high))
    _, cost = pricing.response(np.maximum(ceiling, 0.01)[:, None])
    priced = ceiling > 0
    assert np.all(np.minimum(cost[priced, 0], ceiling[priced]) <= limit[priced] + 1e-9)
    assert np.all(ceiling <= high + 1e-9)
    above = np.round(ceiling + 0.01, 2)
    _, cost_above = pricing.response(above[:, None])
    below_high = above <= high + 1e-9
    assert np.all(np.minimum(cost_above[below_high, 0], above[below_high]) > limit[below_high])


capped_keywords = st.lists(
    st.tuples(
        st.floats(0.1, 10.0),  # value per click
        st.one_of(st.just(np.nan), st.floats(0.0, 3.0)),  # its spread (cv), unknown for some
        st.floats(0.01, 30.0),  # the bid in force
        st.integers(1, 28),  # days of history: some cold starts
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(
    rows=capped_keywords,
    policy_name=st.sampled_from(["profit_optimal", "fixed_margin"]),
    with_landscape=st.booleans(),
    cap=st.floats(0.05, 1.0),
    margin=st.floats(0.05, 0.9),
    exploration=st.floats(0.0, 0.5),
)
# A bid in force between two cents with a cap narrower than a cent: the bid once fell to the minimum bid.
@example(
    rows=[(1.0, np.nan, 0.064453125, 1)],
    policy_name="profit_optimal",
    with_landscape=False,
    cap=0.0625,
    margin=0.5,
    exploration=0.0,
)
def test_under_every_policy_no_bid_moves_past_the_change_cap_unless_the_money_rule_forces_it_down(
    rows, policy_name, with_landscape, cap, margin, exploration
):
    """profit_optimal with and without a landscape, fixed_margin and cold starts: every bid stays within the cap of
    the bid in force, except where the cap's lowest bid would break the money rule (or max_bid), which lowers it to
    the keyword's ceiling, or where the cap's highest bid is under min_bid. The money rule holds throughout."""
    from daily_bids.models.value_per_click import conservative_value

    value, cv, in_force, history = map(np.array, zip(*rows))
    n = len(rows)
    predictions = _predictions(n).assign(expected_value_per_click=value, value_per_click_cv=cv, history_days=history)
    policy = BidPolicy(
        policy=policy_name,
        max_bid_change=cap,
        target_margin=margin,
        exploration_share=exploration,
        exploration_spread=0.5,
    )
    context = _context(n).assign(bid_in_force=in_force, reference_bid=in_force, paid_bid=in_force)
    decision = decide_bids(predictions, policy, _landscape() if with_landscape else None, context)
    bids = decision.bids.set_index("keyword_id")
    ids = predictions["keyword_id"]
    # A cold start without a posterior is valued at its ad group's prior (2.0 in `_predictions`).
    value = np.where((history < policy.min_history_days) & np.isnan(cv), 2.0, value)
    limit = pd.Series(np.where(np.isnan(cv), np.inf, conservative_value(value, cv, 0.1)), index=ids)[bids.index]
    value, in_force = pd.Series(value, index=ids)[bids.index], pd.Series(in_force, index=ids)[bids.index]
    bid = bids["bid"]
    # The money rule.
    assert (bid < value).all() and (bids["expected_cost_per_click"] <= limit + 1e-9).all()
    assert np.allclose(bids["bid_in_force"], in_force)
    # The cap, with the two ways out.
    lowest, highest = in_force * (1 - cap), in_force * (1 + cap)
    lowest_cent = np.ceil(np.round(lowest * 100, 6)) / 100
    # A cap narrower than a cent may hold no whole cent: the cent below the bid in force is then within it.
    holds_no_cent = lowest_cent > np.floor(np.round(highest * 100, 6)) / 100
    cent_below_in_force = np.floor(np.round(in_force * 100, 6)) / 100
    lowest = np.where(holds_no_cent, cent_below_in_force, lowest)
    lowest_cent = np.where(holds_no_cent, cent_below_in_force, lowest_cent)
    below, above = bid < lowest - 1e-9, bid > highest + 1e-9
    breaks_money_rule = (lowest_cent >= value) | (lowest_cent > policy.max_bid) | (lowest_cent > limit + 1e-9)
    assert (breaks_money_rule[below]).all()
    assert (bids["lowered_to_ceiling"] == below).all()
    assert (bid[above] == policy.min_bid).all() and (highest[above] < policy.min_bid).all()
    # Lowered to the ceiling, not below it: where no landscape priced the keyword, the highest cent the rules allow.
    unpriced = below & (bids["bid_basis"] != "profit_optimal")
    ceiling = np.minimum(np.minimum(np.ceil(np.round(value * 100, 6)) / 100 - 0.01, policy.max_bid), limit)
    assert np.allclose(bid[unpriced], np.floor(np.round(ceiling[unpriced] * 100, 6)) / 100)
    # Every keyword is bid or listed unprofitable.
    assert len(bids) + len(decision.unprofitable) == n


def test_the_change_cap_holds_the_fixed_margin_to_the_bid_in_force_unless_turned_off():
    """Day one against manual bids: a 44-fold rise and a fall by more than half are held to the cap; a manual bid
    far above the value falls to the highest bid the money rule allows; `max_bid_change` 0 lets the margin decide."""
    predictions = _predictions(3).assign(expected_value_per_click=[2.2 / 0.7, 1.42, 1.0])
    context = _context(3).assign(bid_in_force=[0.05, 2.0, 5.0])
    policy = BidPolicy(policy="fixed_margin", exploration_share=0.0)
    bids = decide_bids(predictions, policy, context=context).bids
    assert list(bids["bid"]) == [0.06, 1.4, 0.99]  # +30% of 0.05 (to the cent); −30%, not −50.5%; below 1.0
    assert list(bids["change_capped"]) == [True, True, False]
    assert list(bids["lowered_to_ceiling"]) == [False, False, True]
    assert "1 lowered further, to the highest bid that keeps the money rule" in bid_rule_note(
        bids["bid_basis"].value_counts().to_dict(), 0, policy, 2, 1
    )
    uncapped = decide_bids(predictions, policy.model_copy(update={"max_bid_change": 0.0}), context=context).bids
    assert list(uncapped["bid"]) == [2.2, 0.99, 0.7] and not uncapped["change_capped"].any()
    assert "no change cap" in bid_rule_note({"fixed_margin": 3}, 0, policy.model_copy(update={"max_bid_change": 0.0}))


def test_without_a_landscape_the_economics_say_clicks_are_assumed_unchanged():
    """No landscape: clicks do not respond to the bid, so the economics say so and do not set the fixed margin's
    profit beside the chosen bids'; with one, the keywords it cannot price (cold starts) are counted."""
    predictions = _predictions(20).assign(history_days=[28] * 15 + [2] * 5)
    policy = BidPolicy(exploration_share=0.0)
    flat = decide_bids(predictions, policy, context=_context(20))
    assert flat.economics.loc["chosen", "clicks_assumed_unchanged"] == len(flat.bids) == 20
    table, note = economics_view(flat.economics)
    assert list(table.index) == ["chosen"] and "Clicks assumed unchanged" in note and "not comparable" in note
    assert clicks_note(flat.economics).startswith("clicks assumed unchanged:")
    basis = flat.bids["bid_basis"].value_counts().to_dict()
    assert "clicks assumed unchanged" in bid_rule_note(basis, 0, policy, 0, 0, 20)
    priced = decide_bids(predictions, policy, _landscape(), _context(20))
    assert priced.economics.loc["chosen", "clicks_assumed_unchanged"] == 5  # the cold starts
    table, note = economics_view(priced.economics)
    assert list(table.index) == ["chosen", "fixed_margin"] and "5 keywords whose clicks are assumed unchanged" in note
    assert clicks_note(priced.economics).startswith("clicks assumed unchanged for 5 of 20 keywords")

    # The comparison is the landscape's alone: the cold starts hold the same bids on both sides, so the gain over
    # the fixed margin is the one of the 15 keywords the landscape priced, decided alone.
    def gain(economics):
        return economics.loc["chosen", "expected_profit"] - economics.loc["fixed_margin", "expected_profit"]

    everywhere = decide_bids(predictions.iloc[:15], policy, _landscape(), _context(20)).economics
    assert gain(priced.economics) == pytest.approx(gain(everywhere)) and gain(everywhere) > 0
    assert clicks_note(everywhere) == "respond to the bid (bid landscape)"


def test_keyword_bids_metadata_says_what_the_clicks_assume_and_counts_the_capped_bids(tmp_path):
    """The metadata of `keyword_bids` (`_bid_metadata`), from a day's decision as scoring totals it."""
    import logging
    from types import SimpleNamespace

    from assets.serving import _bid_metadata
    from daily_bids.serving.scoring import BidTotals
    from daily_bids.storage.warehouse import Warehouse
    from resources.bid_policy import BidPolicyResource

    policy = BidPolicyResource(exploration_share=0.0)
    context = SimpleNamespace(log=logging.getLogger("test"))
    store = Warehouse(str(tmp_path))

    def metadata(landscape, in_force):
        totals = BidTotals()
        totals.add(decide_bids(_predictions(20), policy, landscape, _context(20).assign(bid_in_force=in_force)))
        return _bid_metadata(context, totals, policy, store)

    # No landscape; manual bids of 5.0, far above the value of 2.0: every bid lowered to its ceiling, 1.99.
    flat = metadata(None, 5.0)
    assert flat["clicks"].startswith("clicks assumed unchanged:") and flat["keywords_clicks_assumed_unchanged"] == 20
    assert "clicks assumed unchanged" in flat["bid_rule"] and "20 lowered further" in flat["bid_rule"]
    assert (
        "not comparable between margins" in flat["economics"].value and "fixed_margin |" not in flat["economics"].value
    )
    assert "fixed_margin_expected_profit" not in flat and flat["lowered_to_ceiling_bids"] == 20
    # On the landscape, within the cap of bids in force of 1.0: the fixed margin's bids (1.40) are held at 1.30.
    priced = metadata(_landscape(), 1.0)
    assert priced["clicks"] == "respond to the bid (bid landscape)" and priced["keywords_clicks_assumed_unchanged"] == 0
    assert "fixed_margin" in priced["economics"].value and "fixed_margin_expected_profit" in priced
    assert priced["change_cap"] == "30% of the bid in force" and priced["lowered_to_ceiling_bids"] == 0
