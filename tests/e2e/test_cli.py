"""The ways users run Daily Bids from a shell: loading the code location, `dagster asset materialize`, `python -m
daily_bids settings`. Each runs in a subprocess with its own warehouse and Dagster instance. The served UI (the
webserver, the daemon, GraphQL and a browser) is tested in test_served_ui.py."""

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from daily_bids.storage.warehouse import Warehouse
from support.deployment import REPO_ROOT, deployment_env

DAGSTER = str(Path(sys.executable).with_name("dagster"))


@pytest.fixture
def deployment(tmp_path):
    env = deployment_env(tmp_path, BIDS_SIM_KEYWORDS="300")
    return env, Warehouse(env["BIDS_WAREHOUSE"])


def _run(command, env, timeout=600):
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_definitions_load_without_tensorflow_or_great_expectations(deployment, tmp_path):
    env, _ = deployment
    script = tmp_path / "load.py"  # a file, not `python -c`: see the README's note on -c
    script.write_text(
        textwrap.dedent("""
        import sys
        from daily_bids.definitions import defs
        defs.resolve_all_job_defs()
        heavy = sorted(m for m in ("tensorflow", "great_expectations", "pyspark", "mlflow") if m in sys.modules)
        print("jobs:", sorted(j.name for j in defs.resolve_all_job_defs()))
        print("heavy:", heavy)
    """)
    )
    out = _run([sys.executable, str(script)], env).stdout
    assert "heavy: []" in out
    assert "daily_bid_job" in out and "train_model_job" in out and "history_job" in out


def test_cli_backfills_seven_days_in_one_run(deployment):
    env, store = deployment
    env = {**env, "BIDS_FIRST_DAY": "2025-05-01"}  # features then need no history before the range
    _run(
        [
            DAGSTER,
            "asset",
            "materialize",
            "-m",
            "daily_bids.definitions",
            "--select",
            "raw_keyword_report,validated_keyword_report,keyword_quarantine,keyword_features",
            "--partition-range",
            "2025-05-01...2025-05-07",
        ],
        env,
    )
    week = [dt.date(2025, 5, 1) + dt.timedelta(days=i) for i in range(7)]
    tables = ("raw_keyword_report", "validated_keyword_report", "keyword_features")
    for table in tables:
        assert store.list_partitions(table) == week
    runs = _run([DAGSTER, "run", "list"], env).stdout
    assert runs.count("Run: ") == 1  # the whole range was one run
    first = {table: store.read_partitions(table, week) for table in tables}
    _run(
        [
            DAGSTER,
            "asset",
            "materialize",
            "-m",
            "daily_bids.definitions",
            "--select",
            "raw_keyword_report,validated_keyword_report,keyword_quarantine,keyword_features",
            "--partition-range",
            "2025-05-01...2025-05-07",
        ],
        env,
    )
    for table in tables:  # re-running a range is idempotent: the same rows, one file per day
        pd.testing.assert_frame_equal(store.read_partitions(table, week), first[table])


def test_cli_materializes_one_day_and_either_half_of_the_validation_step_alone(deployment):
    env, store = deployment
    env = {**env, "BIDS_FIRST_DAY": "2025-05-01"}
    materialize = [
        DAGSTER,
        "asset",
        "materialize",
        "-m",
        "daily_bids.definitions",
        "--partition",
        "2025-05-03",
        "--select",
    ]
    _run([*materialize, "raw_keyword_report,validated_keyword_report,keyword_quarantine"], env)
    assert store.list_partitions("validated_keyword_report") == [dt.date(2025, 5, 3)]
    before = store.read_partitions("validated_keyword_report", [dt.date(2025, 5, 3)])
    _run([*materialize, "validated_keyword_report"], env)  # the quarantine already on disk still reconciles
    _run([*materialize, "keyword_quarantine"], env)
    pd.testing.assert_frame_equal(store.read_partitions("validated_keyword_report", [dt.date(2025, 5, 3)]), before)
    # A day whose quarantine was never made cannot be reconciled: the blocking check says so, plainly.
    _run([*materialize[:5], "--partition", "2025-05-04", "--select", "raw_keyword_report"], env)
    done = subprocess.run(
        [*materialize[:5], "--partition", "2025-05-04", "--select", "validated_keyword_report"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0
    assert "keyword_quarantine is not materialized for ['2025-05-04']" in done.stdout + done.stderr


def test_settings_show_the_value_in_force_beside_the_default(monkeypatch, capsys):
    from daily_bids.cli import main

    monkeypatch.setenv("BIDS_SIM_KEYWORDS", "300")
    monkeypatch.delenv("BIDS_SIM_SEED", raising=False)
    assert main(["settings"]) == 0
    rows = {line.split(" | ")[0].strip("| `"): line for line in capsys.readouterr().out.splitlines()}
    assert "| `300` (set) | `2000` |" in rows["BIDS_SIM_KEYWORDS"]
    assert "| (default) | `7` |" in rows["BIDS_SIM_SEED"]
