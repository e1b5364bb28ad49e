"""A run whose checks failed says so on the Runs page (the `daily_bids/failed_checks` tag), even when it is green."""

import dagster as dg

from assets.alerts import FAILED_CHECK_HOOKS, FAILED_CHECKS_TAG
from assets.automation import JOBS


@dg.asset
def bids():
    return 1


@dg.asset_check(asset=bids)
def moves_plausibly():
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description="too many moves")


@dg.asset_check(asset=bids)
def profitable():
    return dg.AssetCheckResult(passed=True)


def _run(*checks) -> dg.DagsterRun:
    job = dg.define_asset_job("bids_job", selection=dg.AssetSelection.assets(bids), hooks=FAILED_CHECK_HOOKS)
    defs = dg.Definitions(assets=[bids], asset_checks=list(checks), jobs=[job])
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("bids_job").execute_in_process(instance=instance)
        assert result.success  # a WARN check does not stop the run: only the tag shows it
        return instance.get_run_by_id(result.run_id)


def test_a_green_run_with_a_failed_check_is_tagged_with_it():
    run = _run(moves_plausibly, profitable)
    assert run.tags[FAILED_CHECKS_TAG] == "1: bids.moves_plausibly (WARN)"
    assert FAILED_CHECKS_TAG not in _run(profitable).tags


def test_every_job_of_the_project_tags_its_runs():
    for job in JOBS:
        assert set(FAILED_CHECK_HOOKS) <= set(job.hooks), job.name
