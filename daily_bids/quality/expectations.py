"""Data-quality rules and their evaluation.

Expectation suites are built from the data contract (`daily_bids.schema`) and evaluated with great-expectations 1.x
through a small adapter: an ephemeral context, a pandas data source, an `ExpectationSuite` and a
`ValidationDefinition`. (dagster-ge pins great-expectations below 1.0, so it is not used.) great_expectations is
imported inside the adapter only: it takes seconds to import and Definitions must load fast.

Each expectation has a severity: "error" rules block everything downstream, "warn" rules are reported.
Row volume against the trailing days and distribution drift (PSI) are computed here with pandas.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from daily_bids.features.keyword_features import FEATURES
from daily_bids.progress import Progress
from daily_bids.schema import (
    KEY_COLUMNS,
    LINEAGE_COLUMNS,
    MATCH_TYPES,
    METRIC_COLUMNS,
    NUMERIC_COLUMNS,
    PAIR_RULES,
    REQUIRED_COLUMNS,
    raw_dtypes,
    report_dtypes,
)
from daily_bids.storage.warehouse import ROW_GROUP_ROWS

ERROR, WARN = "error", "warn"
SAMPLE_ROWS = 5
# Rows per batch when a suite reads a large table batch by batch: the warehouse's largest row group, so a batch holds
# a whole row group of any partition the warehouse wrote, never one and a sliver of the next.
BATCH_ROWS = ROW_GROUP_ROWS
MAX_NULL_SHARE = 0.05  # share of nulls in a required column above which a WARN is raised
VOLUME_BAND = (0.5, 2.0)  # a day's rows against the trailing median: outside this band is a WARN
PSI_WARN = 0.25  # population stability index above which a distribution counts as drifted
TRAILING_DAYS = 7


@dataclass(frozen=True)
class Expectation:
    """One great-expectations expectation, by class name and arguments, with a severity."""

    kind: str
    kwargs: dict[str, Any]
    severity: str
    description: str

    @property
    def label(self) -> str:
        target = (
            self.kwargs.get("column")
            or self.kwargs.get("column_list")
            or f"{self.kwargs.get('column_A')} vs {self.kwargs.get('column_B')}"
        )
        return f"{self.kind}({target})"


@dataclass
class Outcome:
    expectation: Expectation
    success: bool
    observed_value: Any = None
    unexpected_count: int = 0
    unexpected_percent: float = 0.0
    sample: list[dict] = field(default_factory=list)
    error: str = ""
    judged_rows: int = 0  # the rows the percent is of (great-expectations leaves nulls out of most rules)


# ---- suites from the contract ---------------------------------------------------------------------------------------
def dtype_mismatches(frame: pd.DataFrame, dtypes: dict[str, str]) -> dict[str, str]:
    """Columns missing or of another dtype than the contract's, as {column: problem}. (Checked with pandas: great-
    expectations' type expectations do not see pandas' nullable extension types reliably.)"""
    problems = {}
    for name, expected in dtypes.items():
        if name not in frame.columns:
            problems[name] = f"missing (expected a {expected} column)"
        elif str(frame[name].dtype) != expected:
            problems[name] = f"expected {expected}, found {frame[name].dtype}"
    return problems


def layer_dtypes(layer: str) -> dict[str, str]:
    return raw_dtypes() if layer == "raw" else report_dtypes()


def report_suite(layer: str, days: list[dt.date]) -> list[Expectation]:
    """Expectations of the raw or the validated report. Row rules are WARN on raw (its bad rows are quarantined
    downstream) and ERROR on validated (a bad row there is a bug)."""
    if layer not in ("raw", "validated"):
        raise ValueError(f"unknown report layer {layer!r}")
    row_rule = WARN if layer == "raw" else ERROR
    suite = []  # column presence and types: `dtype_mismatches`
    first, last = pd.Timestamp(min(days)), pd.Timestamp(max(days))
    suite.append(
        Expectation(
            "ExpectColumnValuesToBeBetween",
            {"column": "date", "min_value": first, "max_value": last},
            ERROR,
            f"every row is dated inside the partition ({first.date()}...{last.date()})",
        )
    )
    for name in ("date", "keyword_id"):
        suite.append(Expectation("ExpectColumnValuesToNotBeNull", {"column": name}, row_rule, f"{name} is never null"))
    for name in REQUIRED_COLUMNS:
        if name not in KEY_COLUMNS:
            suite.append(
                Expectation(
                    "ExpectColumnValuesToNotBeNull",
                    {"column": name, "mostly": 1 - MAX_NULL_SHARE},
                    WARN,
                    f"at most {MAX_NULL_SHARE:.0%} of {name} is null",
                )
            )
    for name in NUMERIC_COLUMNS:
        suite.append(
            Expectation("ExpectColumnValuesToBeBetween", {"column": name, "min_value": 0}, row_rule, f"{name} ≥ 0")
        )
    for rule in PAIR_RULES:
        suite.append(
            Expectation(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {
                    "column_A": rule.larger,
                    "column_B": rule.smaller,
                    "or_equal": True,
                    "ignore_row_if": "either_value_is_missing",
                },
                row_rule,
                f"{rule.smaller} ≤ {rule.larger}",
            )
        )
    # Raw keyword_id is the report's criterion ID, shared by the ad groups holding one text and match type: a raw
    # keyword is (ad_group_id, keyword_id). Rows without an ad group ID compare equal on it (pandas' duplicated), so
    # among them the rule is (date, keyword_id). Validated keyword_id is the platform's key, unique per day alone.
    keys = ["date", "ad_group_id", "keyword_id"] if layer == "raw" else list(KEY_COLUMNS)
    suite.append(
        Expectation(
            "ExpectCompoundColumnsToBeUnique", {"column_list": keys}, row_rule, f"({', '.join(keys)}) is unique"
        )
    )
    if layer == "validated":
        suite.append(
            Expectation(
                "ExpectColumnValuesToBeInSet",
                {"column": "match_type", "value_set": [*MATCH_TYPES, "(not reported)"]},
                ERROR,
                "match_type is Exact, Phrase or Broad",
            )
        )
    return suite


def unique_keys(columns=KEY_COLUMNS) -> Expectation:
    return Expectation(
        "ExpectCompoundColumnsToBeUnique", {"column_list": list(columns)}, ERROR, f"({', '.join(columns)}) is unique"
    )


def not_null(column: str, severity: str = ERROR) -> Expectation:
    return Expectation("ExpectColumnValuesToNotBeNull", {"column": column}, severity, f"{column} is never null")


def at_least(column: str, minimum: float, severity: str = ERROR) -> Expectation:
    return Expectation(
        "ExpectColumnValuesToBeBetween", {"column": column, "min_value": minimum}, severity, f"{column} ≥ {minimum:g}"
    )


def between(column: str, minimum: float, maximum: float, severity: str = ERROR) -> Expectation:
    return Expectation(
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": minimum, "max_value": maximum},
        severity,
        f"{minimum:g} ≤ {column} ≤ {maximum:g}",
    )


def strictly_below(smaller: str, larger: str) -> Expectation:
    return Expectation(
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": larger, "column_B": smaller, "or_equal": False},
        ERROR,
        f"{smaller} < {larger}",
    )


def at_or_below_where_known(smaller: str, larger: str) -> Expectation:
    """`smaller` ≤ `larger` on every row where both are known."""
    return Expectation(
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": larger, "column_B": smaller, "or_equal": True, "ignore_row_if": "either_value_is_missing"},
        ERROR,
        f"{smaller} ≤ {larger} where known",
    )


def finite(column: str) -> Expectation:
    """Nulls pass (a quantity the source does not report); inf and -inf fail."""
    return Expectation(
        "ExpectColumnValuesToBeBetween",
        {"column": column, "min_value": -1e300, "max_value": 1e300},
        ERROR,
        f"{column} is finite",
    )


def bid_suite(min_bid: float, max_bid: float) -> list[Expectation]:
    """The rules every published bid obeys: one per keyword and day, below a finite expected value per click, an
    expected cost per click at or below the conservative value per click (where the value has a known spread),
    inside the caps. The blocking check on `keyword_bids` and the publishing step judge by this one suite."""
    return [
        unique_keys(),
        finite("expected_value_per_click"),
        strictly_below("bid", "expected_value_per_click"),
        at_or_below_where_known("expected_cost_per_click", "conservative_value_per_click"),
        between("bid", min_bid, max_bid),
    ]


def predictions_suite() -> list[Expectation]:
    """One prediction per keyword and day; expected clicks known and never negative; every prediction finite."""
    suite = [
        unique_keys(),
        not_null("expected_clicks"),
        at_least("expected_clicks", 0),
        at_least("expected_conversions", 0),
        at_least("expected_value_per_click", 0),
    ]
    predicted = ("expected_clicks", "expected_conversions", "expected_value", "expected_value_per_click")
    return suite + [finite(column) for column in predicted]


def features_suite() -> list[Expectation]:
    """One row per keyword and day; features from impressions and clicks never null (every report carries those
    two); counts never negative."""
    always_known = [f.name for f in FEATURES if set(f.source_columns) <= {"impressions", "clicks", "date"}]
    return (
        [unique_keys(), between("history_days", 1, 28)]
        + [not_null(name) for name in always_known]
        + [at_least(f.name, 0) for f in FEATURES if f.unit in ("count", "currency", "days")]
    )


# ---- the great-expectations adapter ---------------------------------------------------------------------------------
def run_expectations(frame: pd.DataFrame, expectations: list[Expectation], name: str) -> list[Outcome]:
    """Evaluate `expectations` on `frame` with great-expectations; one Outcome each, in order."""
    return run_expectations_in_batches([frame], expectations, name)


# Expectations about rows together rather than each row alone: judged once, on their columns of every batch.
ACROSS_ROWS = ("ExpectCompoundColumnsToBeUnique",)


def split_suite(expectations: list[Expectation]) -> tuple[list[Expectation], list[Expectation]]:
    """The rules judged on each row alone and the rules judged on rows together (`ACROSS_ROWS`), each in suite
    order: the first are judged batch by batch, the second once, on the kept columns of every batch."""
    row_rules = [e for e in expectations if e.kind not in ACROSS_ROWS]
    across = [e for e in expectations if e.kind in ACROSS_ROWS]
    return row_rules, across


def judge_across_rows(kept: list[pd.DataFrame], across: list[Expectation], name: str) -> list[Outcome]:
    """The rules across rows on the kept columns (`sample_columns`) of every batch, in row order: one Outcome each."""
    together = pd.concat(kept, ignore_index=True)
    return validation(f"{name}_across_rows", across)(together)


def run_expectations_in_batches(
    batches: Iterable[pd.DataFrame],
    expectations: list[Expectation],
    name: str,
    log: Callable[[str], None] | None = None,
    rows: int | None = None,
) -> list[Outcome]:
    """Evaluate `expectations` on the rows of every batch, one Outcome each, in order, holding one batch at a time
    (with the few columns the rules across rows need, such as uniqueness, kept from every batch).

    Counts add up over batches and samples come from the first batches that have them; a rule with a `mostly`
    share is judged on the counts of every batch together (`merged`), as on one frame.

    With `log` and `rows` (the rows of every batch, e.g. from the partitions' footers), progress lines say the rows
    checked, the rate and the time left."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    progress = Progress(f"checking {name}", rows, log) if log is not None and rows is not None else None
    found: dict[int, list[Outcome]] = {id(e): [] for e in expectations}
    batches = iter(batches)
    head = list(itertools.islice(batches, 2))
    if len(head) < 2:  # one frame holds every row: one validation judges all the rules (building one costs ~0.5 s)
        for frame in head:
            for outcome in validation(name, expectations)(frame.reset_index(drop=True)):
                found[id(outcome.expectation)].append(outcome)
        return [merged(e, found[id(e)]) for e in expectations]
    row_rules, across = split_suite(expectations)
    validate_rows = validation(f"{name}_rows", row_rules)
    kept = []
    for batch in itertools.chain(head, batches):
        batch = batch.reset_index(drop=True)
        for outcome in validate_rows(batch):
            found[id(outcome.expectation)].append(outcome)
        if across:
            kept.append(batch[sample_columns(batch, across)])
        if progress is not None:
            progress.advance(len(batch))
    if across:
        for outcome in judge_across_rows(kept, across, name):
            found[id(outcome.expectation)].append(outcome)
    return [merged(e, found[id(e)]) for e in expectations]


def validation(name: str, expectations: list[Expectation]) -> Callable[[pd.DataFrame], list[Outcome]]:
    """A great-expectations validation of `expectations`, built once, to run on any number of frames."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # great-expectations fingerprints every frame under 1 GB by hashing all its rows, for result metadata we never
    # read: a quarter of a 10M-row check's time, batch after batch. A threshold of 0 skips the hash.
    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(f"{name}_source")
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(f"{name}_batch")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=f"{name}_suite"))
    # Results come back in great-expectations' own order; the id it gives each expectation pairs them up again.
    ours_by_id = {suite.add_expectation(getattr(gxe, e.kind)(**e.kwargs)).id: e for e in expectations}
    validation = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))

    def run(frame: pd.DataFrame) -> list[Outcome]:
        if not expectations:
            return []
        result = validation.run(
            batch_parameters={"dataframe": _numpy_backed(frame)},
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS},
        )
        return [_outcome(ours_by_id[item.expectation_config.id], item, frame) for item in result.results]

    return run


def _outcome(expectation: Expectation, item, frame: pd.DataFrame) -> Outcome:
    details = item.result or {}
    error = ""
    if item.exception_info and item.exception_info.get("raised_exception"):
        error = str(item.exception_info.get("exception_message", "")).splitlines()[0][:300]
    indices = [i for i in details.get("partial_unexpected_index_list") or [] if isinstance(i, (int, np.integer))]
    return Outcome(
        expectation=expectation,
        success=bool(item.success),
        observed_value=_plain(details.get("observed_value")),
        unexpected_count=int(details.get("unexpected_count") or 0),
        unexpected_percent=float(details.get("unexpected_percent") or 0.0),
        sample=_sample_rows(frame, expectation, indices),
        error=error,
        judged_rows=int(details.get("element_count") or len(frame)) - int(details.get("missing_count") or 0),
    )


def merged(expectation: Expectation, outcomes: list[Outcome]) -> Outcome:
    """One outcome from a rule's outcome on each batch, in row order: what the rule gives on the batches together
    (counts add up, the samples are the first failing rows, the percent is reckoned as great-expectations does)."""
    if len(outcomes) == 1:
        return outcomes[0]
    unexpected, judged = sum(o.unexpected_count for o in outcomes), sum(o.judged_rows for o in outcomes)
    failed = [outcome for outcome in outcomes if not outcome.success]
    if "mostly" in expectation.kwargs and not any(outcome.error for outcome in outcomes):
        # A share is judged on every row together, as great-expectations judges one frame: vacuously true without
        # rows, else the share of the judged rows that pass against `mostly`, in its arithmetic (`_mostly_success`).
        success = judged == 0 or (float(judged) - float(unexpected)) / float(judged) >= expectation.kwargs["mostly"]
    else:
        success = not failed
    return Outcome(
        expectation=expectation,
        success=success,
        observed_value=(failed or outcomes)[0].observed_value,
        unexpected_count=unexpected,
        # great-expectations' own arithmetic (count / rows * 100): a table judged whole gives the very same float.
        unexpected_percent=unexpected / judged * 100 if judged else 0.0,
        sample=[row for outcome in outcomes for row in outcome.sample][:SAMPLE_ROWS],
        error=next((outcome.error for outcome in outcomes if outcome.error), ""),
        judged_rows=judged,
    )


def _numpy_backed(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable numeric columns as float64 with NaN: great-expectations' pandas engine is several times faster on
    NumPy dtypes than on pandas' extension arrays, and a null stays a null."""
    view = frame.copy(deep=False)
    for name in view.columns:
        if isinstance(view[name].dtype, pd.api.extensions.ExtensionDtype) and pd.api.types.is_numeric_dtype(view[name]):
            view[name] = view[name].to_numpy(dtype="float64", na_value=np.nan)
    return view


def sample_columns(frame: pd.DataFrame, expectations: list[Expectation]) -> list[str]:
    """The columns that show a failing row of these rules: the keys, the rules' columns and the row's lineage."""
    involved = [v for e in expectations for k, v in e.kwargs.items() if k in ("column", "column_A", "column_B")]
    involved += [c for e in expectations for c in e.kwargs.get("column_list", [])]
    columns = list(dict.fromkeys([*KEY_COLUMNS, *involved, *LINEAGE_COLUMNS[:2]]))
    return [c for c in columns if c in frame.columns]


def _sample_rows(frame: pd.DataFrame, expectation: Expectation, indices: list[int]) -> list[dict]:
    if not indices:
        return []
    rows = frame.loc[indices[:SAMPLE_ROWS], sample_columns(frame, [expectation])]
    return [{k: _plain(v) for k, v in row.items()} for row in rows.to_dict("records")]


def _plain(value):
    """JSON-friendly values for metadata."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (pd.Timestamp, dt.date)):
        return value.isoformat()[:10]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value if isinstance(value, (int, float, str, bool)) else str(value)


# ---- volume and drift against the trailing days --------------------------------------------------------------------
REFERENCE_ROWS_PER_DAY = 1_000_000  # drift reference: a sample per trailing day is plenty for decile bins


class TrailingDays:
    """The up to TRAILING_DAYS materialized days of `table` before each day a check judges, with their row counts and
    drift samples. A range's days share most of their trailing days, so each trailing day is read once for the whole
    range, however many of its days it trails (a month's backfill of a large account would otherwise read every
    partition seven times over). Ask about days in increasing order: samples no later day can use are let go."""

    def __init__(self, store, table: str):
        self.store, self.table = store, table
        self._present = set(store.list_partitions(table))
        self._rows: dict[dt.date, int] = {}
        self._samples: dict[dt.date, pd.DataFrame] = {}

    def before(self, day: dt.date) -> list[dt.date]:
        """The materialized days among the TRAILING_DAYS before `day`, newest first."""
        earlier = [day - dt.timedelta(days=n) for n in range(1, TRAILING_DAYS + 1)]
        return [d for d in earlier if d in self._present]

    def row_counts(self, day: dt.date) -> list[int]:
        days = self.before(day)
        for missing in (d for d in days if d not in self._rows):
            self._rows[missing] = self.store.partition_rows(self.table, missing)
        return [self._rows[d] for d in days]

    def drift_scores(self, frame: pd.DataFrame, day: dt.date) -> tuple[dict[str, float], list[dt.date]]:
        """PSI of each drift column of `frame` (the rows of `day`) against a sample of its trailing days."""
        reference_days = self.before(day)
        if not reference_days:
            return {}, []
        for gone in [d for d in self._samples if d < day - dt.timedelta(days=TRAILING_DAYS)]:
            del self._samples[gone]
        for missing in (d for d in reference_days if d not in self._samples):
            self._samples[missing] = self.store.sample_partition(
                self.table, missing, list(DRIFT_COLUMNS), REFERENCE_ROWS_PER_DAY
            )
        reference = pd.concat([self._samples[d] for d in reference_days], ignore_index=True)
        scores = {
            column: population_stability_index(_finite(frame[column]), _finite(reference[column]))
            for column in DRIFT_COLUMNS
        }
        return scores, reference_days


def volume_verdict(rows: int, trailing_rows: list[int]) -> tuple[str | None, str]:
    """(severity or None, explanation) for a day's row count against the trailing days' counts."""
    if rows == 0:
        return ERROR, "no rows for this day: an empty or missing report"
    if not trailing_rows:
        return None, f"{rows} rows; no trailing days to compare with"
    median = float(np.median(trailing_rows))
    ratio = rows / median if median else float("inf")
    if not VOLUME_BAND[0] <= ratio <= VOLUME_BAND[1]:
        return WARN, f"{rows} rows is {ratio:.2f}× the trailing median of {median:.0f}"
    return None, f"{rows} rows, {ratio:.2f}× the trailing median of {median:.0f}"


def population_stability_index(current: np.ndarray, reference: np.ndarray, bins: int = 10) -> float:
    """PSI of `current` against `reference`, on log1p values in the reference's quantile bins."""
    current, reference = np.log1p(_finite(current)), np.log1p(_finite(reference))
    if len(current) == 0 or len(reference) == 0:
        return float("nan")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0 if np.all(current == reference[0]) else float("inf")
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(current, edges)[0] / len(current)
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _finite(values) -> np.ndarray:
    values = pd.Series(values).to_numpy(dtype="float64", na_value=np.nan)  # nulls of any kind as NaN, no copy
    return values[np.isfinite(values)]


# Bids in force are the platform's own doing, so their drift is no news about the market.
DRIFT_COLUMNS: tuple[str, ...] = METRIC_COLUMNS
