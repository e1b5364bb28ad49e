"""The keyword-report data contract: columns, types, nullability, ranges and keys, defined once.

The simulator, the landing-zone reader, validation, the great-expectations suites and the README's contract table all
derive from `REPORT_COLUMNS` and `ROW_RULES` below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Match types as Google Ads spells them in Ads Editor.
MATCH_TYPES: tuple[str, ...] = ("Exact", "Phrase", "Broad")
# What validated reports hold in a text column the source did not fill.
NOT_REPORTED = "(not reported)"
# A keyword's status as validated reports hold it: Google's ENABLED, PAUSED and REMOVED, every spelling of which
# (`normalize_status`) is one of these. Paused and removed keywords keep their history and features but get no bid.
KEYWORD_STATUSES: tuple[str, ...] = ("Enabled", "Paused", "Removed")
NOT_BID_STATUSES: tuple[str, ...] = ("Paused", "Removed")
# The outlier rule's default factor (BIDS_OUTLIER_FACTOR): shown in the contract table.
OUTLIER_FACTOR_DEFAULT = 5.0


@dataclass(frozen=True)
class ReportColumn:
    name: str
    kind: str  # "date", "id", "text", "count", "money" (both add up over days), "price" or "share" (they do not)
    description: str
    required: bool  # must be in every source file; optional columns may be absent
    aliases: tuple[str, ...] = ()  # other headers accepted for it (compared case- and space-insensitively)
    allowed_values: tuple[str, ...] = ()
    # The largest value one keyword can plausibly have in one day; above it a row is quarantined (out_of_range).
    # Deployments override it with BIDS_PLAUSIBLE_MAX. For an ID: the largest it can be (int64).
    plausible_max: float | None = None
    # A day's value above this many times the keyword's own total of the previous 28 days, and above
    # `outlier_floor`, is quarantined (outlier_vs_history): a restatement typo must not reach the priors.
    outlier_floor: float | None = None
    # Filled by validation from other columns; a file's column of this name is overwritten.
    set_by_validation: bool = False
    # A count that may be fractional: Google's conversions are, under data-driven and other non-last-click attribution.
    fractional: bool = False

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("count", "money", "price", "share")

    @property
    def is_additive(self) -> bool:
        """A day's values add up to a week's (clicks, cost); a bid or a share does not."""
        return self.kind in ("count", "money")

    @property
    def min_value(self) -> float | None:
        return 0.0 if self.is_numeric else None

    @property
    def null_policy(self) -> str:
        """What validation does with a null in this column (documented in the README's contract table)."""
        if self.kind in ("date", "id") or (self.is_numeric and self.required):
            return "row quarantined (missing_value)"
        if self.is_numeric:
            return "row quarantined (missing_value); a column null on every row of a day counts as not reported"
        return f"filled with `{NOT_REPORTED}`"


REPORT_COLUMNS: tuple[ReportColumn, ...] = (
    ReportColumn("date", "date", "Report day.", True, ("day",)),
    ReportColumn(
        "keyword_id",
        "id",
        "The ad platform's keyword identifier (Google's criterion ID); a positive integer. Unique per day within an "
        "ad group: with `ad_group_id`, a keyword is (`ad_group_id`, `keyword_id`).",
        True,
        ("keyword id", "criterion id"),
        plausible_max=2.0**63 - 1,
    ),
    # The platform's keyword_id is a key of its own where a report has ad group IDs
    # (`daily_bids.ingest.validation.assign_keyword_ids`): the reported ID stays here, for the Ads Editor file and
    # any publisher to address the ad platform's keyword.
    ReportColumn(
        "criterion_id",
        "text",
        "the `keyword_id` as reported (the ad platform's criterion ID)",
        False,
        set_by_validation=True,
    ),
    ReportColumn("keyword", "text", "Keyword text.", False, ("search keyword", "keyword text")),
    ReportColumn("campaign", "text", "Campaign name.", False, ("campaign name",)),
    ReportColumn("ad_group", "text", "Ad group name.", False, ("ad group", "ad group name", "adgroup")),
    # IDs as the platform writes them, kept as text: Ads Editor matches a file's rows by them.
    ReportColumn("campaign_id", "text", "The ad platform's campaign identifier.", False, ("campaign id",)),
    ReportColumn("ad_group_id", "text", "The ad platform's ad group identifier.", False, ("ad group id", "adgroup id")),
    ReportColumn(
        "match_type",
        "text",
        "Keyword match type.",
        False,
        ("match type", "search keyword match type", "keyword match type"),
        MATCH_TYPES,
    ),
    ReportColumn(
        "status",
        "text",
        "The keyword's status: `removed` in it reads as Removed (`Campaign removed` too), `paused` as Paused "
        "(`Ad group paused`, `Campaign paused`), anything else as Enabled (`Eligible`, `Below first page bid`). "
        "Paused and removed keywords get no bid.",
        False,
        ("keyword status", "criterion status", "ad group criterion status"),
        KEYWORD_STATUSES,
    ),
    ReportColumn(
        "impressions",
        "count",
        "Times the ad was shown.",
        True,
        ("impr.", "impr"),
        plausible_max=1e9,
        outlier_floor=100_000,
    ),
    ReportColumn(
        "clicks",
        "count",
        "Clicks on the ad; never more than impressions.",
        True,
        plausible_max=1e8,
        outlier_floor=10_000,
    ),
    ReportColumn(
        "cost",
        "money",
        "Spend on clicks, in account currency.",
        False,
        ("spend",),
        plausible_max=1e7,
        outlier_floor=10_000,
    ),
    ReportColumn(
        "conversions",
        "count",
        "Conversions from the clicks; never more than clicks. May be fractional (Google attributes parts of one).",
        False,
        ("conv.",),
        plausible_max=1e7,
        outlier_floor=1_000,
        fractional=True,
    ),
    ReportColumn(
        "conversion_value",
        "money",
        "Value of those conversions, in account currency.",
        False,
        ("conv. value", "conversion value", "total conv. value", "all conv. value"),
        plausible_max=1e8,
        outlier_floor=10_000,
    ),
    # The bid in force is what the bid landscape learns from: without it the platform bids by the fixed margin.
    ReportColumn(
        "max_cpc",
        "price",
        "The keyword's max CPC (its bid) in force that day, in account currency.",
        False,
        ("max. cpc", "max cpc", "keyword max cpc", "max. cpc (keyword)"),
        plausible_max=10_000,
    ),
    ReportColumn(
        "search_impression_share",
        "share",
        "Impressions won / impressions the keyword was eligible for, "
        "0 to 1 (`45.2%` reads as 0.452; Google's `< 10%` as 0.1 and `> 90%` as 0.9).",
        False,
        ("search impr. share", "search impression share", "impr. share"),
        plausible_max=1.0,
    ),
)

REPORT_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in REPORT_COLUMNS)
COLUMNS_BY_NAME = {c.name: c for c in REPORT_COLUMNS}
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in REPORT_COLUMNS if c.required)
KEY_COLUMNS: tuple[str, ...] = ("date", "keyword_id")
# Text carried with each keyword from the validated report to its features, predictions and bids.
DIMENSION_COLUMNS: tuple[str, ...] = tuple(c.name for c in REPORT_COLUMNS if c.kind == "text")
NUMERIC_COLUMNS: tuple[str, ...] = tuple(c.name for c in REPORT_COLUMNS if c.is_numeric)
# The additive ones: the features' rolling sums, the outlier rule and the report totals are over these.
METRIC_COLUMNS: tuple[str, ...] = tuple(c.name for c in REPORT_COLUMNS if c.is_additive)

# Where each raw row came from, so a quarantined row can be traced to its file and line.
LINEAGE_COLUMNS: tuple[str, ...] = ("source_file", "source_row", "parse_errors")
RAW_COLUMN_NAMES: tuple[str, ...] = (*REPORT_COLUMN_NAMES, *LINEAGE_COLUMNS)


@dataclass(frozen=True)
class PairRule:
    """`smaller` never exceeds `larger` on one row."""

    code: str
    smaller: str
    larger: str


PAIR_RULES: tuple[PairRule, ...] = (
    PairRule("clicks_above_impressions", "clicks", "impressions"),
    PairRule("conversions_above_clicks", "conversions", "clicks"),
)

# Pandas dtypes of validated reports: nullable integers, so a column the source did not report can stay unknown.
_PANDAS_DTYPES = {
    "date": "datetime64[ns]",
    "id": "int64",
    "text": "string",
    "count": "Int64",
    "money": "Float64",
    "price": "Float64",
    "share": "Float64",
}


def report_dtypes() -> dict[str, str]:
    return {c.name: "Float64" if c.fractional else _PANDAS_DTYPES[c.kind] for c in REPORT_COLUMNS}


def raw_dtypes() -> dict[str, str]:
    """Raw rows keep nullable keys: a row with a missing key is kept (and then quarantined), never dropped. Numbers
    stay as read (floats), so a value too large for an integer is quarantined as out of range, never wrapped."""
    numbers = {c.name: "Float64" for c in REPORT_COLUMNS if c.kind in ("id", "count")}
    return {**report_dtypes(), **numbers, "source_file": "string", "source_row": "int64", "parse_errors": "string"}


def empty_raw() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in raw_dtypes().items()})


def as_day(values) -> pd.Series:
    """Dates as midnight timestamps, the one representation of a day used in every frame."""
    return pd.to_datetime(pd.Series(values)).dt.normalize().astype("datetime64[ns]")


def conform(
    frame: pd.DataFrame, dtypes: dict[str, str], what: str = "keyword report", optional: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Column order and dtypes; raises naming missing columns and the expected schema. Columns in `optional` that
    the frame lacks are added, null."""
    missing = [name for name in dtypes if name not in frame.columns and name not in optional]
    if missing:
        raise ValueError(f"{what} is missing columns {missing}; expected {list(dtypes)}")
    # No copy: under pandas' copy-on-write, setting a column of `out` never changes `frame`, and a column already
    # of its type is shared rather than duplicated (a 10M-row report is gigabytes).
    out = frame.reindex(columns=list(dtypes))
    out["date"] = as_day(out["date"]).to_numpy()
    for name, dtype in dtypes.items():
        if name == "date":
            continue
        if dtype == "string" and isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = _categorical_to_string(out[name])
        else:
            out[name] = out[name].astype(dtype)
    return out.reset_index(drop=True)


def _categorical_to_string(values: pd.Series) -> pd.Series:
    """Categorical → string through Arrow's dictionary cast: pandas' own path builds a Python object per row."""
    import pyarrow as pa

    codes = pa.array(values.cat.codes.to_numpy(), mask=values.isna().to_numpy())
    categories = pa.array(values.cat.categories.astype(str).to_numpy(dtype=object), type=pa.string())
    strings = pa.DictionaryArray.from_arrays(codes, categories).cast(pa.string())
    return pd.Series(pd.array(strings, dtype="string"), index=values.index, name=values.name)


# An optional column a source's frame leaves out (the simulator reports no status) is null, as in a landing file.
_ABSENT_MEANS_NULL: tuple[str, ...] = tuple(c.name for c in REPORT_COLUMNS if not c.required)


def conform_report(frame: pd.DataFrame) -> pd.DataFrame:
    """A report in the contract's layout. A frame without `criterion_id` (the simulator's, whose keyword IDs are
    unique in its account) is keyed by its keyword IDs, which are then its criterion IDs."""
    if "criterion_id" not in frame.columns:
        frame = frame.assign(criterion_id=frame["keyword_id"].astype("Int64").astype("string"))
    return conform(frame, report_dtypes(), optional=_ABSENT_MEANS_NULL)


def conform_raw(frame: pd.DataFrame) -> pd.DataFrame:
    return conform(frame, raw_dtypes(), "raw keyword report", optional=_ABSENT_MEANS_NULL)


def numeric(values: pd.Series) -> np.ndarray:
    """A nullable numeric column as float64, NaN where null."""
    return values.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def contract_table_markdown() -> str:
    """The README's table of the report contract."""
    rows = ["| column | type | required | rule | when null | accepted headers |", "|---|---|---|---|---|---|"]
    pair_rules = {rule.smaller: f"≤ {rule.larger}" for rule in PAIR_RULES}
    for c in REPORT_COLUMNS:
        rule = []
        if c.kind == "id":
            rule.append("≥ 1")
        if c.min_value is not None:
            rule.append(f"≥ {c.min_value:g}")
        if c.is_numeric and c.outlier_floor is not None:
            rule.append(
                f"≤ {c.plausible_max:,.0f} a day; ≤ {OUTLIER_FACTOR_DEFAULT:g}× the keyword's previous 28 days "
                f"when above {c.outlier_floor:,.0f}"
            )
        elif c.is_numeric and c.plausible_max is not None:
            rule.append(f"≤ {c.plausible_max:,.0f}" if c.plausible_max >= 10 else f"≤ {c.plausible_max:g}")
        if c.name in pair_rules:
            rule.append(pair_rules[c.name])
        if c.allowed_values:
            rule.append("one of " + ", ".join(c.allowed_values))
        if c.name in KEY_COLUMNS:
            rule.append("(date, ad_group_id, keyword_id) unique; (date, keyword_id) where ad_group_id is empty")
        headers = ", ".join(f"`{a}`" for a in (c.name, *c.aliases) if a)
        null_policy = c.null_policy
        if c.set_by_validation:
            rule, null_policy, headers = [f"set by validation: {c.description}"], "—", "— (not read from files)"
        rows.append(
            f"| `{c.name}` | {c.kind} | {'yes' if c.required else 'no'} | {'; '.join(rule) or '—'} | "
            f"{null_policy} | {headers} |"
        )
    return "\n".join(rows)
