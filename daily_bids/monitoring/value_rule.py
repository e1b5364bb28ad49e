"""Whether the money rule holds in truth: a bid is made below the value a click is expected to earn, so what matters
is whether clicks earned what they were predicted to earn, and whether the spend went to keywords that paid back.

Over the trailing 28 report days: for each day D, the predictions and bids made for D (partition D-1 of
`keyword_predictions` and `keyword_bids`) against the validated report of D. A predicted keyword without a report row
on D had no impressions: 0 clicks, 0 value, 0 cost. A day whose report leaves conversion value (or cost) empty on
every row does not report it: that day's figure is unknown (null), never zero.

- `value_per_click_deciles`: the keyword-days in deciles of predicted value per click, each decile's click-weighted
  predicted value per click against its realized one (conversion value / clicks). A calibrated model has a ratio near
  1 in every decile with enough clicks.
- `losing_spend`: the share of the window's spend (on keywords that had a bid) that went to keywords whose realized
  value per click over the window was below their average cost per click: money the rule thought well spent that
  lost money.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.charts import figure_png, pyplot
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse

WINDOW_DAYS = 28
# The losing-spend check judges whole windows only. Most keywords convert a few times a month, so over fewer days
# many of them show no conversion by chance: with bids at 0.6x the true value (no keyword truly losing), a third of
# a week's spend looks lost, and a sixth of 28 days' (measured on the simulator, 2,000 keywords, five seeds).
MIN_DAYS = WINDOW_DAYS
DECILES = 10
KEYWORD_DAY_COLUMNS = ("date", "keyword_id", "predicted_value_per_click", "bid", "clicks", "conversion_value", "cost")
DECILE_COLUMNS = (
    "decile",
    "predicted_min",
    "predicted_max",
    "predicted_value_per_click",
    "realized_value_per_click",
    "clicks",
    "keyword_days",
    "keyword_days_with_clicks",
    "realized_over_predicted",
)


def keyword_days(reports: pd.DataFrame, predictions: pd.DataFrame, bids: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per predicted keyword and day (KEYWORD_DAY_COLUMNS). `predictions` (date, keyword_id,
    expected_value_per_click) and `bids` (date, keyword_id, bid) are dated by the day they were made FOR (partition
    D-1 is dated D here); `reports` (date, keyword_id, clicks, conversion_value, cost) by their own day. A day is
    monitored when it has predictions; the caller passes only days whose report is in (an empty report is a day
    without impressions). `bid` is null where no bid was made."""
    predicted = pd.DataFrame(
        {
            "date": _days(predictions["date"]),
            "keyword_id": predictions["keyword_id"].to_numpy(dtype="int64"),
            "predicted_value_per_click": pd.to_numeric(predictions["expected_value_per_click"], errors="coerce")
            .astype("float64")
            .to_numpy(),
        }
    )
    if bids is not None and len(bids):
        placed = pd.DataFrame(
            {
                "date": _days(bids["date"]),
                "keyword_id": bids["keyword_id"].to_numpy(dtype="int64"),
                "bid": pd.to_numeric(bids["bid"], errors="coerce").astype("float64").to_numpy(),
            }
        )
        predicted = predicted.merge(placed, on=["date", "keyword_id"], how="left")
    else:
        predicted["bid"] = np.nan
    report = pd.DataFrame({"date": _days(reports["date"]), "keyword_id": reports["keyword_id"].to_numpy(dtype="int64")})
    for column in ("clicks", "conversion_value", "cost"):
        report[column] = (
            pd.to_numeric(reports[column], errors="coerce").astype("float64").to_numpy()
            if column in reports.columns
            else np.nan
        )
    joined = predicted.merge(report, on=["date", "keyword_id"], how="left")
    # No row on the day: no impressions, so zero, unless the day's report does not fill the column at all (then
    # the day's figure is unknown, rows or not). A day without any row reports zeros.
    absent = ~pd.MultiIndex.from_frame(joined[["date", "keyword_id"]]).isin(
        pd.MultiIndex.from_frame(report[["date", "keyword_id"]])
    )
    for column in ("clicks", "conversion_value", "cost"):
        filled_days = report[column].notna().groupby(report["date"]).any()
        day_reports_it = joined["date"].map(filled_days).fillna(True).astype(bool).to_numpy()
        joined.loc[absent & day_reports_it, column] = 0.0
    return joined.loc[:, list(KEYWORD_DAY_COLUMNS)]


def _days(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values).dt.normalize().to_numpy(dtype="datetime64[ns]")


def read_keyword_days(store: Warehouse, first_day: dt.date, last_day: dt.date) -> pd.DataFrame:
    """`keyword_days` of the report days from `first_day` to `last_day` that have both their report and the
    predictions made for them (partition D-1); bids where partition D-1 of the bids exists."""
    reported = set(store.list_partitions(tables.VALIDATED_REPORT))
    predicted = set(store.list_partitions(tables.PREDICTIONS))
    placed = set(store.list_partitions(tables.BIDS))
    span = [first_day + dt.timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    days = [d for d in span if d in reported and d - dt.timedelta(days=1) in predicted]
    if not days:
        return pd.DataFrame(columns=list(KEYWORD_DAY_COLUMNS))
    report_columns = ["keyword_id", "clicks", "conversion_value", "cost"]
    reports = store.read_partitions(tables.VALIDATED_REPORT, days, columns=report_columns)
    made_on = [d - dt.timedelta(days=1) for d in days]
    predictions = _made_for(
        store.read_partitions(tables.PREDICTIONS, made_on, columns=["keyword_id", "expected_value_per_click"])
    )
    bid_days = [d for d in made_on if d in placed]
    bids = _made_for(store.read_partitions(tables.BIDS, bid_days, columns=["keyword_id", "bid"])) if bid_days else None
    return keyword_days(reports, predictions, bids)


def _made_for(frame: pd.DataFrame) -> pd.DataFrame:
    """A partition made on D-1, dated D: the day it was made for."""
    return frame.assign(date=pd.to_datetime(frame["date"]) + pd.Timedelta(days=1))


def trailing(frame: pd.DataFrame, day: dt.date, days: int = WINDOW_DAYS) -> pd.DataFrame:
    """The rows of the `days` report days ending at `day`."""
    dates = pd.to_datetime(frame["date"])
    return frame[(dates > pd.Timestamp(day - dt.timedelta(days=days))) & (dates <= pd.Timestamp(day))]


def value_per_click_deciles(frame: pd.DataFrame, deciles: int = DECILES) -> pd.DataFrame:
    """The keyword-days of `frame` (`keyword_days`) in (up to) `deciles` groups of equal size by predicted value per
    click (ties split by order), and per group: the predicted range, the click-weighted mean predicted value per
    click, the realized value per click (conversion value / clicks, over the keyword-days whose value is known),
    clicks, keyword-days (with and without clicks) and realized / predicted. A group without clicks has no per-click
    figure (null)."""
    rows = frame[frame["predicted_value_per_click"].notna()]
    groups = min(deciles, len(rows))
    if not groups:
        return pd.DataFrame(columns=list(DECILE_COLUMNS))
    rank = rows["predicted_value_per_click"].rank(method="first").to_numpy()
    decile = np.ceil(rank * groups / len(rows)).astype(int)
    out = []
    for number in range(1, groups + 1):
        part = rows[decile == number]
        clicks = part["clicks"].fillna(0.0)
        predicted = part["predicted_value_per_click"]
        click_total = float(clicks.sum())
        valued = part[part["conversion_value"].notna() & (clicks > 0)]
        valued_clicks = float(valued["clicks"].sum())
        predicted_mean = float((predicted * clicks).sum() / click_total) if click_total > 0 else np.nan
        realized = float(valued["conversion_value"].sum() / valued_clicks) if valued_clicks > 0 else np.nan
        out.append(
            {
                "decile": number,
                "predicted_min": float(predicted.min()),
                "predicted_max": float(predicted.max()),
                "predicted_value_per_click": predicted_mean,
                "realized_value_per_click": realized,
                "clicks": click_total,
                "keyword_days": len(part),
                "keyword_days_with_clicks": int((clicks > 0).sum()),
                "realized_over_predicted": realized / predicted_mean if predicted_mean > 0 else np.nan,
            }
        )
    return pd.DataFrame(out, columns=list(DECILE_COLUMNS))


@dataclass(frozen=True)
class LosingSpend:
    """The window's spend on bid keywords, and the part that went to keywords whose clicks earned less than they
    cost. `share` is null when nothing can be said (no spend, or value or cost not reported)."""

    share: float
    spend: float
    losing_spend: float
    keywords: int
    losing_keywords: int
    days: int
    not_reported: tuple[str, ...]

    def metadata(self) -> dict[str, float | int]:
        known = {"losing_spend_share": round(self.share, 4)} if np.isfinite(self.share) else {}
        return known | {
            "spend": round(self.spend, 2),
            "losing_spend": round(self.losing_spend, 2),
            "bid_keywords_with_clicks": self.keywords,
            "losing_keywords": self.losing_keywords,
            "monitored_days": self.days,
        }


def losing_spend(frame: pd.DataFrame) -> LosingSpend:
    """Over the keyword-days of `frame` that had a bid: per keyword, its realized value per click (conversion value
    / clicks) against its average cost per click (cost / clicks), summed over its days; the share of the spend that
    went to keywords whose value per click was below their cost per click. Keyword-days whose value or cost is
    unknown are left out."""
    days = int(frame["date"].nunique())
    not_reported = tuple(
        name
        for column, name in (("conversion_value", "conversion value"), ("cost", "cost"))
        if frame[column].isna().all()
    )
    known = frame[frame["bid"].notna() & frame["conversion_value"].notna() & frame["cost"].notna()]
    if not_reported or known.empty:
        return LosingSpend(np.nan, 0.0, 0.0, 0, 0, days, not_reported)
    per_keyword = known.groupby("keyword_id")[["clicks", "conversion_value", "cost"]].sum()
    per_keyword = per_keyword[per_keyword["clicks"] > 0]
    # value / clicks < cost / clicks, with clicks > 0: the same as value < cost.
    losing = per_keyword["conversion_value"] < per_keyword["cost"]
    spend = float(known["cost"].sum())
    lost = float(per_keyword.loc[losing, "cost"].sum())
    return LosingSpend(
        lost / spend if spend > 0 else np.nan, spend, lost, len(per_keyword), int(losing.sum()), days, not_reported
    )


@dataclass(frozen=True)
class LosingSpendVerdict:
    passed: bool
    explanation: str
    metadata: dict[str, object]


def judge_losing_spend(frame: pd.DataFrame, warn_share: float, min_days: int = MIN_DAYS) -> LosingSpendVerdict:
    """The check's verdict on the trailing window `frame`: failed when the losing-spend share is above `warn_share`.
    Fewer than `min_days` monitored days, reports without value or cost, or no spend: passed, with a note why."""
    result = losing_spend(frame)
    metadata: dict[str, object] = {**result.metadata(), "warn_share": warn_share}
    if result.days < min_days:
        note = (
            f"not enough history: {result.days} monitored day(s) of the last {WINDOW_DAYS}; the check needs {min_days}"
        )
        return LosingSpendVerdict(True, note, metadata | {"note": note})
    if result.not_reported:
        note = f"the reports do not report {' or '.join(result.not_reported)}: the value rule cannot be judged"
        return LosingSpendVerdict(True, note, metadata | {"note": note})
    if not np.isfinite(result.share):
        note = f"no spend on bid keywords in the last {result.days} monitored days"
        return LosingSpendVerdict(True, note, metadata | {"note": note})
    failed = result.share > warn_share
    explanation = (
        f"{result.share:.1%} of the spend of the last {result.days} monitored days ({result.losing_spend:,.2f} of "
        f"{result.spend:,.2f}) went to {result.losing_keywords} keyword(s) whose clicks earned less than they cost: "
        f"{'above' if failed else 'within'} the {warn_share:.0%} allowed"
    )
    return LosingSpendVerdict(not failed, explanation, metadata)


def deciles_markdown(table: pd.DataFrame) -> str:
    """The decile table as people read it: money to the cent, the ratio to two decimals."""
    view = table.copy()
    view["predicted range"] = [
        f"{low:.2f} to {high:.2f}" for low, high in zip(view["predicted_min"], view["predicted_max"])
    ]
    view = view[
        [
            "decile",
            "predicted range",
            "predicted_value_per_click",
            "realized_value_per_click",
            "realized_over_predicted",
            "clicks",
            "keyword_days",
            "keyword_days_with_clicks",
        ]
    ].rename(
        columns={
            "predicted_value_per_click": "predicted value/click",
            "realized_value_per_click": "realized value/click",
            "realized_over_predicted": "realized / predicted",
            "keyword_days": "keyword-days",
            "keyword_days_with_clicks": "with clicks",
        }
    )
    return view.round(
        {"predicted value/click": 2, "realized value/click": 2, "realized / predicted": 2, "clicks": 0}
    ).to_markdown(index=False)


def value_per_click_png(table: pd.DataFrame, days: int | None = None) -> bytes:
    """Realized against predicted value per click, one point per decile (sized by its clicks), with the diagonal
    where they are equal: points below it are clicks that earned less than the bids assumed."""
    figure, axis = pyplot().subplots(figsize=(6.5, 5))
    shown = table.dropna(subset=["predicted_value_per_click", "realized_value_per_click"])
    if len(shown):
        sizes = 30 + 270 * shown["clicks"] / max(float(shown["clicks"].max()), 1.0)
        axis.scatter(shown["predicted_value_per_click"], shown["realized_value_per_click"], s=sizes, zorder=3)
        axis.plot(shown["predicted_value_per_click"], shown["realized_value_per_click"], color="tab:blue", alpha=0.5)
        for row in shown.itertuples():
            axis.annotate(
                str(row.decile),
                (row.predicted_value_per_click, row.realized_value_per_click),
                textcoords="offset points",
                xytext=(6, -10),
                fontsize=8,
            )
        top = float(max(shown["predicted_value_per_click"].max(), shown["realized_value_per_click"].max())) * 1.08
        axis.plot([0, top], [0, top], color="grey", linestyle="--", label="earned what was predicted")
        axis.set_xlim(0, top)
        axis.set_ylim(0, top)
        axis.text(
            0.97,
            0.03,
            "below the line: clicks earned less\nthan the bids assumed",
            transform=axis.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="grey",
        )
        axis.legend(fontsize=8, loc="upper left")
    else:
        axis.text(0.5, 0.5, "no clicks with a known value yet", ha="center", va="center", transform=axis.transAxes)
    window = f"last {days} days" if days else f"last {WINDOW_DAYS} days"
    axis.set_title(
        f"Did clicks earn what the bids assumed? ({window})\nkeywords in 10 groups by predicted value", fontsize=10
    )
    axis.set_xlabel("predicted value per click (what the bid was made from)")
    axis.set_ylabel("realized value per click (conversion value / clicks)")
    return figure_png(figure)
