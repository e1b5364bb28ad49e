"""Features through Dagster: a one-run backfill equals day-by-day runs, and daily runs reuse the rolling state."""

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets import ALL_ASSETS, ALL_CHECKS, HISTORY_ASSETS
from assets.features import keyword_features
from daily_bids import progress
from daily_bids.features.keyword_features import feature_set_version
from daily_bids.models.preprocessing import FeatureScaler
from daily_bids.settings import Settings
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage import tables
from resources import build_resources
from support.deployment import materialize_range

START, END = dt.date(2025, 1, 1), dt.date(2025, 2, 10)
RANGE = [dt.date(2025, 2, 3) + dt.timedelta(days=i) for i in range(8)]
FEATURE_STEP = [keyword_features]


def _deployment(monkeypatch, root):
    monkeypatch.setenv("BIDS_WAREHOUSE", str(root))
    monkeypatch.setenv("BIDS_SIM_KEYWORDS", "300")
    return build_resources(Settings())


def test_a_one_run_backfill_gives_the_same_features_as_day_by_day_runs(tmp_path, monkeypatch):
    stores = {}
    for mode in ("backfill", "daily"):
        resources = _deployment(monkeypatch, tmp_path / mode)
        assert materialize_range(HISTORY_ASSETS, START, END, resources).success
        store = resources["warehouse"].warehouse()
        for day in RANGE:  # forget the features (and states) of the range, then recompute them
            (tmp_path / mode / "keyword_features" / f"date={day}" / "data.parquet").unlink()
            (tmp_path / mode / tables.FEATURE_STATE / f"date={day}" / "data.parquet").unlink()
        if mode == "backfill":
            result = materialize_range(
                [*ALL_ASSETS, *ALL_CHECKS], RANGE[0], RANGE[-1], resources, selection=FEATURE_STEP
            )
            assert result.success and len(result.get_asset_materialization_events()) == len(RANGE)
        else:
            for day in RANGE:
                result = dg.materialize(
                    [*ALL_ASSETS, *ALL_CHECKS],
                    selection=FEATURE_STEP,
                    resources=resources,
                    partition_key=day.isoformat(),
                )
                assert result.asset_materializations_for_node("keyword_features")[0].metadata["state_reused"].value
        stores[mode] = store
    backfilled = stores["backfill"].read_partitions("keyword_features", RANGE)
    day_by_day = stores["daily"].read_partitions("keyword_features", RANGE)
    pd.testing.assert_frame_equal(backfilled, day_by_day)


def test_a_feature_run_logs_its_progress_to_the_run(tmp_path, monkeypatch):
    """The progress lines reach the run's event log, where the UI's run page and `python -m daily_bids run` show
    them."""
    monkeypatch.setattr(progress, "PROGRESS_EVERY_SECONDS", 0.0)
    resources = _deployment(monkeypatch, tmp_path)
    store = resources["warehouse"].warehouse()
    simulator = AdMarketSimulator(seed=7, keywords=300)
    days = [START + dt.timedelta(days=i) for i in range(3)]
    reports = [simulator.report(day) for day in days]
    # The same keywords every day, so the first day's lines already know the range's rows.
    everyday = set.intersection(*(set(report["keyword_id"]) for report in reports))
    for day, report in zip(days, reports):
        store.write_partition(tables.VALIDATED_REPORT, day, report[report["keyword_id"].isin(everyday)])
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_range(
        [*ALL_ASSETS, *ALL_CHECKS], days[1], days[2], resources, selection=FEATURE_STEP, instance=instance
    )
    assert result.success
    rows = result.asset_materializations_for_node("keyword_features")[0].metadata["rows"].value
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    lines = [m for m in messages if m.startswith(f"features {days[1]} to {days[2]}: ")]
    assert lines and all(f" of {rows:,} rows (" in line and line.endswith(" left") for line in lines), messages


def test_features_code_version_is_the_hash_of_the_definitions():
    assert keyword_features.code_versions_by_key[keyword_features.key] == feature_set_version()


@pytest.mark.parametrize("method", ["standard", "minmax"])
def test_scaler_is_fitted_on_its_window_only_and_round_trips(method):
    window = pd.DataFrame({"a": [1.0, 2.0, 3.0, np.nan], "b": [5.0, 5.0, 5.0, 5.0]})
    later = pd.DataFrame({"a": [100.0], "b": [5.0]})
    scaler = FeatureScaler.fit(window, ["a", "b"], method, "2025-01-01...2025-01-04")
    scaled = scaler.transform(window)
    if method == "standard":
        assert np.nanmean(scaled[:, 0]) == pytest.approx(0, abs=1e-6)
        assert np.nanstd(scaled[:, 0]) == pytest.approx(1, abs=1e-6)
    else:
        assert (np.nanmin(scaled[:, 0]), np.nanmax(scaled[:, 0])) == (0.0, 1.0)
    assert np.isnan(scaled[3, 0])  # nulls stay null
    assert (scaled[:, 1] == 0).all()  # a constant column is centred, never divided by zero
    assert scaler.transform(later)[0, 0] > 10  # later data is scaled with the window's statistics, not its own
    assert FeatureScaler.from_json(scaler.to_json()) == scaler
    assert scaler.version != FeatureScaler.fit(later, ["a", "b"], method, "x").version
