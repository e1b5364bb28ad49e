"""The morning report on three keywords in two campaigns, with figures checked by hand."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from daily_bids.monitoring import morning_report as morning

DAY = dt.date(2025, 3, 10)


def _report() -> pd.DataFrame:
    """Day D as reported: keyword 1 earned 20 for 5, keyword 2 earned 2 for 4, keyword 3 had no click."""
    return pd.DataFrame(
        {
            "keyword_id": [1, 2, 3],
            "campaign": pd.array(["Shoes", "Shoes", "Socks"], dtype="string"),
            "clicks": pd.array([10, 4, 0], dtype="Int64"),
            "cost": pd.array([5.0, 4.0, 0.0], dtype="Float64"),
            "conversion_value": pd.array([20.0, 2.0, 0.0], dtype="Float64"),
            "max_cpc": pd.array([0.60, 1.20, 0.30], dtype="Float64"),
        }
    )


def _predictions(clicks, values=None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "keyword_id": [1, 2, 3],
            "keyword": ["red shoes", "blue shoes", "wool socks"],
            "campaign": ["Shoes", "Shoes", "Socks"],
            "expected_clicks": clicks,
            "expected_value": values if values is not None else [np.nan] * 3,
        }
    )


def _bids(rows) -> pd.DataFrame:
    """keyword_bids rows: (keyword_id, keyword, campaign, bid, clicks, value per click, cost per click, basis,
    explored)."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "keyword_id",
            "keyword",
            "campaign",
            "bid",
            "expected_clicks",
            "expected_value_per_click",
            "expected_cost_per_click",
            "bid_basis",
            "exploration",
        ],
    )
    return frame.assign(
        expected_profit=frame["expected_clicks"]
        * (frame["expected_value_per_click"] - frame["expected_cost_per_click"])
    )


# The bids made in D-1, in force on D (keyword 2 got none), and today's (keyword 2 again gets none).
BIDS_BEFORE = [
    (1, "red shoes", "Shoes", 0.60, 9.0, 2.0, 0.50, "profit_optimal", False),
    (3, "wool socks", "Socks", 0.30, 1.0, 0.5, 0.30, "fixed_margin", False),
]
BIDS_TODAY = [
    (1, "red shoes", "Shoes", 0.66, 11.0, 2.0, 0.55, "profit_optimal", False),
    (3, "wool socks", "Socks", 0.15, 1.0, 0.5, 0.15, "fixed_margin", True),
]


def _build(checks=(), pricing=None, predictions_before=True) -> morning.MorningReport:
    bids_before = _bids(BIDS_BEFORE)
    report = _report()
    return morning.build_report(
        DAY,
        report,
        _predictions([8.0, 5.0, 1.0], [16.0, 5.0, 0.5]) if predictions_before else None,
        bids_before if predictions_before else None,
        _bids(BIDS_TODAY),
        _predictions([10.0, 4.0, 1.0]),
        morning.bids_in_force(report, bids_before[["keyword_id", "bid"]], DAY),
        list(checks),
        pricing,
    )


def test_yesterdays_actuals_per_campaign_add_up_to_the_report():
    campaigns = _build().campaigns
    shoes, socks = campaigns.loc["Shoes"], campaigns.loc["Socks"]
    assert (shoes["actual_clicks"], shoes["actual_spend"], shoes["actual_value"]) == (14, 9.0, 22.0)
    assert shoes["actual_profit"] == pytest.approx(13.0)
    assert shoes["actual_roas"] == pytest.approx(22.0 / 9.0)
    assert socks["actual_profit"] == 0.0 and np.isnan(socks["actual_roas"])  # no spend: no ROAS


def test_predicted_uses_our_bids_where_they_were_in_force_and_the_predictions_elsewhere():
    shoes = _build().campaigns.loc["Shoes"]
    # Keyword 1 at our bid: 9 clicks worth 2 costing 0.50; keyword 2 (no bid of ours): 5 clicks worth 5, spend unknown.
    assert shoes["predicted_clicks"] == 14.0
    assert shoes["predicted_value"] == pytest.approx(18.0 + 5.0)
    assert shoes["predicted_spend"] == pytest.approx(4.5)
    assert shoes["predicted_profit"] == pytest.approx(18.5)


def test_todays_expected_figures_against_yesterday():
    report = _build()
    account = report.account()
    # Today: 11 × 2.00 and 11 × 0.55 for keyword 1; 1 × 0.50 and 1 × 0.15 for keyword 3.
    assert account.loc["clicks", "expected"] == 12.0
    assert account.loc["spend", "expected"] == pytest.approx(6.05 + 0.15)
    assert account.loc["value", "expected"] == pytest.approx(22.5)
    assert account.loc["profit", "expected"] == pytest.approx(16.3)
    view = report.account_view()
    assert view.loc["profit", "today vs yesterday"] == "+3.30 USD"  # 16.30 against 13.00
    assert view.loc["clicks", "today vs yesterday"] == f"{12 / 14 - 1:+.1%}"
    assert view.loc["ROAS", "today vs yesterday"] == f"{22.5 / 6.2 - 22 / 9:+.2f}"


# The landscape's clicks and cost per click of keyword 1 at its bid in force (0.60).
KEYWORD_1_AT_ITS_BID_IN_FORCE = morning.KeptPricing(clicks=pd.Series({1: 10.5}), cost_per_click=pd.Series({1: 0.58}))


def test_keeping_the_bids_in_force_is_priced_by_the_landscape_only():
    report = _build(pricing=KEYWORD_1_AT_ITS_BID_IN_FORCE)
    account = report.account()
    # Keyword 1: 10.5 clicks worth 2.00 at 0.58; keyword 3, which no landscape priced, counts as bid as today.
    assert account.loc["clicks", "kept"] == pytest.approx(10.5 + 1.0)
    assert account.loc["spend", "kept"] == pytest.approx(10.5 * 0.58 + 0.15)
    assert account.loc["profit", "kept"] == pytest.approx(21.0 + 0.5 - 6.09 - 0.15)
    assert report.kept_priced == 1
    assert report.account_view().loc["profit", "today vs keeping the bids"] == "+1.04 USD"  # 16.30 against 15.26
    assert report.campaign_view().loc["Shoes", "profit vs keeping the bids"] == "+1.04 USD"
    assert "priced by the bid landscape for 1 of 2 bids" in report.markdown()


def test_without_a_landscape_keeping_the_bids_is_not_priced():
    """Clicks assumed unchanged, a lower bid would always look more profitable: no such comparison is made."""
    report = _build()
    assert report.kept_priced == 0 and np.isnan(report.account().loc["profit", "kept"])
    view = report.account_view()
    assert view.loc["profit", "today vs keeping the bids"] == f"not priced: {morning.CLICKS_ASSUMED_UNCHANGED}"
    assert report.campaign_view().loc["Shoes", "profit vs keeping the bids"] == morning.CLICKS_ASSUMED_UNCHANGED
    assert "against keeping" not in report.summary_lines()[2]


def test_bids_in_force_take_the_reports_max_cpc_then_our_published_bids():
    report = _report()
    report.loc[2, "max_cpc"] = pd.NA
    in_force = morning.bids_in_force(report, pd.DataFrame({"keyword_id": [3, 4], "bid": [0.25, 0.40]}), DAY)
    assert in_force.bids.to_dict() == {1: 0.60, 2: 1.20, 3: 0.25, 4: 0.40}
    assert "max CPC" in in_force.source and "published" in in_force.source
    unknown = morning.bids_in_force(report.drop(columns="max_cpc"), None, DAY)
    assert unknown.bids.empty and "not known" in unknown.source


def test_largest_moves_come_first_with_their_reasons():
    report = _build()
    moves = report.moves
    assert list(moves["keyword_id"]) == [3, 1]  # halved before +10%
    assert moves["change"].tolist() == pytest.approx([-0.5, 0.1])
    assert "explored" in moves["reason"].iloc[0] and morning.CLICKS_ASSUMED_UNCHANGED in moves["reason"].iloc[0]
    assert moves["reason"].iloc[1] == morning.BASIS_REASONS["profit_optimal"]
    assert report.move_counts == {"raised": 1, "lowered": 1, "unchanged": 0, "no_bid_in_force": 0}
    view = report.moves_view()
    assert view["keyword"].iloc[0] == "wool socks (3)" and view["change"].iloc[0] == "-50%"
    assert view["bid in force"].iloc[0] == "0.30 USD" and view["new bid"].iloc[0] == "0.15 USD"


def test_a_capped_column_adds_its_reason():
    row = pd.Series({"bid_basis": "fixed_margin", "exploration": False, "change_capped": True})
    assert morning.bid_reason(row).endswith(morning.FLAG_REASONS["change_capped"])


def test_only_checks_that_warned_or_failed_are_listed():
    checks = [
        morning.CheckOutcome("keyword_bids", "bids_are_profitable_and_capped", True, "ERROR", "ok"),
        morning.CheckOutcome("model_monitoring", "losing_spend", False, "WARN", "41% of spend lost money"),
    ]
    report = _build(checks)
    view = report.checks_view()
    assert view.to_dict("records") == [
        {
            "asset": "model_monitoring",
            "check": "losing_spend",
            "severity": "warned",
            "what it says": "41% of spend lost money",
        }
    ]
    assert "1 check(s) warned or failed" in report.summary_lines()[-1]
    assert _build().summary_lines()[-1] == "Every check passed."


def test_the_report_says_where_clicks_are_assumed_unchanged_and_which_keywords_get_no_bid():
    text = _build().markdown()
    assert f"No bid landscape priced 1 of 2 bids: {morning.CLICKS_ASSUMED_UNCHANGED}" in text
    assert "1 keyword gets no bid today" in text
    assert "Bids in force on 2025-03-10: the max CPC of the 2025-03-10 report (3 keywords)" in text


def test_the_first_day_has_nothing_predicted_and_says_so():
    report = _build(predictions_before=False)
    assert np.isnan(report.account().loc["clicks", "predicted"])
    assert report.account_view().loc["clicks", "yesterday, predicted"] == "—"
    assert any("No predictions were made for 2025-03-10" in note for note in report.notes)


def test_money_carries_the_currency():
    assert morning.format_money(1234.5) == "1,234.50 USD"
    assert morning.format_money(-3.0, "EUR") == "-3.00 EUR"
    assert morning.format_money(float("nan")) == "—"
    report = _build()
    assert report.account_view().loc["spend", "yesterday, actual"] == "9.00 USD"
    assert report.campaign_view().loc["Shoes", "expected spend"] == "6.05 USD"


def test_the_mailable_page_holds_every_section_and_the_chart():
    report = _build()
    png = report.chart_png()
    assert png.startswith(b"\x89PNG")
    page = report.html("QUJD")
    for heading in ("The account", "By campaign", "Largest bid moves", "Checks that warned or failed"):
        assert f"<h2>{heading}</h2>" in page
    assert 'src="data:image/png;base64,QUJD"' in page and "wool socks (3)" in page


def test_money_is_shown_to_the_currencys_billable_unit():
    assert morning.format_money(1234.6, "JPY") == "1,235 JPY"
    assert morning.format_money(120.0, "JPY") == "120 JPY"
    assert morning._signed_money(-3.0, "JPY") == "-3 JPY" and morning._signed_money(0.5, "USD") == "+0.50 USD"
