"""Row-level validation of raw keyword reports: every raw row ends up validated or quarantined with a reason.

    raw rows = validated rows + quarantined rows      (for every partition; a check enforces it)

A keyword is (ad group ID, criterion ID) where the report carries ad group IDs: Google gives the same criterion ID to
the same text and match type in every ad group. `assign_keyword_ids` gives each such pair the platform's `keyword_id`;
the report's own ID is kept as `criterion_id`.

Duplicates of (date, keyword_id) are resolved last-wins, because ad platforms and exports append restatements after
the original rows; the superseded rows are quarantined with reason `duplicate_superseded`, so nothing disappears.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from daily_bids.schema import (
    COLUMNS_BY_NAME,
    DIMENSION_COLUMNS,
    KEY_COLUMNS,
    KEYWORD_STATUSES,
    MATCH_TYPES,
    METRIC_COLUMNS,
    NOT_REPORTED,
    NUMERIC_COLUMNS,
    OUTLIER_FACTOR_DEFAULT,
    PAIR_RULES,
    RAW_COLUMN_NAMES,
    REPORT_COLUMNS,
    as_day,
    conform_raw,
    conform_report,
    numeric,
)

# The reason of a row replaced by a later row of its keyword and day: set aside, but the keyword's day is not lost.
SUPERSEDED = "duplicate_superseded"
# Reason codes of quarantined rows, in the order they are tested: a row's reason is the first it meets.
QUARANTINE_REASONS: dict[str, str] = {
    "unparseable_value": "a value could not be read as a number or date (detail names the column and value)",
    "missing_value": "a key, or a metric the source reports, is empty",
    "date_outside_partition": "the row's date is not a day of the partition it was delivered in",
    "out_of_range": "a number that is not finite, above its column's plausible daily maximum (`BIDS_PLAUSIBLE_MAX`), "
    "or a keyword ID below 1",
    "negative_value": "a count or amount below zero",
    **{rule.code: f"more {rule.smaller} than {rule.larger}" for rule in PAIR_RULES},
    "invalid_match_type": f"match type other than {', '.join(MATCH_TYPES)}",
    "outlier_vs_history": "a metric above `BIDS_OUTLIER_FACTOR` (5) times the keyword's own total of the previous 28 "
    "days, and above the column's floor",
    SUPERSEDED: "an earlier row of the same day and keyword (ad group ID and keyword ID, or the keyword ID where "
    "the report has no ad group ID); the last one delivered is kept",
}
QUARANTINE_COLUMNS: tuple[str, ...] = (*RAW_COLUMN_NAMES, "reason", "detail")


@dataclass(frozen=True)
class Plausibility:
    """What a believable row looks like beyond the contract's types: each numeric column's plausible daily maximum,
    and how far above a keyword's own recent history a day may go."""

    maximum: dict[str, float]
    outlier_factor: float = OUTLIER_FACTOR_DEFAULT

    @classmethod
    def from_contract(
        cls, overrides: dict[str, float] | None = None, outlier_factor: float = OUTLIER_FACTOR_DEFAULT
    ) -> Plausibility:
        maximum = {c.name: c.plausible_max for c in REPORT_COLUMNS if c.plausible_max is not None}
        for column, value in (overrides or {}).items():
            if column not in maximum or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"plausible maximum {column!r}: {value!r}; expected a positive finite number for one "
                    f"of {sorted(maximum)}"
                )
            maximum[column] = float(value)
        if not math.isfinite(outlier_factor) or outlier_factor < 0:
            raise ValueError(f"outlier factor {outlier_factor!r}: expected 0 (off) or a positive finite number")
        return cls(maximum, outlier_factor)


@dataclass
class ValidatedReport:
    valid: pd.DataFrame
    quarantine: pd.DataFrame  # the raw rows set aside, with `reason` and `detail`
    unreported_metrics: list[str]  # optional metric columns the source left empty on every row of a day
    new_keys: pd.DataFrame  # the (ad group, criterion) pairs first seen here, to add to the key registry


# ---- the keyword key ------------------------------------------------------------------------------------------------
KEY_REGISTRY_COLUMNS: tuple[str, ...] = ("ad_group_id", "criterion_id", "keyword_id", "first_day")
# Keyword IDs the platform makes up count up from here: far above Google's criterion IDs (about 1e12 today), and each
# is checked free before it is given.
FIRST_NEW_KEYWORD_ID = 2**62


class KeyRegistryError(ValueError):
    """The key registry would give one keyword two IDs, or one ID to two keywords."""


def empty_key_registry() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ad_group_id": pd.Series(dtype="string"),
            "criterion_id": pd.Series(dtype="int64"),
            "keyword_id": pd.Series(dtype="int64"),
            "first_day": pd.Series(dtype="datetime64[ns]"),
        }
    )


def assign_keyword_ids(
    ad_group_ids: pd.Series, criterion_ids: pd.Series, dates: pd.Series, registry: pd.DataFrame | None = None
) -> tuple[pd.Series, pd.DataFrame]:
    """Each row's platform keyword ID (Int64, null where the criterion ID is), and the registry rows of the pairs
    first seen here.

    A keyword is (ad group ID, criterion ID): Google gives a text and match type the same criterion ID in every ad
    group holding it. The registry (`_keyword_keys`, only ever added to) gives each pair one ID for good. A new pair
    takes its criterion ID as its keyword ID when no pair holds that ID yet, so a criterion in one ad group (and every
    simulated keyword) keeps the ID it is reported under; the criterion's later ad groups get new IDs counting up
    from 2**62, above every ID given and every criterion ID reported with them. A persisted registry rather than a
    hash, because a hash cannot leave the common case its own ID, and a collision of two hashes could not be mended
    without moving a keyword's history. New pairs are numbered in order of day, ad group ID and criterion ID, so one
    report gives the same IDs however it is run, whole or in keyword shards (`number_new_keywords`). Rows without an
    ad group ID keep their criterion ID: the only key such a report has."""
    registry = check_key_registry(empty_key_registry() if registry is None else registry)
    ids, new, highest = keyword_ids_of_shard(ad_group_ids, criterion_ids, dates, registry)
    (numbers,) = number_new_keywords([new], first_new_keyword_id(registry, [highest]))
    ids[ids.notna()] = numbered(ids.dropna().to_numpy(dtype="int64"), numbers)
    return ids, new.assign(keyword_id=numbered(new["keyword_id"].to_numpy(dtype="int64"), numbers))


def keyword_ids_of_shard(
    ad_group_ids: pd.Series, criterion_ids: pd.Series, dates: pd.Series, registry: pd.DataFrame
) -> tuple[pd.Series, pd.DataFrame, int]:
    """`assign_keyword_ids` for the rows of one keyword shard (every row of a criterion ID is in its shard), before
    the range's new pairs are numbered: a new pair that cannot take its criterion ID holds a placeholder, -1, -2, …
    in the order it will be numbered. `registry` needs only the shard's pairs and the pairs holding its criterion IDs
    as keyword IDs. Also returns the highest criterion ID of the rows (0 for none): new IDs are numbered above it."""
    ad_group_ids = ad_group_ids.astype("string").reset_index(drop=True)
    criteria = pd.Series(criterion_ids, dtype="Int64").reset_index(drop=True)
    keyword_ids = criteria.copy()  # integers throughout: IDs above 2**53 do not survive a float
    highest = int(criteria.max()) if criteria.notna().any() else 0
    paired = (ad_group_ids.notna() & criteria.notna()).to_numpy()
    if not paired.any():
        return keyword_ids, empty_key_registry(), highest
    rows = pd.DataFrame(
        {
            "ad_group_id": ad_group_ids[paired].reset_index(drop=True),  # kept as Arrow strings, not made objects
            "criterion_id": criteria[paired].to_numpy(dtype="int64"),
            "first_day": as_day(pd.Series(dates).reset_index(drop=True)[paired]).to_numpy(),
        }
    )
    # Each row's pair is found once (`pair_of_row`, in the pairs' order of first appearance) and the rows take their
    # pair's ID by position: no join of every row against the registry. IDs stay Int64: 2**62 and up survive no float.
    grouped = rows.groupby(["ad_group_id", "criterion_id"], sort=False)
    pair_of_row = grouped.ngroup().to_numpy()
    pairs = grouped["first_day"].min().reset_index()
    del rows, grouped
    registered = registry[["ad_group_id", "criterion_id", "keyword_id"]].astype({"keyword_id": "Int64"})
    # One registry row a pair at most: the pairs are grouped, and the registry was checked when it was read.
    pairs = pairs.merge(registered, how="left")
    new = pairs[pairs["keyword_id"].isna()].sort_values(list(NEW_KEY_ORDER))
    # The first new pair of a criterion claims its ID, unless a pair holds it; the others wait for their number.
    claims = ~new["criterion_id"].duplicated().to_numpy() & ~new["criterion_id"].isin(registry["keyword_id"]).to_numpy()
    new_ids = new["criterion_id"].to_numpy(dtype="int64").copy()
    new_ids[~claims] = -1 - np.arange(int((~claims).sum()), dtype="int64")
    new = new.assign(keyword_id=new_ids)
    pairs.loc[new.index, "keyword_id"] = new_ids
    keyword_ids[paired] = pairs["keyword_id"].to_numpy(dtype="int64")[pair_of_row]
    return keyword_ids, new.loc[:, list(KEY_REGISTRY_COLUMNS)].astype(empty_key_registry().dtypes.to_dict()), highest


# The order new pairs are numbered in: a report gives the same IDs whatever order its rows come in.
NEW_KEY_ORDER: tuple[str, ...] = ("first_day", "ad_group_id", "criterion_id")


def first_new_keyword_id(registry: pd.DataFrame, highest_reported: list[int]) -> int:
    """The first ID a new pair without a criterion ID of its own gets: above every ID the registry gave and every
    criterion ID reported (a row without an ad group ID is keyed by its criterion ID), and 2**62 at least."""
    given = registry["keyword_id"].to_numpy(dtype="int64")
    return max(FIRST_NEW_KEYWORD_ID - 1, int(given.max()) if len(given) else 0, *highest_reported) + 1


def number_new_keywords(new_keys_of_shards: list[pd.DataFrame], first_id: int) -> list[np.ndarray]:
    """The keyword IDs of the shards' placeholders (`keyword_ids_of_shard`), counting up from `first_id` in the order
    of day, ad group ID and criterion ID over every shard: for each shard, the ID of placeholder -k at [k - 1]."""
    waiting = [keys[keys["keyword_id"].to_numpy(dtype="int64") < 0] for keys in new_keys_of_shards]
    order = pd.concat(
        [keys.loc[:, list(NEW_KEY_ORDER)].assign(shard=shard) for shard, keys in enumerate(waiting)],
        ignore_index=True,
    ).sort_values(list(NEW_KEY_ORDER), kind="stable")
    numbers = np.empty(len(order), dtype="int64")
    numbers[order.index.to_numpy()] = first_id + np.arange(len(order), dtype="int64")
    bounds = np.cumsum([0, *map(len, waiting)])
    # A shard's placeholders -1, -2, … are its waiting pairs in that order (they were sorted the same way).
    return [numbers[start:end] for start, end in zip(bounds[:-1], bounds[1:])]


def numbered(keyword_ids: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """`keyword_ids` with each placeholder -k replaced by its number, `numbers[k - 1]`."""
    waiting = keyword_ids < 0
    if not waiting.any():
        return keyword_ids
    out = keyword_ids.copy()
    out[waiting] = numbers[-keyword_ids[waiting] - 1]
    return out


def check_key_registry(registry: pd.DataFrame, what: str = "the keyword key registry") -> pd.DataFrame:
    """`registry` typed, after checking that each pair has one keyword ID and each keyword ID one pair."""
    missing = [name for name in KEY_REGISTRY_COLUMNS if name not in registry.columns]
    if missing:
        raise KeyRegistryError(f"{what} has no column(s) {missing}; expected {list(KEY_REGISTRY_COLUMNS)}")
    registry = registry.loc[:, list(KEY_REGISTRY_COLUMNS)].astype(empty_key_registry().dtypes.to_dict())
    registry = registry.reset_index(drop=True)
    # A pair can repeat only where its criterion ID does, so pairs are compared among those rows alone: most criteria
    # are in one ad group, and hashing millions of ad group IDs costs seconds every morning.
    shared_criterion = np.flatnonzero(registry["criterion_id"].duplicated(keep=False).to_numpy())
    for key, other, rows in (
        (["ad_group_id", "criterion_id"], "keyword_id", registry.take(shared_criterion)),
        (["keyword_id"], "pair", registry),
    ):
        twice = np.flatnonzero(rows.duplicated(key, keep=False).to_numpy())
        if len(twice):
            example = rows.take(twice[:4]).to_dict("records")
            raise KeyRegistryError(
                f"{what}: {len(twice)} rows give one {' and '.join(key)} more than one {other}, e.g. {example}; "
                "a keyword's ID must never change or be reused"
            )
    return registry


def add_to_key_registry(registry: pd.DataFrame | None, new_keys: pd.DataFrame) -> pd.DataFrame:
    """`registry` (checked, as `check_key_registry` returns it) with `new_keys` added. Raises (`KeyRegistryError`)
    when another run added the same pairs or IDs meanwhile: validating that day again assigns from the registry as it
    now is."""
    current = empty_key_registry() if registry is None else registry
    new_keys = check_key_registry(new_keys, "the new keywords")
    # Only the registry's pairs of the new keywords' criterion IDs can be theirs: the millions of others are not joined.
    same_criteria = current.take(np.flatnonzero(current["criterion_id"].isin(new_keys["criterion_id"]).to_numpy()))
    already = new_keys.merge(same_criteria, on=["ad_group_id", "criterion_id"], how="inner")
    if len(already) or new_keys["keyword_id"].isin(current["keyword_id"]).any():
        raise KeyRegistryError(
            f"the keyword key registry changed while {len(new_keys)} new keyword(s) were given IDs (another run "
            "validated reports at the same time); run the day again to assign from the registry as it is now"
        )
    # Both halves are checked and share no pair and no ID, so the whole needs no second check.
    return pd.concat([current, new_keys], ignore_index=True)


def normalize_status(values: pd.Series) -> pd.Series:
    """Every spelling of a keyword status as one of KEYWORD_STATUSES (Google's API says REMOVED, its UI Removed or
    Campaign removed): `removed` in it reads as Removed, `paused` as Paused, any other as Enabled, since Google's
    other statuses (Eligible, Limited, Below first page bid, Not eligible, Pending review) describe a keyword the
    advertiser left on. Null stays null."""
    codes, spellings = pd.factorize(values.astype("string"), use_na_sentinel=True)
    lowered = pd.Series(spellings, dtype="string").str.lower()
    removed, paused, enabled = KEYWORD_STATUSES[2], KEYWORD_STATUSES[1], KEYWORD_STATUSES[0]
    normalized = np.where(
        lowered.str.contains("removed").to_numpy(dtype=bool),
        removed,
        np.where(lowered.str.contains("paused").to_numpy(dtype=bool), paused, enabled),
    )
    lookup = np.append(normalized.astype(object), pd.NA)  # code -1 (a null) picks the trailing NA
    return pd.Series(lookup[codes], index=values.index, dtype="string")


def quarantine_reasons_markdown() -> str:
    """The README's table of quarantine reasons."""
    rows = ["| reason | the row has |", "|---|---|"]
    return "\n".join(rows + [f"| `{code}` | {text} |" for code, text in QUARANTINE_REASONS.items()])


def normalize_match_type(values: pd.Series) -> pd.Series:
    """`exact match`, `EXACT`, `Exact` → `Exact`; anything else is left for the match-type rule to reject.
    Works on the distinct values only: a report has millions of rows but a handful of spellings."""
    codes, spellings = pd.factorize(values.astype("string"), use_na_sentinel=True)
    normalized = (
        pd.Series(spellings, dtype="string")
        .str.strip()
        .str.replace(r"\s+match$", "", case=False, regex=True)
        .str.title()
    )
    lookup = np.append(normalized.to_numpy(dtype=object), pd.NA)  # code -1 (a null) picks the trailing NA
    return pd.Series(lookup[codes], index=values.index, dtype="string")


@dataclass
class ShardVerdict:
    """One keyword shard's rows judged (`validate_shard`), before the new keywords of the range are numbered."""

    valid: pd.DataFrame  # kept rows in key order; a new keyword still to be numbered holds a placeholder, -1, -2, …
    quarantine: pd.DataFrame  # the rows set aside, in the order they came; the index is each row's position
    new_keys: pd.DataFrame  # the shard's new pairs, with placeholders (`keyword_ids_of_shard`)
    highest_reported: int  # the highest criterion ID given a keyword ID: new IDs are numbered above it


def validate_report(
    raw: pd.DataFrame,
    days: list[dt.date],
    plausibility: Plausibility | None = None,
    trailing_totals: pd.DataFrame | None = None,
    key_registry: pd.DataFrame | None = None,
) -> ValidatedReport:
    """Split `raw` into validated rows and the quarantine. `trailing_totals` (keyword_id and each metric's total over
    the 28 days before `days`) is what the outlier rule compares against; without it the rule is skipped.
    `key_registry` holds the keyword IDs already given to (ad group, criterion) pairs (`assign_keyword_ids`); the
    pairs first seen here are returned in `new_keys`. A stored report too large for memory is validated shard by
    shard, with the same result (`daily_bids.ingest.stored_validation`)."""
    raw = conform_raw(raw)
    registry = check_key_registry(empty_key_registry() if key_registry is None else key_registry)
    unreported = _unreported_metrics(raw)
    verdict = validate_shard(raw, days, plausibility, keyword_history(trailing_totals), registry, unreported)
    (numbers,) = number_new_keywords([verdict.new_keys], first_new_keyword_id(registry, [verdict.highest_reported]))
    valid = verdict.valid
    if len(numbers):  # the numbered keywords sort after every other of their day
        valid = valid.assign(keyword_id=numbered(valid["keyword_id"].to_numpy(dtype="int64"), numbers))
        valid = valid.take(np.lexsort((valid["keyword_id"].to_numpy(), valid["date"].to_numpy()))).reset_index(
            drop=True
        )
    return ValidatedReport(
        valid=valid,
        quarantine=verdict.quarantine.reset_index(drop=True),
        unreported_metrics=sorted(name for name in unreported.columns if unreported[name].all()),
        new_keys=verdict.new_keys.assign(
            keyword_id=numbered(verdict.new_keys["keyword_id"].to_numpy(), numbers)
        ).reset_index(drop=True),
    )


def validate_shard(
    raw: pd.DataFrame,
    days: list[dt.date],
    plausibility: Plausibility | None,
    history: pd.DataFrame | None,
    key_registry: pd.DataFrame,
    unreported: pd.DataFrame,
) -> ShardVerdict:
    """`validate_report` of the rows of one keyword shard (every row of each of its criterion IDs, in the order they
    came), with `history` (`keyword_history`: at least the shard's keywords), `unreported` (per row, True for each
    optional metric its day left empty on every row, judged over the whole day) and the registry's pairs. The shard's new keywords without an ID of their own hold
    placeholders until the range's are numbered (`number_new_keywords`)."""
    plausibility = plausibility or Plausibility.from_contract()
    raw = conform_raw(raw)
    raw["match_type"] = normalize_match_type(raw["match_type"])
    raw["status"] = normalize_status(raw["status"])
    reason = pd.Series(pd.NA, index=raw.index, dtype="string")
    detail = pd.Series(pd.NA, index=raw.index, dtype="string")

    def flag(code: str, broken, why=None) -> None:
        """Quarantine the `broken` rows not yet quarantined, for `code`. `why` is the detail: one text, a Series of
        every row's, or a function of the broken rows (a mask) giving theirs: text made for every row of a
        10M-row day would cost more than the rules themselves."""
        if code not in QUARANTINE_REASONS:  # the table above is the one list of codes (and the README's)
            raise KeyError(f"undocumented quarantine reason {code!r}")
        broken = np.asarray(broken, dtype=bool) & reason.isna().to_numpy()
        if not broken.any():
            return
        reason[broken] = code
        if callable(why):
            detail[broken] = why(broken).to_numpy()
        elif why is not None:
            detail[broken] = why[broken] if isinstance(why, pd.Series) else why

    flag("unparseable_value", raw["parse_errors"].notna().to_numpy(), raw["parse_errors"])
    for name in ("date", "keyword_id", *NUMERIC_COLUMNS):
        if name in unreported.columns:
            empty = raw[name].isna().to_numpy() & ~unreported[name].to_numpy()
        else:
            empty = raw[name].isna().to_numpy()
        flag("missing_value", empty, f"{name} is empty")
    in_partition = as_day(raw["date"]).isin([pd.Timestamp(d) for d in days]).to_numpy()
    flag("date_outside_partition", ~in_partition, lambda rows: "date " + raw["date"][rows].astype("string"))
    for name, maximum in plausibility.maximum.items():
        values = numeric(raw[name])
        with np.errstate(invalid="ignore"):
            beyond = np.isinf(values) | (values > maximum) | ((values < 1) if name == "keyword_id" else False)
        flag(
            "out_of_range",
            beyond,
            lambda rows, name=name, maximum=maximum: (
                f"{name} = " + raw[name][rows].astype("string") + f" (plausible: up to {maximum:g})"
            ),
        )
    for name in NUMERIC_COLUMNS:
        flag("negative_value", numeric(raw[name]) < 0, f"{name} < 0")
    for rule in PAIR_RULES:
        flag(rule.code, numeric(raw[rule.smaller]) > numeric(raw[rule.larger]), f"{rule.smaller} > {rule.larger}")
    bad_match = raw["match_type"].notna().to_numpy() & ~raw["match_type"].isin(MATCH_TYPES).to_numpy()
    flag("invalid_match_type", bad_match, lambda rows: "match type " + raw["match_type"][rows].astype("string"))
    # The platform's keyword ID of each row that passed the rules so far (NaN elsewhere): what history and
    # duplicates are judged by.
    passed = reason.isna().to_numpy()
    keyword_ids = pd.Series(pd.NA, index=raw.index, dtype="Int64")
    ids, new_keys, highest = keyword_ids_of_shard(
        raw["ad_group_id"][passed], raw["keyword_id"][passed].astype("Int64"), raw["date"][passed], key_registry
    )
    keyword_ids[passed] = ids.to_numpy()
    if history is not None and plausibility.outlier_factor > 0:
        # Each row's keyword looked up once for every metric; position -1 (no history) picks the NaN appended.
        at = history.index.get_indexer(keyword_ids.fillna(-1).to_numpy())
        for name in METRIC_COLUMNS:
            total = np.append(history[name].to_numpy(dtype="float64", na_value=np.nan), np.nan)[at]
            limit = np.maximum(plausibility.outlier_factor * np.nan_to_num(total), COLUMNS_BY_NAME[name].outlier_floor)
            flag(
                "outlier_vs_history",
                numeric(raw[name]) > limit,
                lambda rows, name=name, total=total: (
                    f"{name} = "
                    + raw[name][rows].astype("string")
                    + " against a 28-day total of "
                    + pd.Series(np.nan_to_num(total[rows]), index=raw.index[rows]).round(2).astype("string")
                ),
            )

    # Only the key columns are taken apart for the duplicates, and the kept rows copied once: the report is the
    # step's memory (`benchmarks/daily_increment.py`).
    keys = raw.loc[:, list(KEY_COLUMNS)].assign(keyword_id=keyword_ids)
    candidates = keys[reason.isna().to_numpy()]
    superseded = candidates.duplicated(keep="last")
    superseded_index = candidates.index[superseded.to_numpy()]
    del keys, candidates
    flag(SUPERSEDED, raw.index.isin(superseded_index), "a later row of the same date and keyword (ad group and ID)")

    # The kept rows in key order, taken from the day in one go (none at all when every row passed in that order
    # already, as the simulator's do): a selection and then a sort would copy the day twice.
    rows = _in_key_order(raw["date"], keyword_ids, reason.isna().to_numpy())
    kept = raw if np.array_equal(rows, np.arange(len(raw))) else raw.take(rows)
    kept = kept.assign(
        criterion_id=kept["keyword_id"].astype("Int64").astype("string"), keyword_id=keyword_ids.array[rows]
    )
    # Only the columns with a gap are filled: filling one without rewrites its strings all the same.
    kept = kept.assign(**{name: kept[name].fillna(NOT_REPORTED) for name in DIMENSION_COLUMNS if kept[name].hasnans})
    valid = conform_report(kept)
    del kept
    quarantine = raw[reason.notna().to_numpy()].assign(reason=reason[reason.notna()], detail=detail[reason.notna()])
    return ShardVerdict(valid, quarantine.loc[:, list(QUARANTINE_COLUMNS)], new_keys, highest)


def keyword_history(trailing_totals: pd.DataFrame | None) -> pd.DataFrame | None:
    """The outlier rule's history (each metric's 28-day total) indexed by keyword ID: built once, and looked up by
    every shard."""
    if trailing_totals is None:
        return None
    return trailing_totals.drop_duplicates("keyword_id").set_index("keyword_id")


def _in_key_order(dates: pd.Series, keyword_ids: pd.Series, passing: np.ndarray) -> np.ndarray:
    """The positions of the `passing` rows, ordered by (date, keyword_id): the validated table's order. The keys of
    passing rows are never null and are unique (duplicates are superseded), so the order is the one any sort gives."""
    positions = np.flatnonzero(passing)
    days = dates.to_numpy(dtype="datetime64[ns]")[positions].view("int64")
    keywords = keyword_ids.to_numpy(dtype="int64", na_value=0)[positions]
    in_order = (days[1:] > days[:-1]) | ((days[1:] == days[:-1]) & (keywords[1:] > keywords[:-1]))
    if in_order.all():  # checked first: a sort of 10M rows costs seconds, and some sources deliver in order
        return positions
    return positions[np.lexsort((keywords, days))]


def _unreported_metrics(raw: pd.DataFrame) -> pd.DataFrame:
    """Per row: True for each optional metric that is null on every row of that row's day (not reported)."""
    optional = [name for name in NUMERIC_COLUMNS if not COLUMNS_BY_NAME[name].required]
    empty_all_day = raw[optional].isna().groupby(as_day(raw["date"]).to_numpy()).transform("all")
    return empty_all_day.fillna(False).astype(bool)
