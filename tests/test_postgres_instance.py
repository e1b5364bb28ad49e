"""Daily Bids on a PostgreSQL instance, as a shared deployment runs it: platform/dagster-postgres.yaml as
$DAGSTER_HOME/dagster.yaml, the connection from the DAGSTER_PG_* variables.

A real PostgreSQL server (Debian's package; see tests/postgres_server.py) is started for the module. `python -m
daily_bids run` bootstraps a small simulated account against it (the report and feature history, a first champion,
the day's `daily_bid_job`), and a new instance, built from the same DAGSTER_HOME, reads the runs, the published bids
and the blocking checks' results back; the tables are also read with SQL, to see the records really are there.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import dagster_postgres
import psycopg2
import pytest
import yaml
from conftest import REPO_ROOT
from postgres_server import running_server

from assets import ALL_CHECKS
from assets.serving import published_bids
from daily_bids.windows import minimum_history_days

PLATFORM = REPO_ROOT / "platform"
DATABASE = "dagster"
KEYWORDS = 300
# The variables platform/dagster-postgres.yaml reads, by the postgres_db field each fills.
CONNECTION_VARIABLES = {"hostname": "DAGSTER_PG_HOST", "port": "DAGSTER_PG_PORT", "username": "DAGSTER_PG_USERNAME",
                        "password": "DAGSTER_PG_PASSWORD", "db_name": "DAGSTER_PG_DB"}
BLOCKING_CHECKS = sorted((spec.key for check in ALL_CHECKS for spec in check.check_specs if spec.blocking),
                         key=lambda key: key.to_user_string())


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_the_postgres_instance_differs_from_the_embedded_one_only_in_its_storage():
    embedded, shared = load_yaml(PLATFORM / "dagster.yaml"), load_yaml(PLATFORM / "dagster-postgres.yaml")
    assert "storage" not in embedded  # SQLite under $DAGSTER_HOME: Dagster's default
    assert {key: value for key, value in shared.items() if key != "storage"} == embedded
    assert shared["storage"] == {"postgres": {"postgres_db": {
        **{field: {"env": variable} for field, variable in CONNECTION_VARIABLES.items()},
        "scheme": "postgresql+psycopg2"}}}


def test_compose_sets_every_variable_the_postgres_instance_reads():
    compose = load_yaml(PLATFORM / "compose.yaml")
    for service in ("code-location", "webserver", "daemon"):
        environment = compose["services"][service]["environment"]
        assert {name for name in environment if name.startswith("DAGSTER_PG_")} == set(CONNECTION_VARIABLES.values())
        volumes = compose["services"][service]["volumes"]
        assert f"./dagster-postgres.yaml:{environment['DAGSTER_HOME']}/dagster.yaml:ro" in volumes, service


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of its own, with an empty database for the instance; stopped and deleted afterwards."""
    with running_server(DATABASE) as server:
        yield server


@pytest.fixture(scope="module")
def deployment(postgres, tmp_path_factory):
    """`python -m daily_bids run` on a fresh PostgreSQL instance and warehouse, bidding from yesterday's report (UTC)
    with the fewest days of history a first model trains on."""
    root = tmp_path_factory.mktemp("postgres_instance")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(PLATFORM / "dagster-postgres.yaml", home / "dagster.yaml")
    bid_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    instance_env = {"DAGSTER_HOME": str(home), **postgres.instance_env(DATABASE)}
    env = {**os.environ, **instance_env, "BIDS_WAREHOUSE": str(root / "warehouse"), "BIDS_SIM_KEYWORDS": str(KEYWORDS),
           "BIDS_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
           "BIDS_FIRST_DAY": (bid_day - dt.timedelta(days=minimum_history_days())).isoformat()}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "daily_bids", "run"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, (f"python -m daily_bids run failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                                  f"{done.stderr[-3000:]}\n{postgres.log_tail()}")
    print(f"python -m daily_bids run on PostgreSQL took {time.monotonic() - started:.0f} s")
    return {"home": home, "instance_env": instance_env, "bid_day": bid_day, "output": done.stdout + done.stderr}


@pytest.fixture(scope="module")
def instance(deployment):
    """A new instance from the deployment's DAGSTER_HOME, as the webserver or the daemon would open it."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in deployment["instance_env"].items():
            env.setenv(name, value)
        with dg.DagsterInstance.get() as opened:
            yield opened


@pytest.fixture(scope="module")
def daily_run(deployment, instance) -> dg.DagsterRun:
    runs = instance.get_runs(dg.RunsFilter(job_name="daily_bid_job"))
    assert len(runs) == 1, [(run.run_id, run.tags) for run in runs]
    return runs[0]


def test_the_instance_stores_everything_in_postgres(deployment, instance):
    assert isinstance(instance.run_storage, dagster_postgres.PostgresRunStorage)
    assert isinstance(instance.event_log_storage, dagster_postgres.PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, dagster_postgres.PostgresScheduleStorage)
    # The embedded default would have written history/runs.db, storage/*.db and schedules/schedules.db.
    assert sorted(path.relative_to(deployment["home"]) for path in deployment["home"].rglob("*.db")) == []


def test_the_runs_read_back_from_postgres(deployment, instance, daily_run):
    bid_day = deployment["bid_day"].isoformat()
    assert daily_run.status == dg.DagsterRunStatus.SUCCESS
    assert daily_run.tags["dagster/partition"] == bid_day
    runs = instance.get_runs()
    # Oldest first: the report history, the feature history, the training, then the day's bids.
    assert [run.job_name for run in reversed(runs)] == ["history_job", "history_job", "train_model_job",
                                                        "daily_bid_job"]
    assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
    history = [run for run in reversed(runs) if run.job_name == "history_job"]
    first_day = (deployment["bid_day"] - dt.timedelta(days=minimum_history_days())).isoformat()
    assert history[0].tags["dagster/asset_partition_range_start"] == first_day
    assert {run.tags["dagster/asset_partition_range_end"] for run in history} == {bid_day}


def test_the_published_bids_and_the_blocking_checks_read_back_from_postgres(deployment, instance, daily_run):
    bid_day = deployment["bid_day"].isoformat()
    published = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=published_bids.key, asset_partitions=[bid_day]), limit=10).records
    assert [record.run_id for record in published] == [daily_run.run_id]
    csv = published[0].asset_materialization.metadata["ads_editor_csv"].value
    assert Path(csv).is_file(), csv
    assert instance.get_latest_materialization_event(published_bids.key).run_id == daily_run.run_id

    assert [key.to_user_string() for key in BLOCKING_CHECKS if key.name == "bids_are_profitable_and_capped"] == [
        "keyword_bids:bids_are_profitable_and_capped"]  # the check that guards publication is among them
    results = {}
    for key in BLOCKING_CHECKS:
        executions = [execution for execution in instance.event_log_storage.get_asset_check_execution_history(
            key, limit=100) if execution.run_id == daily_run.run_id]
        assert len(executions) == 1, (key, executions)
        (execution,) = executions
        evaluation = execution.event.asset_check_evaluation
        results[key.to_user_string()] = (execution.status.value, execution.partition, evaluation.passed)
    assert results == {key.to_user_string(): ("SUCCEEDED", bid_day, True) for key in BLOCKING_CHECKS}


def test_the_tables_hold_the_runs_and_their_events(postgres, instance, daily_run):
    events = instance.get_records_for_run(daily_run.run_id).records
    connection = postgres.connect(DATABASE)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT run_id, pipeline_name, status FROM runs")
            stored_runs = cursor.fetchall()
            cursor.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (daily_run.run_id,))
            (stored_events,) = cursor.fetchone()
            cursor.execute("SELECT check_name, execution_status FROM asset_check_executions WHERE run_id = %s",
                           (daily_run.run_id,))
            stored_checks = dict(cursor.fetchall())
    finally:
        connection.close()
    assert len(stored_runs) == len(instance.get_runs()) == 4
    assert (daily_run.run_id, "daily_bid_job", "SUCCESS") in stored_runs
    assert stored_events == len(events) > 100  # every event of the run, from steps started to the run's success
    assert {name: stored_checks.get(name) for name in (key.name for key in BLOCKING_CHECKS)} == {
        key.name: "SUCCEEDED" for key in BLOCKING_CHECKS}


def test_the_password_stays_in_the_environment(postgres, deployment, instance, daily_run):
    password = postgres.password
    assert password not in (deployment["home"] / "dagster.yaml").read_text()
    files = [path for path in deployment["home"].rglob("*") if path.is_file()]
    assert [path for path in files if password.encode() in path.read_bytes()] == []  # compute logs included
    assert password not in deployment["output"]
    records = instance.get_records_for_run(daily_run.run_id).records
    assert not [record.storage_id for record in records if password in dg.serialize_value(record.event_log_entry)]
    assert password not in dg.serialize_value(daily_run)
    connection = postgres.connect(DATABASE)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM event_logs WHERE strpos(event, %s) > 0", (password,))
            assert cursor.fetchone() == (0,)
            cursor.execute("SELECT count(*) FROM runs WHERE strpos(run_body, %s) > 0", (password,))
            assert cursor.fetchone() == (0,)
    finally:
        connection.close()


def test_the_server_takes_passwords_on_loopback_only(postgres):
    connection = postgres.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW listen_addresses")
            assert cursor.fetchone() == ("127.0.0.1",)
            cursor.execute("SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host'")
            assert {method for (method,) in cursor.fetchall()} == {"scram-sha-256"}
    finally:
        connection.close()
    assert listening_addresses(postgres.port) == ["127.0.0.1"]
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host=postgres.host, port=postgres.port, user=postgres.username,
                         password=postgres.password + "-wrong", dbname=DATABASE, connect_timeout=10)


def listening_addresses(port: int) -> list[str]:
    """The local addresses of the TCP sockets listening on `port`, from the kernel's tables (IPv4 and IPv6)."""
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.split(":")
            if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
                addresses.append(_kernel_address(address))
    return addresses


def _kernel_address(hex_address: str) -> str:
    """/proc/net/tcp* write addresses as hex of 32-bit words in host (little-endian) order."""
    words = [bytes.fromhex(hex_address[i:i + 8])[::-1] for i in range(0, len(hex_address), 8)]
    return str(ipaddress.ip_address(b"".join(words)))
