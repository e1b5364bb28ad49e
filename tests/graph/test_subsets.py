"""Every asset of a multi-output step run alone, and with the other assets of its step, from one small simulated
account: each run either does its work or is refused before anything is written, and a run that fails part-way leaves
every stored partition of the tables it did not finish byte for byte as it was.

The account's champion is the naive floor, as on a young account (no model to train): what is under test is which
tables a step writes, not what a model predicts."""

import datetime as dt
import os
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assets import ALL_ASSETS, ALL_CHECKS, HISTORY_ASSETS
from assets.models import keyword_clusters
from assets.reports import QUARANTINE, VALIDATED_REPORT, raw_keyword_report
from assets.serving import BIDS, PREDICTIONS, bid_landscape
from daily_bids.bidding.decision import CannotBidError
from daily_bids.cli import materializations_of
from daily_bids.models.naive_model import NaiveModel
from daily_bids.models.store import ModelStore
from daily_bids.settings import Settings
from daily_bids.storage import tables
from daily_bids.storage.warehouse import STAGING_FOLDER
from resources import build_resources
from support.deployment import materialize_range

EVERYTHING = [*ALL_ASSETS, *ALL_CHECKS]
FIRST, LAST = dt.date(2025, 1, 1), dt.date(2025, 1, 14)
# Each test scores days of its own, so that the tests stay independent of their order.
PREDICTIONS_ALONE, REFUSED, BIDS_ALONE = dt.date(2025, 1, 9), dt.date(2025, 1, 10), dt.date(2025, 1, 11)
RANGE = [dt.date(2025, 1, 12), dt.date(2025, 1, 13)]
REPORT_DAY = dt.date(2025, 1, 5)


@pytest.fixture(scope="module")
def account(tmp_path_factory):
    """Two weeks of reports and features, keyword clusters, the bid landscape of the days scored, and the naive floor
    as the champion."""
    root = tmp_path_factory.mktemp("subsets") / "warehouse"
    resources = build_resources(Settings(warehouse=str(root), sim_keywords=300, sim_seed=5))
    instance = dg.DagsterInstance.ephemeral()
    # The history's own checks are not what is under test here: left out, the fixture takes half the time.
    history = dg.AssetSelection.assets(*HISTORY_ASSETS).without_checks()
    assert materialize_range(EVERYTHING, FIRST, LAST, resources, instance=instance, selection=history).success
    # A fixed k: choosing it by silhouette costs seconds and is not under test either.
    clusters = {"keyword_clusters": {"config": {"train_through": LAST.isoformat(), "profile_days": 7, "k": 3}}}
    assert dg.materialize(
        EVERYTHING, selection=[keyword_clusters], resources=resources, instance=instance, run_config={"ops": clusters}
    ).success
    store = resources["warehouse"].warehouse()
    ModelStore(store, tables.CHAMPION).save(NaiveModel(7, LAST))
    week = (PREDICTIONS_ALONE, RANGE[-1])
    assert materialize_range(EVERYTHING, *week, resources, instance=instance, selection=[bid_landscape]).success
    return {"root": root, "resources": resources, "instance": instance, "store": store}


def _run(account, selection, day=None, days=None):
    """One run of `selection` for a day, or over a range of days as a single-run backfill does it."""
    run_on = dict(resources=account["resources"], instance=account["instance"], raise_on_error=False)
    if days:
        return materialize_range(EVERYTHING, days[0], days[-1], selection=selection, **run_on)
    return dg.materialize(EVERYTHING, selection=selection, partition_key=day.isoformat(), **run_on)


def _files(root: Path, *table_names: str) -> dict[str, tuple[bytes, int]]:
    """Every partition file of the tables, with its bytes and modification time."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), os.stat(path).st_mtime_ns)
        for name in table_names
        for path in sorted((root / name).rglob("*"))
        if path.is_file()
    }


def _checks(run) -> dict[str, bool]:
    return {evaluation.check_name: evaluation.passed for evaluation in run.get_asset_check_evaluations()}


def _nothing_staged(root: Path) -> bool:
    return not (root / STAGING_FOLDER).exists() or not any((root / STAGING_FOLDER).iterdir())


def test_the_predictions_alone_write_no_bids(account):
    store = account["store"]
    run = _run(account, [PREDICTIONS], PREDICTIONS_ALONE)
    assert run.success
    assert len(materializations_of(run, PREDICTIONS)) == 1 and materializations_of(run, BIDS) == []
    features = store.partition_rows(tables.FEATURES, PREDICTIONS_ALONE)
    assert store.partition_rows(tables.PREDICTIONS, PREDICTIONS_ALONE) == features > 0
    assert not store.partition_exists(tables.BIDS, PREDICTIONS_ALONE)
    assert _checks(run) == {"predictions_contract": True, "predictions_match_the_model": True}


def test_the_bids_alone_without_stored_predictions_are_refused_before_anything_is_written(account):
    root = account["root"]
    before = _files(root, tables.PREDICTIONS, tables.BIDS)
    run = _run(account, [BIDS], REFUSED)
    assert not run.success
    (failure,) = [e for e in run.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert "keyword_bids was selected without keyword_predictions" in message and str(REFUSED) in message
    assert run.get_asset_materialization_events() == []
    assert _files(root, tables.PREDICTIONS, tables.BIDS) == before and _nothing_staged(root)


def test_the_bids_alone_bid_from_the_stored_predictions_and_leave_them_as_they_were(account):
    root, store = account["root"], account["store"]
    both = _run(account, [PREDICTIONS, BIDS], BIDS_ALONE)
    assert both.success and all(_checks(both).values())
    bids_of_both = store.read_partitions(tables.BIDS, [BIDS_ALONE])
    predictions = _files(root, f"{tables.PREDICTIONS}/date={BIDS_ALONE}")

    alone = _run(account, [BIDS], BIDS_ALONE)
    assert alone.success
    assert materializations_of(alone, PREDICTIONS) == []
    (bids,) = materializations_of(alone, BIDS)
    assert bids.metadata["predictions_used"].value.endswith(f"made by {NaiveModel(7, LAST).version}")
    assert _checks(alone) == {"bids_are_profitable_and_capped": True, "bids_move_plausibly": True}
    assert _files(root, f"{tables.PREDICTIONS}/date={BIDS_ALONE}") == predictions  # read, never rewritten
    pd.testing.assert_frame_equal(store.read_partitions(tables.BIDS, [BIDS_ALONE]), bids_of_both)


def test_the_validated_report_and_its_quarantine_each_run_alone(account):
    root, store = account["root"], account["store"]
    validated, quarantine = f"{tables.VALIDATED_REPORT}/date={REPORT_DAY}", f"{tables.QUARANTINE}/date={REPORT_DAY}"
    stored = {name: store.read_partitions(name, [REPORT_DAY]) for name in (tables.VALIDATED_REPORT, tables.QUARANTINE)}
    for selected, untouched in ((VALIDATED_REPORT, quarantine), (QUARANTINE, validated)):
        before = _files(root, untouched)
        run = _run(account, [selected], REPORT_DAY)
        assert run.success and all(_checks(run).values())
        assert [event.asset_key for event in run.get_asset_materialization_events()] == [selected]
        assert _files(root, untouched) == before
    both = _run(account, [VALIDATED_REPORT, QUARANTINE], REPORT_DAY)
    assert both.success and {e.asset_key for e in both.get_asset_materialization_events()} == {
        VALIDATED_REPORT,
        QUARANTINE,
    }
    for name, frame in stored.items():  # validation is a pure function of the raw report: the same rows again
        pd.testing.assert_frame_equal(store.read_partitions(name, [REPORT_DAY]), frame)


@pytest.fixture
def scored_range(account):
    """Both tables of both days of RANGE scored by one run, and their files as they are then."""
    assert _run(account, [PREDICTIONS, BIDS], days=RANGE).success
    return _files(account["root"], tables.PREDICTIONS, tables.BIDS)


def _fails_on(day: dt.date, honest, error: Exception):
    """`honest` (a function of a frame with a date column, first), raising `error` for the rows of `day`."""

    def wrapped(frame, *args, **kwargs):
        if (frame["date"] == pd.Timestamp(day)).any():
            raise error
        return honest(frame, *args, **kwargs)

    return wrapped


def test_a_range_that_fails_on_its_second_day_changes_no_table(account, scored_range, monkeypatch):
    import daily_bids.serving.scoring

    honest = daily_bids.serving.scoring.predict_next_day
    monkeypatch.setattr(
        daily_bids.serving.scoring, "predict_next_day", _fails_on(RANGE[1], honest, RuntimeError("model broke"))
    )
    run = _run(account, [PREDICTIONS, BIDS], days=RANGE)
    assert not run.success and run.get_asset_materialization_events() == []
    assert _files(account["root"], tables.PREDICTIONS, tables.BIDS) == scored_range
    assert _nothing_staged(account["root"])


def test_bids_refused_on_the_second_day_change_no_table(account, scored_range, monkeypatch):
    """No day's bids are replaced, though the first day's were made; nor are the predictions, complete as they are:
    the step failed, so their checks never ran."""
    import daily_bids.serving.scoring

    honest = daily_bids.serving.scoring.decide_bids
    refusal = CannotBidError("no value per click for this day")
    monkeypatch.setattr(daily_bids.serving.scoring, "decide_bids", _fails_on(RANGE[1], honest, refusal))
    run = _run(account, [PREDICTIONS, BIDS], days=RANGE)
    assert not run.success and run.get_asset_materialization_events() == []
    assert _files(account["root"], tables.PREDICTIONS, tables.BIDS) == scored_range
    assert _nothing_staged(account["root"])


def test_bids_whose_blocking_check_fails_replace_nothing_and_the_predictions_that_passed_do(
    account, scored_range, monkeypatch
):
    from daily_bids.bidding.moves import BidMoves

    monkeypatch.setattr(BidMoves, "implausible", lambda moves, policy: True)
    run = _run(account, [PREDICTIONS, BIDS], RANGE[1])
    assert _checks(run) == {
        "predictions_contract": True,
        "predictions_match_the_model": True,
        "bids_are_profitable_and_capped": True,
        "bids_move_plausibly": False,
    }
    root = account["root"]
    bids = {path: file for path, file in scored_range.items() if path.startswith(f"{tables.BIDS}/")}
    assert _files(root, tables.BIDS) == bids  # the refused bids never replaced the stored ones
    replaced = f"{tables.PREDICTIONS}/date={RANGE[1]}/data.parquet"
    assert _files(root, tables.PREDICTIONS)[replaced][1] > scored_range[replaced][1]
    # The refused day waits in the run's folder, for a look, until the next staging an hour on clears it.
    (held,) = (root / STAGING_FOLDER).glob(f"run-{run.run_id}/{tables.BIDS}/date={RANGE[1]}/data.parquet")
    assert len(pd.read_parquet(held)) == account["store"].partition_rows(tables.BIDS, RANGE[1])
    shutil.rmtree(root / STAGING_FOLDER / f"run-{run.run_id}")  # the other tests here find no staging left


def test_the_bids_alone_failing_on_the_second_day_change_no_table(account, scored_range, monkeypatch):
    import daily_bids.serving.scoring

    honest = daily_bids.serving.scoring.decide_bids
    monkeypatch.setattr(
        daily_bids.serving.scoring, "decide_bids", _fails_on(RANGE[1], honest, RuntimeError("optimizer broke"))
    )
    run = _run(account, [BIDS], days=RANGE)
    assert not run.success and run.get_asset_materialization_events() == []
    assert _files(account["root"], tables.PREDICTIONS, tables.BIDS) == scored_range
    assert _nothing_staged(account["root"])


def test_a_backfill_of_the_bids_alone_bids_every_day_from_its_stored_predictions(account, scored_range):
    root, store = account["root"], account["store"]
    bids_before = store.read_partitions(tables.BIDS, RANGE)
    run = _run(account, [BIDS], days=RANGE)
    assert run.success and materializations_of(run, PREDICTIONS) == []
    assert {m.partition for m in materializations_of(run, BIDS)} == {day.isoformat() for day in RANGE}
    predictions = {path: file for path, file in scored_range.items() if path.startswith(f"{tables.PREDICTIONS}/")}
    assert _files(root, tables.PREDICTIONS) == predictions
    pd.testing.assert_frame_equal(store.read_partitions(tables.BIDS, RANGE), bids_before)


def test_a_report_made_in_pieces_is_stored_as_the_whole_day(account, monkeypatch):
    """The simulator hands a large day over a piece at a time: the day stored is the one made in one piece."""
    import resources.ad_platform

    store, day = account["store"], REPORT_DAY
    whole = store.read_partitions(tables.RAW_REPORT, [day])
    monkeypatch.setattr(resources.ad_platform, "REPORT_PIECE_ROWS", 64)
    run = _run(account, [raw_keyword_report], day)
    assert run.success
    pd.testing.assert_frame_equal(store.read_partitions(tables.RAW_REPORT, [day]), whole)
    assert store.partition_row_groups(tables.RAW_REPORT, day) == -(-len(whole) // 64) > 1  # a piece a row group
    (materialization,) = run.get_asset_materialization_events()
    assert materialization.materialization.metadata["rows"].value == len(whole)
