"""The ways users run Daily Bids from a shell: loading the code location, `dagster asset materialize`, `python -m
daily_bids run`. Each runs in a subprocess with its own warehouse and Dagster instance."""

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
    for table in ("raw_keyword_report", "validated_keyword_report", "keyword_features"):
        assert store.list_partitions(table) == week
    runs = _run([DAGSTER, "run", "list"], env).stdout
    assert runs.count("Run: ") == 1  # the whole range was one run


def test_cli_materializes_one_day(deployment):
    env, store = deployment
    env = {**env, "BIDS_FIRST_DAY": "2025-05-01"}
    _run([DAGSTER, "asset", "materialize", "-m", "daily_bids.definitions",
          "--select", "raw_keyword_report,validated_keyword_report,keyword_quarantine", "--partition", "2025-05-03"], env)
    assert store.list_partitions("validated_keyword_report") == [dt.date(2025, 5, 3)]


def test_run_command_bootstraps_then_reuses_history(deployment):
    env, store = deployment
    first = _run([sys.executable, "-m", "daily_bids", "run", "--day", "2025-04-15"], env).stdout
    assert "report history: materializing" in first
    assert "training clusters, the XGBoost and the deep model, then the champion gate" in first
    assert "bids written" in first
    csv = store.display_uri("exports/google_ads_editor/keyword_bids_2025-04-16.csv")
    assert f"bid CSV (Ads Editor)   {csv}" in first and Path(csv).is_file()

    second = _run([sys.executable, "-m", "daily_bids", "run", "--day", "2025-04-15"], env).stdout
    assert "report history: all 91 days present, reused" in second
    assert "feature history: all 64 days present, reused" in second
    assert "reused" in second.split("champion ")[1]


def test_the_ui_loads_the_code_location_without_errors(deployment):
    import json
    import socket
    import time
    import urllib.request

    env, _ = deployment
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webserver = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    query = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } ... on RepositoryLocation {
        repositories { jobs { name } assetNodes { assetKey { path } } } } } } } } }"""
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", json.dumps({"query": query}).encode(),
                                                 {"Content-Type": "application/json"})
                answer = json.load(urllib.request.urlopen(request, timeout=10))
                entries = answer["data"]["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the webserver did not load the code location within 120 s"
            time.sleep(1)
    finally:
        webserver.terminate()
        webserver.wait(timeout=30)
    (entry,) = entries
    location = entry["locationOrLoadError"]
    assert entry["name"] == "daily_bids" and location["__typename"] == "RepositoryLocation", location
    (repository,) = location["repositories"]
    assert {"daily_bid_job", "history_job", "train_model_job"} <= {job["name"] for job in repository["jobs"]}
    assert ["keyword_bids"] in [node["assetKey"]["path"] for node in repository["assetNodes"]]
