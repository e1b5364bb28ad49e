"""The ways users run Daily Bids from a shell: loading the code location, `dagster asset materialize`, `python -m
daily_bids run`. Each runs in a subprocess with its own warehouse and Dagster instance."""

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO_ROOT
from daily_bids.warehouse import Warehouse

DAGSTER = str(Path(sys.executable).with_name("dagster"))


@pytest.fixture
def deployment(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "platform" / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "BIDS_WAREHOUSE": str(tmp_path / "warehouse"),
           "BIDS_SIM_KEYWORDS": "300"}
    return env, Warehouse(str(tmp_path / "warehouse"))


def _run(command, env, timeout=600):
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_definitions_load_without_tensorflow_or_great_expectations(deployment, tmp_path):
    env, _ = deployment
    script = tmp_path / "load.py"  # a file, not `python -c`: see the README's note on -c
    script.write_text(textwrap.dedent("""
        import sys
        from daily_bids.definitions import defs
        defs.resolve_all_job_defs()
        heavy = sorted(m for m in ("tensorflow", "great_expectations", "pyspark", "mlflow") if m in sys.modules)
        print("jobs:", sorted(j.name for j in defs.resolve_all_job_defs()))
        print("heavy:", heavy)
    """))
    out = _run([sys.executable, str(script)], env).stdout
    assert "heavy: []" in out
    assert "daily_bid_job" in out and "train_model_job" in out and "history_job" in out


def test_cli_backfills_seven_days_in_one_run(deployment):
    env, store = deployment
    env = {**env, "BIDS_FIRST_DAY": "2025-05-01"}  # features then need no history before the range
    _run([DAGSTER, "asset", "materialize", "-m", "daily_bids.definitions",
          "--select", "raw_keyword_report,validated_keyword_report,keyword_quarantine,keyword_features",
          "--partition-range", "2025-05-01...2025-05-07"], env)
    week = [dt.date(2025, 5, 1) + dt.timedelta(days=i) for i in range(7)]
    tables = ("raw_keyword_report", "validated_keyword_report", "keyword_features")
    for table in tables:
        assert store.list_partitions(table) == week
    runs = _run([DAGSTER, "run", "list"], env).stdout
    assert runs.count("Run: ") == 1  # the whole range was one run
    first = {table: store.read_partitions(table, week) for table in tables}
    _run([DAGSTER, "asset", "materialize", "-m", "daily_bids.definitions",
          "--select", "raw_keyword_report,validated_keyword_report,keyword_quarantine,keyword_features",
          "--partition-range", "2025-05-01...2025-05-07"], env)
    for table in tables:  # re-running a range is idempotent: the same rows, one file per day
        pd.testing.assert_frame_equal(store.read_partitions(table, week), first[table])


def test_cli_materializes_one_day_and_either_half_of_the_validation_step_alone(deployment):
    env, store = deployment
    env = {**env, "BIDS_FIRST_DAY": "2025-05-01"}
    materialize = [DAGSTER, "asset", "materialize", "-m", "daily_bids.definitions", "--partition", "2025-05-03",
                   "--select"]
    _run([*materialize, "raw_keyword_report,validated_keyword_report,keyword_quarantine"], env)
    assert store.list_partitions("validated_keyword_report") == [dt.date(2025, 5, 3)]
    before = store.read_partitions("validated_keyword_report", [dt.date(2025, 5, 3)])
    _run([*materialize, "validated_keyword_report"], env)  # the quarantine already on disk still reconciles
    _run([*materialize, "keyword_quarantine"], env)
    pd.testing.assert_frame_equal(store.read_partitions("validated_keyword_report", [dt.date(2025, 5, 3)]), before)
    # A day whose quarantine was never made cannot be reconciled: the blocking check says so, plainly.
    _run([*materialize[:5], "--partition", "2025-05-04", "--select", "raw_keyword_report"], env)
    done = subprocess.run([*materialize[:5], "--partition", "2025-05-04", "--select", "validated_keyword_report"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "keyword_quarantine is not materialized for ['2025-05-04']" in done.stdout + done.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                     json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     {"Content-Type": "application/json"})
    answer = json.load(urllib.request.urlopen(request, timeout=30))
    assert "errors" not in answer, answer
    return answer["data"]


LOCATION_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } ... on RepositoryLocation {
    repositories { jobs { name } assetNodes { assetKey { path } } } } } } } } }"""


@contextlib.contextmanager
def _webserver(env, with_daemon: bool = False):
    """dagster-webserver on a free loopback port (and the daemon, for backfills and sensors), until the code location
    has loaded; yields (port, the location's workspace entries)."""
    port = _free_port()
    processes = [subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    if with_daemon:
        processes.append(subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w",
                                           "workspace.yaml"], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                entries = _graphql(port, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the webserver did not load the code location within 120 s"
            time.sleep(1)
        yield port, entries
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def test_the_ui_loads_the_code_location_without_errors(deployment):
    env, _ = deployment
    with _webserver(env) as (_, entries):
        pass
    (entry,) = entries
    location = entry["locationOrLoadError"]
    assert entry["name"] == "daily_bids" and location["__typename"] == "RepositoryLocation", location
    (repository,) = location["repositories"]
    assert {"daily_bid_job", "history_job", "train_model_job", "tune_models_job", "register_keras_job"} <= {
        job["name"] for job in repository["jobs"]}
    assets = [node["assetKey"]["path"] for node in repository["assetNodes"]]
    assert ["published_bids"] in assets and ["model_tuning"] in assets and ["user_keras_model"] in assets


BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
    __typename ... on PartitionBackfill { status numPartitions runs(limit: 10) { runId status } } } }"""


def test_a_ui_backfill_of_a_range_is_one_run_with_a_check_result_per_day(deployment):
    """The UI's backfill dialog, through its GraphQL mutation, with the daemon running the backfill."""
    env, store = deployment
    env = {**env, "BIDS_FIRST_DAY": "2025-05-01"}
    days = [f"2025-05-0{n}" for n in (1, 2, 3)]
    assets = ["raw_keyword_report", "validated_keyword_report", "keyword_quarantine", "keyword_features"]
    with _webserver(env, with_daemon=True) as (port, _):
        launched = _graphql(port, BACKFILL, {"params": {
            "assetSelection": [{"path": [name]} for name in assets], "partitionNames": days}})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        deadline = time.monotonic() + 300
        while True:
            backfill = _graphql(port, BACKFILL_STATUS, {"id": launched["backfillId"]})["partitionBackfillOrError"]
            if backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
                break
            assert time.monotonic() < deadline, f"the backfill did not finish within 300 s: {backfill}"
            time.sleep(2)
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
    assert [run["status"] for run in backfill["runs"]] == ["SUCCESS"]  # the whole range in one run
    for table in ("raw_keyword_report", "validated_keyword_report", "keyword_quarantine", "keyword_features"):
        assert [d.isoformat() for d in store.list_partitions(table)] == days
    # Every check recorded one result per day of the range, none for the range as a whole.
    script = Path(env["DAGSTER_HOME"]) / "checks.py"
    script.write_text(textwrap.dedent("""
        import sys
        import dagster as dg
        instance = dg.DagsterInstance.get()
        (run,) = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": sys.argv[1]}))
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.dagster_event.asset_check_evaluation_data
            print(evaluation.check_name, evaluation.partition, evaluation.passed)
    """))
    lines = _run([sys.executable, str(script), launched["backfillId"]], env).stdout.splitlines()
    # The UI's backfill also runs the assets' freshness checks, which judge "now", not a partition.
    lines = [line for line in lines if not line.startswith("freshness_check ")]
    checks = {line.split()[0] for line in lines}
    assert "raw_report_contract" in checks and "features_contract" in checks
    for check in checks:
        assert sorted(line.split()[1] for line in lines if line.split()[0] == check) == days


def test_settings_show_the_value_in_force_beside_the_default(monkeypatch, capsys):
    from daily_bids.cli import main

    monkeypatch.setenv("BIDS_SIM_KEYWORDS", "300")
    monkeypatch.delenv("BIDS_SIM_SEED", raising=False)
    assert main(["settings"]) == 0
    rows = {line.split(" | ")[0].strip("| `"): line for line in capsys.readouterr().out.splitlines()}
    assert "| `300` (set) | `2000` |" in rows["BIDS_SIM_KEYWORDS"]
    assert "| (default) | `7` |" in rows["BIDS_SIM_SEED"]
