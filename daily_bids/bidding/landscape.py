"""The bid landscape: how a keyword's clicks and cost per click respond to its bid.

Learned from the history of bids in force (`max_cpc`) and their outcomes, pooled across keywords: each keyword's
clicks and cost per click are constant-elasticity curves around where it stands (its recent bid, clicks and cost
per click), and the elasticities are shared, the click elasticity varying with how close to its bid the keyword
pays (see `BidLandscape`).

Why this model: a keyword's own bid rarely moves, so its curve cannot be learnt from its history alone; pooling
the bid changes of every keyword (the platform's own changes and its exploration) into a few elasticities can. An
elasticity is also the one thing the optimizer needs near today's bid, and with the ±`max_bid_change` cap it never
leaves that neighbourhood. A first version with gradient-boosted trees (bid as a monotone input) fitted the holdout
less well (clicks MAE 1.14 against 1.03) and read the response as a step at today's bid, flat below it: the
optimizer then cut bids every day.
The optimizer reads the landscape as a multiplier on the champion's expected clicks at the bid in force, so the
champion stays the one source of the level of demand.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pandas as pd

from daily_bids.keyword_index import NOT_FOUND, KeywordIndex, unique_keyword_ids
from daily_bids.schema import as_day, numeric

TRAINING_DAYS = 56  # report days a landscape is learnt from
CONTEXT_DAYS = 7  # the recent days that describe a keyword's position: its usual bid, clicks and prices
HOLDOUT_DAYS = 7
# Bid changes smaller than this (relative) carry no evidence about the response: they are rounding.
MEANINGFUL_BID_CHANGE = 0.02
# Rows with a meaningful bid change below which no landscape is fitted: the response would be a guess.
MIN_VARIED_ROWS = 200
# Keywords sampled for training: the landscape is pooled, so a sample of a large account teaches it as well. An
# account with more keywords is halved (by `in_training_sample`) until at most this many are expected.
MAX_TRAINING_KEYWORDS = 200_000


class LandscapeUnavailable(ValueError):
    """The reports do not show how outcomes respond to the bid (no bids in force, or bids that never varied)."""


def bid_context(reports: pd.DataFrame | ReportForDay, day: dt.date) -> pd.DataFrame:
    """Per keyword with a bid in force in the `CONTEXT_DAYS` reports ending at `day`: its latest bid
    (`bid_in_force`), its mean bid (`reference_bid`) and the landscape's context inputs for the day after.

    `reports` is a frame of report rows, or a function giving one day's rows (None for a day without a report):
    a large account's week is then read a day at a time, once, and memory holds a few running totals per keyword."""
    first = day - dt.timedelta(days=CONTEXT_DAYS - 1)
    report_for = reports if callable(reports) else _days_of(reports, first, day)
    totals, has_max_cpc = None, False
    for offset in range(CONTEXT_DAYS):
        rows = report_for(first + dt.timedelta(days=offset))
        if rows is None or not len(rows):
            continue  # no row: nothing to add to any keyword's totals
        keyword_ids = _keyword_ids(rows)
        if totals is None:  # the first day's keywords, with room for the week's new ones
            totals = _WindowTotals.of(unique_keyword_ids(keyword_ids), room=len(keyword_ids) // 50 + 1024)
        row_of = totals.rows_for(keyword_ids)
        totals.add({name: totals.aligned(rows, name, row_of) for name in PANEL_COLUMNS})
        has_max_cpc = has_max_cpc or _carries_bids(rows)
    if totals is None or not has_max_cpc:
        raise _no_bids_in_force()
    return totals.context(day + dt.timedelta(days=1))


# One day's report rows, or None when that day has no report.
ReportForDay = Callable[[dt.date], "pd.DataFrame | None"]
PANEL_COLUMNS = ("clicks", "cost", "max_cpc", "search_impression_share")


@dataclass
class _Panel:
    """Report metrics as keyword × day matrices; NaN where a keyword had no row."""

    keyword_ids: np.ndarray
    days: list[dt.date]
    values: dict[str, np.ndarray]


def _panel(reports: pd.DataFrame, first: dt.date, last: dt.date, keyword_ids: np.ndarray) -> _Panel:
    """The metrics of `keyword_ids` (sorted) over the days `first` to `last`, as keyword × day matrices."""
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    report_for = _days_of(reports, first, last)
    ids = np.asarray(keyword_ids, dtype="int64")
    # Column-major: a day's column is contiguous, as each step below reads and writes a day at a time (a strided
    # column of a row-major matrix cost the landscape of a 10M-keyword account about 2 s).
    values = {name: np.full((len(ids), len(days)), np.nan, order="F") for name in PANEL_COLUMNS}
    has_max_cpc = False
    for column, day in enumerate(days):
        rows = report_for(day)
        if rows is None or not len(rows):
            continue
        keyword_ids_today = _keyword_ids(rows)
        row_of = np.searchsorted(ids, keyword_ids_today)
        known = row_of < len(ids)
        known[known] = ids[row_of[known]] == keyword_ids_today[known]
        for name in PANEL_COLUMNS:
            if name in rows.columns:
                values[name][row_of[known], column] = numeric(rows[name])[known]
        has_max_cpc = has_max_cpc or _carries_bids(rows)
    if not has_max_cpc:
        raise _no_bids_in_force()
    return _Panel(ids, days, values)


def _carries_bids(rows: pd.DataFrame) -> bool:
    """Whether a day's rows say the bid in force (max_cpc) anywhere: without it no landscape can be learnt."""
    return "max_cpc" in rows.columns and bool(rows["max_cpc"].notna().any())


def _no_bids_in_force() -> LandscapeUnavailable:
    return LandscapeUnavailable(
        "the reports carry no max_cpc (the bid in force), so the bid landscape cannot be learnt"
    )


def _keyword_ids(rows: pd.DataFrame) -> np.ndarray:
    """The rows' keyword IDs as int64 (validated reports have no null one): the nullable column's own `to_numpy`
    would make Python integers, which cost some 20 times as much to sort and search."""
    return rows["keyword_id"].to_numpy(dtype="int64")


def _days_of(reports: pd.DataFrame, first: dt.date, last: dt.date) -> ReportForDay:
    """A frame of report rows as a function of the day."""
    dates = as_day(reports["date"])
    inside = ((dates >= pd.Timestamp(first)) & (dates <= pd.Timestamp(last))).to_numpy()
    by_day = {day.date(): part for day, part in reports[inside].groupby(dates[inside].to_numpy(), sort=False)}
    return by_day.get


@dataclass
class _WindowTotals:
    """Running totals of each keyword's days in a context window, a day added at a time in day order: what the
    context needs of the window, without holding the keyword × day matrices. Each total adds the days one after the
    other, as NumPy's sum along a week's row does, so they equal the matrices' sums to the bit.

    Rows: the first day's keywords in keyword order, then the keywords first seen on a later day as they come, in
    arrays with room to grow. A day that brings new keywords neither moves nor copies the rows before it: at 10M
    keywords, with a few new ones each day, the week took 9 to 12 s when each such day re-sorted every row into fresh
    arrays, and takes 7 to 8 s this way. `context` puts the rows in keyword order once."""

    sorted_ids: np.ndarray  # the keywords of the first rows, sorted
    later_ids: np.ndarray  # the keywords of the next rows, in order of arrival
    totals: dict[str, np.ndarray]  # each as long as the room: rows past the keywords hold the starts
    _scratch: dict[str, np.ndarray] = field(default_factory=dict)  # a day's values by row, reused day after day

    # A keyword's totals before its first day: sums and counts of nothing; no bid seen yet.
    STARTS = {
        "bid_sum": 0.0,
        "bid_days": 0,
        "latest_bid": np.nan,
        "clicks": 0.0,
        "share_sum": 0.0,
        "share_days": 0,
        # The days that say their clicks, cost and bid: what the cost per click is measured against the bid on.
        "priced_clicks": 0.0,
        "priced_cost": 0.0,
        "clicks_times_bid": 0.0,
    }

    @classmethod
    def of(cls, keyword_ids: np.ndarray, room: int = 0) -> _WindowTotals:
        """No day yet, for these keywords (sorted), with room for `room` more."""
        rows = len(keyword_ids) + room
        totals = {name: np.full(rows, start) for name, start in cls.STARTS.items()}
        return cls(keyword_ids, np.zeros(0, dtype="int64"), totals)

    @property
    def rows(self) -> int:
        return len(self.sorted_ids) + len(self.later_ids)

    @property
    def room(self) -> int:
        """The rows the arrays hold: the keywords', then starts waiting for new ones."""
        return len(self.totals["clicks"])

    def rows_for(self, keyword_ids: np.ndarray) -> np.ndarray:
        """The row of each of a day's keywords (distinct), given a row first where a keyword has none."""
        first = len(self.sorted_ids)
        row_of = np.full(len(keyword_ids), -1, dtype="int64")
        if len(keyword_ids) >= first and np.array_equal(keyword_ids[:first], self.sorted_ids):
            row_of[:first] = np.arange(first)  # the first day's keywords in their order, new ones after: no search
        else:
            at = np.minimum(np.searchsorted(self.sorted_ids, keyword_ids), max(first - 1, 0))
            found = self.sorted_ids[at] == keyword_ids if first else np.zeros(len(keyword_ids), dtype=bool)
            row_of[found] = at[found]
        missing = np.flatnonzero(row_of < 0)
        if len(missing):
            others = keyword_ids[missing]
            later = KeywordIndex(self.later_ids).positions(others)
            if (later == NOT_FOUND).any():
                self._add_rows(unique_keyword_ids(others[later == NOT_FOUND]))
                later = KeywordIndex(self.later_ids).positions(others)
            row_of[missing] = first + later
        return row_of

    def _add_rows(self, keyword_ids: np.ndarray) -> None:
        """Rows for new keywords, after the others; the arrays grow by a quarter when the room runs out."""
        room = self.room
        if self.rows + len(keyword_ids) > room:
            grown = max(self.rows + len(keyword_ids), room + room // 4)
            for name, values in self.totals.items():
                self.totals[name] = np.concatenate([values, np.full(grown - room, self.STARTS[name])])
            self._scratch.clear()
        self.later_ids = np.concatenate([self.later_ids, keyword_ids])

    def aligned(self, rows: pd.DataFrame, name: str, row_of: np.ndarray) -> np.ndarray:
        """Column `name` of a day's rows at each keyword's row (`row_of`); NaN for a keyword without a row, and for
        every keyword when the report lacks the column. The array is reused for the next day's column."""
        values = self._scratch.get(name)
        if values is None:
            values = self._scratch[name] = np.empty(self.room)
        values.fill(np.nan)
        if name in rows.columns:
            values[row_of] = numeric(rows[name])
        return values

    def add(self, day: dict[str, np.ndarray]) -> None:
        """One day's metrics by keyword (`PANEL_COLUMNS`, NaN where a keyword had no row or no value)."""
        bid, clicks, share = day["max_cpc"], day["clicks"], day["search_impression_share"]
        totals = self.totals  # added in place: a new array a day would leave the allocator's heap in pieces
        has_bid, has_share = ~np.isnan(bid), ~np.isnan(share)
        np.add(totals["bid_sum"], bid, out=totals["bid_sum"], where=has_bid)
        totals["bid_days"] += has_bid
        np.copyto(totals["latest_bid"], bid, where=has_bid)
        _add_known(totals["clicks"], clicks)
        np.add(totals["share_sum"], share, out=totals["share_sum"], where=has_share)
        totals["share_days"] += has_share
        priced = has_bid & ~np.isnan(clicks) & ~np.isnan(day["cost"])
        np.add(totals["priced_clicks"], clicks, out=totals["priced_clicks"], where=priced)
        np.add(totals["priced_cost"], day["cost"], out=totals["priced_cost"], where=priced)
        np.add(totals["clicks_times_bid"], clicks * bid, out=totals["clicks_times_bid"], where=priced)

    def _kept_in_keyword_order(self, kept: np.ndarray) -> np.ndarray:
        """The rows where `kept` holds, in keyword order: the later rows merged in among the first ones."""
        if not len(self.later_ids):
            return np.flatnonzero(kept)
        arrival = np.argsort(self.later_ids, kind="stable")
        at = np.searchsorted(self.sorted_ids, self.later_ids[arrival])
        order = np.insert(np.arange(len(self.sorted_ids)), at, len(self.sorted_ids) + arrival)
        return order[kept[order]]

    def context(self, next_day: dt.date) -> pd.DataFrame:
        """The context for `next_day` of every keyword with a bid in force in the window."""
        totals = {name: values[: self.rows] for name, values in self.totals.items()}
        has_bid = totals["bid_days"] > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            reference = np.where(has_bid, totals["bid_sum"] / totals["bid_days"], 0.0)
            mean_share = np.where(totals["share_days"] > 0, totals["share_sum"] / totals["share_days"], np.nan)
            # The bid behind the window's cost per click is the click-weighted one: the days that bought the clicks.
            # Only days that say their bid count: a day of clicks without one would weigh in as a bid of zero.
            priced_clicks = totals["priced_clicks"]
            paid_bid = np.where(priced_clicks > 0, totals["clicks_times_bid"] / priced_clicks, np.nan)
            cpc_to_bid = np.where(paid_bid > 0, totals["priced_cost"] / priced_clicks / paid_bid, np.nan)
        rows = self._kept_in_keyword_order(has_bid & (reference > 0))
        return pd.DataFrame(
            {
                "keyword_id": np.concatenate([self.sorted_ids, self.later_ids])[rows],
                "bid_in_force": totals["latest_bid"][rows],
                "reference_bid": reference[rows],
                "log1p_base_clicks": np.log1p(totals["clicks"][rows] / CONTEXT_DAYS),
                "base_cpc_to_bid": cpc_to_bid[rows],
                "paid_bid": paid_bid[rows],
                "base_impression_share": mean_share[rows],
                "day_of_week": float(next_day.weekday()),
            },
            copy=False,  # the arrays are the frame's own: not copied again into one block
        )


def _add_known(total: np.ndarray, values: np.ndarray) -> None:
    """`values` added to `total` in place where they are known (not NaN): a missing day adds nothing."""
    np.add(total, values, out=total, where=~np.isnan(values))


def _context(panel: _Panel, end: int) -> pd.DataFrame:
    """The context as of the end of panel day `end - 1`, from the `CONTEXT_DAYS` columns before `end`."""
    totals = _WindowTotals.of(panel.keyword_ids)
    for column in range(end - CONTEXT_DAYS, end):
        totals.add({name: values[:, column] for name, values in panel.values.items()})
    return totals.context(panel.days[end - 1] + dt.timedelta(days=1))


def sample_halvings(keyword_count: int, max_keywords: int = MAX_TRAINING_KEYWORDS) -> int:
    """How many times an account of `keyword_count` keywords is halved for the landscape's sample: none up to
    `max_keywords`, else until at most `max_keywords` are expected. A power of two, not the exact share, so that an
    account whose size moves a little from day to day keeps the same sample."""
    halvings = 0
    while keyword_count > max_keywords << halvings:
        halvings += 1
    return halvings


def in_training_sample(keyword_ids: np.ndarray, halvings: int) -> np.ndarray:
    """Whether each keyword is in the sample of one keyword in 2**halvings. A keyword is in it by a hash of its ID
    (pandas' `hash_array`, the same on every machine), not by a draw: it is in or out on every day, so a day's sampled
    rows can be kept and read again (`report_history.sampled_history`), and each sample lies within the larger ones."""
    ids = np.asarray(keyword_ids, dtype="int64")
    if halvings == 0:
        return np.ones(len(ids), dtype=bool)
    return (pd.util.hash_array(ids) >> np.uint64(64 - halvings)) == 0


def training_keywords(keyword_ids: np.ndarray, max_keywords: int = MAX_TRAINING_KEYWORDS) -> np.ndarray:
    """The keywords a landscape is learnt from (sorted): all of them, or the sample (`in_training_sample`) that
    halves them until at most `max_keywords` are expected. Keywords already sampled with a halving or more stay
    whole while they are at most twice `max_keywords`: each smaller sample lies within the larger ones."""
    ids = unique_keyword_ids(keyword_ids)
    return ids[in_training_sample(ids, sample_halvings(len(ids), max_keywords))]


def training_rows(
    reports: pd.DataFrame,
    first_target: dt.date,
    last_target: dt.date,
    max_keywords: int = MAX_TRAINING_KEYWORDS,
) -> pd.DataFrame:
    """One row per keyword and target day: the context as of the day before, the bid in force on the day and the
    outcome. A day without a report row is zero clicks at the keyword's latest bid (bids change only when the
    platform publishes, so that bid is the one in force but on a publication day)."""
    ids = training_keywords(reports["keyword_id"].to_numpy(), max_keywords)
    panel = _panel(reports, first_target - dt.timedelta(days=CONTEXT_DAYS), last_target, ids)
    carried_bid = panel.values["max_cpc"].copy(order="F")  # each keyword's latest bid, carried forward a day
    for day in range(1, len(panel.days)):
        np.copyto(carried_bid[:, day], carried_bid[:, day - 1], where=np.isnan(carried_bid[:, day]))
    # Each target day's rows, as columns: one frame at the end, not a frame a day to concatenate.
    columns: dict[str, list[np.ndarray]] = {}
    for end in range(CONTEXT_DAYS, len(panel.days)):
        context = _context(panel, end)
        row = np.searchsorted(panel.keyword_ids, context["keyword_id"].to_numpy())
        bid = carried_bid[row, end]
        log_bid_ratio = np.log(bid / context["reference_bid"].to_numpy())
        kept = np.isfinite(log_bid_ratio)
        day = {
            **{name: context[name].to_numpy()[kept] for name in context.columns},
            "date": np.full(kept.sum(), np.datetime64(panel.days[end], "ns")),
            "bid": bid[kept],
            "clicks": np.nan_to_num(panel.values["clicks"][row[kept], end]),
            "cost": np.nan_to_num(panel.values["cost"][row[kept], end]),
            "log_bid_ratio": log_bid_ratio[kept],
        }
        for name, values in day.items():
            columns.setdefault(name, []).append(values)
    # The arrays are the frame's own: not copied again into one block (2 s for the rows of 10M keywords' sample).
    return pd.DataFrame({name: np.concatenate(parts) for name, parts in columns.items()}, copy=False)


@dataclass
class BidLandscape:
    """Constant-elasticity curves around each keyword's recent position, with pooled elasticities:

        clicks(bid) = clicks at the bid in force × (bid / bid in force) ^ e
        e = e0 + e1 × (cost-per-click-to-bid − its mean) + e2 × (impression share − its mean)
        cost per click(bid) = the keyword's recent cost per click × (bid / the bid that paid for it) ^ f × exp(c0)

    The click elasticity depends on where the keyword stands in its auctions: one that wins most of them (high
    impression share) or pays nearly its bid is at the top, where a higher bid buys little more. Without impression
    share in the reports, e2 is 0."""

    click_elasticity: float  # e0
    click_elasticity_by_position: float  # e1
    click_elasticity_by_share: float  # e2
    mean_cpc_to_bid: float
    mean_impression_share: float
    cost_elasticity: float  # f
    cost_level: float  # c0
    day_of_week_effects: tuple[float, ...]  # log click level by day of week, relative to the context week
    trained_through: dt.date
    training_rows: int
    varied_rows: int
    holdout_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def version(self) -> str:
        numbers = (
            self.click_elasticity,
            self.click_elasticity_by_position,
            self.click_elasticity_by_share,
            self.cost_elasticity,
            self.cost_level,
        )
        return hashlib.sha256(repr((numbers, self.trained_through)).encode()).hexdigest()[:12]

    def to_frame(self, day: dt.date) -> pd.DataFrame:
        """One row: the landscape as the `bid_landscape` table stores it."""
        row = {
            name: value
            for name, value in asdict(self).items()
            if name not in ("day_of_week_effects", "holdout_metrics")
        }
        row.update(
            {f"day_of_week_effect_{n}": value for n, value in enumerate(self.day_of_week_effects)},
            **self.holdout_metrics,
            version=self.version,
            date=pd.Timestamp(day),
            trained_through=pd.Timestamp(self.trained_through),
        )
        return pd.DataFrame([row])

    @classmethod
    def from_row(cls, row: pd.Series) -> BidLandscape:
        names = {f.name for f in fields(cls)} - {"day_of_week_effects", "holdout_metrics"}
        values = {name: row[name] for name in names}
        values["trained_through"] = pd.Timestamp(row["trained_through"]).date()
        values["training_rows"], values["varied_rows"] = int(row["training_rows"]), int(row["varied_rows"])
        effects = tuple(float(row[f"day_of_week_effect_{n}"]) for n in range(7))
        metrics = {name: float(row[name]) for name in row.index if name.startswith("holdout_")}
        return cls(**values, day_of_week_effects=effects, holdout_metrics=metrics)

    @classmethod
    def empty_frame(cls) -> pd.DataFrame:
        """The `bid_landscape` table's columns with no row: a day without a landscape still has a readable table."""
        zero = np.zeros(1)
        numbers = {f.name: 0.0 for f in fields(cls) if f.type == "float"}
        placeholder = cls(
            **numbers,
            day_of_week_effects=(0.0,) * 7,
            trained_through=dt.date(1970, 1, 1),
            training_rows=0,
            varied_rows=0,
            holdout_metrics=holdout_metrics({"clicks": (zero, zero), "cost": (zero, zero)}),
        )
        return placeholder.to_frame(dt.date(1970, 1, 1)).iloc[0:0]

    def describe(self) -> str:
        return (
            f"bid landscape {self.version} through {self.trained_through}: click elasticity "
            f"{self.click_elasticity:.2f} ({self.click_elasticity_by_position:+.2f} per unit of cost-per-click-to-bid "
            f"above {self.mean_cpc_to_bid:.2f}, {self.click_elasticity_by_share:+.2f} per unit of impression share "
            f"above {self.mean_impression_share:.2f}), cost-per-click elasticity {self.cost_elasticity:.2f}"
        )

    def elasticities(self, context: pd.DataFrame) -> np.ndarray:
        position = context["base_cpc_to_bid"].to_numpy(dtype="float64") - self.mean_cpc_to_bid
        share = context["base_impression_share"].to_numpy(dtype="float64") - self.mean_impression_share
        return np.clip(
            self.click_elasticity
            + self.click_elasticity_by_position * np.nan_to_num(position)
            + self.click_elasticity_by_share * np.nan_to_num(share),
            0.0,
            3.0,
        )

    def _cost_terms(self, context: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(level, the bid that paid for the recent cost per click, priced) per keyword: cost per click(bid) is
        level × paid ^ (1 − f) × bid ^ f where priced, else level × bid, at most the bid either way."""
        paid = context["paid_bid"].to_numpy(dtype="float64")
        ratio = context["base_cpc_to_bid"].to_numpy(dtype="float64")
        level = np.where(np.isfinite(ratio), ratio, self.mean_cpc_to_bid) * np.exp(self.cost_level)
        # Without recent clicks there is no recent price: the account's usual cost-per-click-to-bid at this bid.
        return level, paid, np.isfinite(ratio) & (paid > 0)

    def _cost_per_click(self, context: pd.DataFrame, bids: np.ndarray, log_bids: np.ndarray) -> np.ndarray:
        """recent cost per click × (bid / the bid that paid for it) ^ f × exp(c0), at most the bid; written as
        level × paid ^ (1 − f) × bid ^ f so that the only keywords × candidates work is one exp."""
        level, paid, priced = (terms[:, None] for terms in self._cost_terms(context))
        f = self.cost_elasticity
        anchored = level * np.where(priced, paid, 1.0) ** (1.0 - f) * np.exp(f * log_bids)
        return np.minimum(np.where(priced, anchored, level * bids), bids)

    def response(self, context: pd.DataFrame, bids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(clicks relative to the clicks at the bid in force, expected cost per click) at each candidate bid
        (keywords × candidates)."""
        current = context["bid_in_force"].to_numpy(dtype="float64")[:, None]
        log_bids = np.log(bids)
        multiplier = np.exp(self.elasticities(context)[:, None] * (log_bids - np.log(current)))
        return multiplier, self._cost_per_click(context, bids, log_bids)

    def stationary_bids(self, context: pd.DataFrame, value_per_click: np.ndarray) -> np.ndarray:
        """Where each keyword's profit, clicks(bid) × (value per click − cost per click(bid)), turns (keywords × 3,
        NaN where there is none): the turning point of each piece of the cost curve and the kink between them.

        With clicks ∝ bid^e, where cost per click = s × bid (s = 1 where capped at the bid, min(level, 1) for an
        unpriced keyword), d profit / d bid ∝ bid^(e−1) (e·v − (e + 1)·s·bid): profit rises up to
        e·v / ((e + 1)·s), then falls. Where it is K × bid^f (K = level × paid^(1−f)), d profit / d bid ∝
        bid^(e−1) (e·v − (e + f)·K·bid^f): up to (e·v / ((e + f)·K))^(1/f), then down (f > 0; f = 0 is
        monotone). The two meet where K × bid^f = bid.
        So on each piece profit rises then falls (or only one of them), and the best whole-cent bid of a range is
        an end of it or a cent either side of one of these bids put inside it: the optimizer's exact candidates."""
        e = self.elasticities(context)
        value = np.asarray(value_per_click, dtype="float64")
        level, paid, priced = self._cost_terms(context)
        f = self.cost_elasticity
        nothing = np.full(len(value), np.nan)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a zero level or e = 0: inf, 0 or NaN
            slope = np.where(priced, 1.0, np.minimum(level, 1.0))
            proportional = e * value / ((e + 1.0) * slope)
            anchor = level * paid ** (1.0 - f)
            anchored = (e * value / ((e + f) * anchor)) ** (1.0 / f) if f != 0 else nothing
            kink = anchor ** (1.0 / (1.0 - f)) if f != 1 else nothing
        return np.column_stack([proportional, np.where(priced, anchored, np.nan), np.where(priced, kink, np.nan)])

    def predict_outcomes(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(expected clicks, expected cost) of training-style rows at their bids in force."""
        base = np.expm1(rows["log1p_base_clicks"].to_numpy(dtype="float64"))
        weekday = np.asarray(self.day_of_week_effects)[rows["day_of_week"].to_numpy(dtype="int64")]
        clicks = base * np.exp(weekday + self.elasticities(rows) * rows["log_bid_ratio"].to_numpy(dtype="float64"))
        bids = rows["bid"].to_numpy(dtype="float64")[:, None]
        cost_per_click = self._cost_per_click(rows, bids, np.log(bids))[:, 0]
        return clicks, clicks * cost_per_click


def landscape_for_day(reports: pd.DataFrame, day: dt.date, training_days: int = TRAINING_DAYS) -> BidLandscape:
    """The landscape trained on the report rows of the `training_days` days through `day` (with the context week
    before them); raises LandscapeUnavailable when they cannot teach one."""
    first_report = as_day(reports["date"]).min().date() if len(reports) else day
    first = max(first_report + dt.timedelta(days=CONTEXT_DAYS), day - dt.timedelta(days=training_days - 1))
    if first > day:
        raise LandscapeUnavailable(f"the landscape needs more than {CONTEXT_DAYS} days of reports before {day}")
    return fit_landscape(training_rows(reports, first, day), day)


def fit_landscape(rows: pd.DataFrame, trained_through: dt.date) -> BidLandscape:
    """Fit on `rows` (from `training_rows`): first without the last `HOLDOUT_DAYS` days, which the reported errors
    are measured on, then on every day."""
    varied = int((np.abs(rows["log_bid_ratio"]) > np.log1p(MEANINGFUL_BID_CHANGE)).sum()) if len(rows) else 0
    if varied < MIN_VARIED_ROWS:
        raise LandscapeUnavailable(
            f"only {varied} keyword-days had a bid change above {MEANINGFUL_BID_CHANGE:.0%} "
            f"(at least {MIN_VARIED_ROWS} are needed): bids have not varied enough to learn "
            "how clicks and costs respond"
        )
    dates = as_day(rows["date"])
    holdout = (dates > dates.max() - pd.Timedelta(days=HOLDOUT_DAYS)).to_numpy()
    if holdout.all() or not holdout.any():
        raise LandscapeUnavailable("the landscape needs rows both before and inside its holdout week")
    probe = _fit(rows[~holdout], trained_through, varied)
    heldout = rows[holdout]
    clicks, cost = probe.predict_outcomes(heldout)
    metrics = holdout_metrics(
        {
            "clicks": (clicks, heldout["clicks"].to_numpy(dtype="float64")),
            "cost": (cost, heldout["cost"].to_numpy(dtype="float64")),
        }
    )
    fitted = _fit(rows, trained_through, varied)
    fitted.holdout_metrics = metrics
    return fitted


def holdout_metrics(predicted_and_actual: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """MAE, RMSE and calibration (predicted total / actual total) of each quantity on the holdout."""
    metrics = {}
    for quantity, (predicted, actual) in predicted_and_actual.items():
        metrics |= {
            f"holdout_{quantity}_mae": float(np.mean(np.abs(predicted - actual))),
            f"holdout_{quantity}_rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
            f"holdout_{quantity}_calibration": float(predicted.sum() / max(actual.sum(), 1e-9)),
        }
    return metrics


def _fit(rows: pd.DataFrame, trained_through: dt.date, varied: int) -> BidLandscape:
    """Poisson regression of clicks on the log bid ratio with the recent clicks as exposure (sklearn has no offset:
    a Poisson fit of clicks / exposure weighted by the exposure is the same fit), and least squares of the log cost
    per click on it, weighted by clicks."""
    from sklearn.linear_model import LinearRegression, PoissonRegressor

    base = np.expm1(rows["log1p_base_clicks"].to_numpy(dtype="float64"))
    usable = base > 0
    x = rows["log_bid_ratio"].to_numpy(dtype="float64")
    ratio = rows["base_cpc_to_bid"].to_numpy(dtype="float64")
    mean_ratio = float(np.average(np.nan_to_num(ratio[usable]), weights=base[usable]))
    position = np.nan_to_num(ratio - mean_ratio)
    share = rows["base_impression_share"].to_numpy(dtype="float64")
    shared = usable & np.isfinite(share)
    mean_share = float(np.average(share[shared], weights=base[shared])) if shared.any() else 0.0
    weekday = np.eye(7)[rows["day_of_week"].to_numpy(dtype="int64")]
    design = np.column_stack([x, x * position, x * np.nan_to_num(share - mean_share), weekday])
    clicks = rows["clicks"].to_numpy(dtype="float64")
    glm = PoissonRegressor(alpha=1e-6, fit_intercept=False, max_iter=300)
    glm.fit(design[usable], clicks[usable] / base[usable], sample_weight=base[usable])
    paid = (clicks > 0) & np.isfinite(ratio) & (ratio > 0)
    observed = rows["cost"].to_numpy(dtype="float64")[paid] / clicks[paid]
    paid_bid = rows["paid_bid"].to_numpy(dtype="float64")[paid]
    recent = ratio[paid] * paid_bid
    cost_x = np.log(rows["bid"].to_numpy(dtype="float64")[paid] / paid_bid)
    least_squares = LinearRegression().fit(
        cost_x[:, None], np.log(np.maximum(observed, 0.01) / recent), sample_weight=clicks[paid]
    )
    return BidLandscape(
        click_elasticity=float(glm.coef_[0]),
        click_elasticity_by_position=float(glm.coef_[1]),
        click_elasticity_by_share=float(glm.coef_[2]),
        mean_cpc_to_bid=mean_ratio,
        mean_impression_share=mean_share,
        cost_elasticity=float(np.clip(least_squares.coef_[0], 0.0, 3.0)),
        cost_level=float(least_squares.intercept_),
        day_of_week_effects=tuple(float(c) for c in glm.coef_[3:]),
        trained_through=trained_through,
        training_rows=len(rows),
        varied_rows=varied,
    )
