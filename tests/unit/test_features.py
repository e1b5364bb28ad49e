import datetime as dt

import numpy as np
import pandas as pd
import pytest

import daily_bids.progress
from daily_bids.features.keyword_features import (
    FEATURES,
    FEATURES_BY_NAME,
    RollingState,
    compute_features,
    feature_versions,
    keyword_shards,
    roll,
)
from daily_bids.features.writer import write_features
from daily_bids.schema import DIMENSION_COLUMNS, NOT_REPORTED
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage import tables
from daily_bids.storage.warehouse import MissingPartitionsError, Warehouse

DAYS = [dt.date(2025, 4, 1) + dt.timedelta(days=i) for i in range(45)]


@pytest.fixture(scope="module")
def history():
    simulator = AdMarketSimulator(seed=5, keywords=400)
    return pd.concat([simulator.report(day) for day in DAYS], ignore_index=True)


def by_day(history: pd.DataFrame):
    return {day: history[history["date"] == pd.Timestamp(day)].reset_index(drop=True) for day in DAYS}.get


def test_features_of_a_day_ignore_later_report_days(history):
    day = DAYS[35]
    tampered = history.copy()
    later = tampered["date"] > pd.Timestamp(day)
    tampered.loc[later, ["impressions", "clicks", "cost", "conversions", "conversion_value"]] *= 7
    tampered = pd.concat([tampered, tampered[later].assign(keyword_id=lambda f: f["keyword_id"] + 10_000)])
    pd.testing.assert_frame_equal(compute_features(history, [day]), compute_features(tampered, [day]))


def test_a_range_gives_the_same_features_as_day_by_day(history):
    days = DAYS[28:40]
    together = compute_features(history, days)
    one_by_one = pd.concat([compute_features(history, [d]) for d in days], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)


def test_a_day_without_a_row_counts_as_zero_activity(history):
    day = DAYS[40]
    keyword = history["keyword_id"].iloc[0]
    without_today = history[~((history["keyword_id"] == keyword) & (history["date"] == pd.Timestamp(day)))]
    row = compute_features(without_today, [day]).set_index("keyword_id").loc[keyword]
    assert row["clicks_lag_1d"] == 0.0 and row["impressions_lag_1d"] == 0.0
    dates = without_today["date"]
    window = without_today[
        (without_today["keyword_id"] == keyword)
        & (dates > pd.Timestamp(day - dt.timedelta(days=7)))
        & (dates <= pd.Timestamp(day))
    ]
    assert row["clicks_sum_7d"] == pytest.approx(np.log1p(window["clicks"].sum()))
    assert row["clicks_mean_7d"] == pytest.approx(np.log1p(window["clicks"].sum() / 7))


def test_smoothed_ratios_sit_between_the_keyword_and_its_ad_group(history):
    features = compute_features(history, [DAYS[-1]])
    window = history[history["date"] > pd.Timestamp(DAYS[-1] - dt.timedelta(days=28))]  # DAYS[-1] is the last day
    totals = window.groupby("keyword_id")[["clicks", "impressions"]].sum()
    joined = features.set_index("keyword_id").join(totals)
    raw_ctr = joined["clicks"] / joined["impressions"]
    low = np.minimum(raw_ctr, joined["ad_group_ctr_28d"]) - 1e-12
    high = np.maximum(raw_ctr, joined["ad_group_ctr_28d"]) + 1e-12
    assert joined["ctr_28d"].between(low, high).all()


def test_feature_versions_change_with_the_definition():
    feature = FEATURES_BY_NAME["ctr_28d"]
    changed = type(feature)(**{**feature.__dict__, "prior_strength": feature.prior_strength + 1})
    assert changed.version != feature.version
    assert len(set(feature_versions().values())) == len(FEATURES)


def test_keyword_shards_give_exactly_the_features_of_one_shard(history, tmp_path):
    """A rebuild from 28 days and then incremental days, written 50 keywords at a time, equal the one-shard roll:
    the ratio priors pool every shard's keywords, and no keyword is lost at a shard's edge."""
    store = Warehouse(str(tmp_path / "warehouse"))
    for day in DAYS:
        store.write_partition("reports", day, history[history["date"] == pd.Timestamp(day)])
    first_run, then = DAYS[30:32], DAYS[32:36]
    for days, reused in ((first_run, False), (then, True)):
        run = write_features(store, "reports", "features", days, history_start=DAYS[0], keywords_per_shard=50)
        assert run.shards >= 8 and run.state_reused is reused
    written = store.read_partitions("features", [*first_run, *then])
    expected = pd.concat(
        [frame for _, frame, _ in roll([*first_run, *then], by_day(history), history_start=DAYS[0])], ignore_index=True
    )
    assert len(written) == len(expected) > 0
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)


def test_writing_features_logs_the_rows_written_of_the_range_and_the_time_left(history, tmp_path, monkeypatch):
    """Progress lines count the feature rows of every day and shard, against the range's total; the features are the
    same with lines as without."""
    monkeypatch.setattr(daily_bids.progress, "PROGRESS_EVERY_SECONDS", 0.0)
    written = {}
    lines: list[str] = []
    for name, log in (("quiet", None), ("logged", lines.append)):
        store = Warehouse(str(tmp_path / name))
        for day in DAYS[:36]:
            store.write_partition("reports", day, history[history["date"] == pd.Timestamp(day)])
        write_features(store, "reports", "features", DAYS[30:32], history_start=DAYS[0])  # a rebuilt state
        run = write_features(store, "reports", "features", DAYS[32:36], DAYS[0], log, keywords_per_shard=50)
        written[name] = store.read_partitions("features", DAYS[30:36])
    progress = [line for line in lines if line.startswith(f"features {DAYS[32]} to {DAYS[35]}: ")]
    assert len(progress) >= 8 * 4 - 1  # a line a shard a day, but for the last
    assert all(f" of {run.rows:,} rows (" in line and line.endswith(" left") for line in progress)
    pd.testing.assert_frame_equal(written["logged"], written["quiet"])


def test_a_range_that_fails_on_a_later_day_replaces_none_of_its_days(history, tmp_path):
    """Features and their rolling state are staged and replace the stored days only once every day is written."""
    root = tmp_path / "warehouse"
    store = Warehouse(str(root))
    for day in DAYS[:33]:
        store.write_partition("reports", day, history[history["date"] == pd.Timestamp(day)])
    write_features(store, "reports", "features", DAYS[30:32], history_start=DAYS[0])
    (root / "reports" / f"date={DAYS[32].isoformat()}").rename(tmp_path / "the third day's report, gone")

    def files():  # a rewritten file has a new inode, even with the same bytes
        return {
            path: (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns) for path in root.rglob("*.parquet")
        }

    stored = files()
    with pytest.raises(MissingPartitionsError, match=str(DAYS[32])):
        write_features(store, "reports", "features", DAYS[30:33], history_start=DAYS[0])
    assert files() == stored  # nothing replaced, and nothing staged left behind


def test_every_keyword_falls_in_exactly_one_shard():
    ids = np.array([5, 1, 9, 9, 3, 7, 2, 8])
    shards = keyword_shards(ids, keywords_per_shard=3)
    assert shards[0][0] is None and shards[-1][1] is None and len(shards) == 3
    for keyword in (-(2**62), *ids, 2**62):  # unseen keywords below, between and above fall in one shard too
        inside = [(low is None or keyword >= low) and (high is None or keyword < high) for low, high in shards]
        assert sum(inside) == 1


def test_a_state_stored_before_criterion_id_and_status_carries_on_without_a_backfill(history, tmp_path):
    """A rolling state written before the report contract had `criterion_id` and `status` is read with them as they
    were then: the keyword_id as criterion ID, the status not reported. The next days' features are as if the state
    had always had them."""
    validated = history.assign(status=NOT_REPORTED)  # as validation fills a status the source does not report
    store = Warehouse(str(tmp_path / "warehouse"))
    for day in DAYS[:34]:
        store.write_partition("reports", day, validated[validated["date"] == pd.Timestamp(day)])
    write_features(store, "reports", "features", DAYS[30:32], history_start=DAYS[0])
    old = store.read_partitions(tables.FEATURE_STATE, [DAYS[31]]).drop(columns=["date", "criterion_id", "status"])
    store.write_partition(tables.FEATURE_STATE, DAYS[31], old)

    keywords = RollingState.from_frame(DAYS[31], old).keywords
    assert list(keywords.columns) == ["keyword_id", *DIMENSION_COLUMNS]
    assert keywords["criterion_id"].tolist() == [str(k) for k in old["keyword_id"]]
    assert keywords["status"].eq(NOT_REPORTED).all() and keywords["status"].dtype == "string"

    assert write_features(store, "reports", "features", DAYS[32:34], history_start=DAYS[0]).state_reused
    written = store.read_partitions("features", DAYS[32:34])
    expected = [
        frame for day, frame, _ in roll(DAYS[30:34], by_day(validated), history_start=DAYS[0]) if day >= DAYS[32]
    ]
    pd.testing.assert_frame_equal(written, pd.concat(expected, ignore_index=True), check_dtype=False)


def test_priors_group_an_ad_group_by_its_campaign_and_leave_a_keyword_without_one_unpooled():
    """Ad group `x` of campaign `a` and of `b` are two groups; a keyword without a campaign belongs to none (null
    priors); a group with a member whose conversions are unreported has null conversion priors."""
    from daily_bids.features.keyword_features import _group_ratio_priors

    frame = pd.DataFrame(
        {"campaign": pd.array(["a", "a", "b", "b", None], "string"), "ad_group": pd.array(["x"] * 5, "string")}
    )
    clicks = np.array([10.0, 30.0, 5.0, 5.0, 7.0])
    sums = {
        "impressions": np.full(5, 100.0),
        "clicks": clicks,
        "cost": clicks,
        "conversions": np.array([1.0, 1.0, np.nan, 1.0, 1.0]),
        "conversion_value": np.full(5, 10.0),
    }
    priors = _group_ratio_priors(frame, sums)
    click_rate = priors[("clicks", "impressions")]
    assert click_rate[0] == click_rate[1] != click_rate[2] == click_rate[3]
    assert np.isnan(click_rate[4])
    conversion_rate = priors[("conversions", "clicks")]
    assert np.isfinite(conversion_rate[:2]).all() and np.isnan(conversion_rate[2:]).all()


@pytest.mark.parametrize("seed", range(8))
def test_group_sums_are_pandas_grouped_sums_to_the_bit(seed):
    """Summed by group number as a categorical's codes, the totals are those of pandas grouping by the numbers
    themselves, bit for bit: a group with a null member is null, a row in no group (-1) is null."""
    from daily_bids.features.keyword_features import _group_sums

    rng = np.random.default_rng(seed)
    rows = int(rng.integers(1, 3_000))
    groups = pd.factorize(rng.integers(0, max(1, rows // 7), rows))[0]  # numbered in order of first appearance
    if seed % 2:
        groups[rng.random(rows) < 0.1] = -1
    numerator, denominator = rng.lognormal(0, 3, rows), rng.lognormal(2, 3, rows)
    numerator[rng.random(rows) < 0.01] = np.nan
    got = _group_sums(groups, numerator, denominator)
    member = groups >= 0
    for column, total in zip((numerator, denominator), got):
        by_number = pd.Series(column[member]).groupby(groups[member])
        expected = (by_number.sum().where(~by_number.apply(lambda values: values.isna().any()))).to_dict()
        want = np.array([expected[g] if g >= 0 else np.nan for g in groups])
        assert np.array_equal(total, want, equal_nan=True)


def test_the_catalog_gives_each_feature_its_statistics_in_feature_order():
    from daily_bids.features.catalog import QUANTILES, statistics

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({f.name: rng.normal(size=500) for f in FEATURES})
    frame.iloc[::7, 0] = np.nan
    frame.iloc[:, -1] = np.nan  # a feature without a known value
    stats = statistics(lambda name: frame[name].to_numpy())
    assert stats["feature"].tolist() == [f.name for f in FEATURES]
    for name, row in stats.set_index("feature").iterrows():
        known = frame[name].dropna()
        assert (row["count"], row["nulls"]) == (500, 500 - len(known))
        if known.empty:
            assert row[["mean", "std", "min", "max"]].isna().all()
            continue
        assert row["mean"] == pytest.approx(known.mean())
        assert row["std"] == pytest.approx(known.std(ddof=0))
        assert (row["min"], row["max"]) == (known.min(), known.max())
        for q in QUANTILES:
            assert row[f"p{int(q * 100):02d}"] == pytest.approx(known.quantile(q))
