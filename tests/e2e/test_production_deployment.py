"""The deployment a team runs, its parts real and started here on 127.0.0.1: Dagster's instance on a PostgreSQL
server (platform/dagster-postgres.yaml, the connection from DAGSTER_PG_*); the reports landed in a bucket, and the
warehouse, the model bundles and MLflow's artifacts in buckets, on moto's S3 server; every S3 request through a
fault-injecting proxy in front of it.

`python -m daily_bids run`, as a cron job runs it, goes from the landed reports to published bids while a share of
requests fail or stall. A new instance opened from the same DAGSTER_HOME then reads the runs, the published bids and
the blocking checks' results back from PostgreSQL, and the tables are read with SQL too. A run that loses its writes
half-way fails cleanly and its re-run succeeds; and neither the S3 keys nor the database password is anywhere in
what the deployment wrote or logged.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import json
import subprocess
import sys
import time
from pathlib import Path

import boto3
import dagster as dg
import dagster_postgres
import pandas as pd
import psycopg2
import pytest
import yaml

from assets import ALL_CHECKS
from assets.serving import ads_editor_export_path, published_bids
from daily_bids.features.windows import minimum_history_days
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage import tables
from daily_bids.storage.warehouse import S3Options, Warehouse
from servers.fault_proxy import FaultProxy
from servers.postgres_server import running_server
from servers.s3_server import REGION, moto_server
from support.deployment import REPO_ROOT, deployment_env
from support.landing_files import HOSTILE_KEYWORDS, ads_editor_keyword

PLATFORM = REPO_ROOT / "platform"
# Recognizable fake credentials (moto accepts any): found anywhere but the environment, they leaked.
ACCESS_KEY = "AKIADAILYBIDSLEAKTEST"
SECRET_KEY = "daily-bids-fake-secret-4f1c9e7a2b"
WAREHOUSE, LANDING, ARTIFACTS = "bids-warehouse", "bids-landing", "bids-mlflow"
DATABASE = "dagster"
# The variables platform/dagster-postgres.yaml reads, by the postgres_db field each fills.
CONNECTION_VARIABLES = {
    "hostname": "DAGSTER_PG_HOST",
    "port": "DAGSTER_PG_PORT",
    "username": "DAGSTER_PG_USERNAME",
    "password": "DAGSTER_PG_PASSWORD",
    "db_name": "DAGSTER_PG_DB",
}
BLOCKING_CHECKS = sorted(
    (spec.key for check in ALL_CHECKS for spec in check.check_specs if spec.blocking),
    key=lambda key: key.to_user_string(),
)
# The fewest report days that train a first model; the day after them comes in a second run.
DAYS = [dt.date(2025, 3, 1) + dt.timedelta(days=offset) for offset in range(minimum_history_days() + 1)]
HISTORY, NEXT_DAY = DAYS[:-1], DAYS[-1]
# Clients give up on a stalled request after TIMEOUT seconds and try again, up to ATTEMPTS times with backoff.
TIMEOUT, ATTEMPTS = 1, 5  # 5: the default of BIDS_S3_MAX_ATTEMPTS
# A run makes a few thousand requests: dozens of errors and a few stalls, each costing a retry (a stall: TIMEOUT too).
FAULT_SHARES, FAULT_SEED = {"500": 0.01, "503": 0.01, "stall": 0.002}, 20261202
RUN_TIMEOUT = 600


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_the_postgres_instance_differs_from_the_embedded_one_only_in_its_storage():
    embedded, shared = load_yaml(PLATFORM / "dagster.yaml"), load_yaml(PLATFORM / "dagster-postgres.yaml")
    assert "storage" not in embedded  # SQLite under $DAGSTER_HOME: Dagster's default
    assert {key: value for key, value in shared.items() if key != "storage"} == embedded
    assert shared["storage"] == {
        "postgres": {
            "postgres_db": {
                **{field: {"env": variable} for field, variable in CONNECTION_VARIABLES.items()},
                "scheme": "postgresql+psycopg2",
            }
        }
    }


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
def moto():
    """moto's S3 server, and a client straight to it (not through the proxy)."""
    with moto_server() as endpoint:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        for bucket in (WAREHOUSE, LANDING, ARTIFACTS):
            client.create_bucket(Bucket=bucket)
        yield endpoint, client


@pytest.fixture(scope="module")
def deployment(postgres, moto, tmp_path_factory):
    """The landed reports of the history, the fault proxy, and the environment of a deployment whose instance is on
    the PostgreSQL server and which reaches S3 only through the proxy."""
    endpoint, client = moto
    simulator = AdMarketSimulator(seed=5, keywords=300)
    for day in HISTORY:
        _land_report(client, simulator, day)
    root = tmp_path_factory.mktemp("production")
    proxy = FaultProxy(endpoint, seed=FAULT_SEED, shares=FAULT_SHARES, stall_seconds=TIMEOUT + 2).start()
    env = deployment_env(
        root,
        "dagster-postgres.yaml",
        **postgres.instance_env(DATABASE),
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        BIDS_S3_ENDPOINT_URL=proxy.endpoint,
        BIDS_S3_TIMEOUT_SECONDS=str(TIMEOUT),
        BIDS_S3_MAX_ATTEMPTS=str(ATTEMPTS),
        BIDS_WAREHOUSE=f"s3://{WAREHOUSE}/prod",
        BIDS_SOURCE="landing",
        BIDS_LANDING_URI=f"s3://{LANDING}/exports",
        BIDS_LANDING_SETTLE_SECONDS="0",
        BIDS_FIRST_DAY=DAYS[0].isoformat(),
        BIDS_MLFLOW_ARTIFACTS=f"s3://{ARTIFACTS}/daily-bids",
    )
    store = Warehouse(
        f"s3://{WAREHOUSE}/prod", S3Options(endpoint_url=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    )
    yield {
        "env": env,
        "proxy": proxy,
        "client": client,
        "endpoint": endpoint,
        "root": root,
        "home": Path(env["DAGSTER_HOME"]),
        "store": store,
        "simulator": simulator,
        "outputs": [],
    }
    proxy.stop()


@pytest.fixture(scope="module")
def instance(deployment):
    """A new instance from the deployment's DAGSTER_HOME, as the webserver or the daemon would open it."""
    with pytest.MonkeyPatch.context() as env:
        for name in (*CONNECTION_VARIABLES.values(), "DAGSTER_HOME"):
            env.setenv(name, deployment["env"][name])
        with dg.DagsterInstance.get() as opened:
            yield opened


@pytest.fixture(scope="module")
def first_run(deployment, instance) -> dict:
    """`python -m daily_bids run` over the history with faults on: report history, features, a first champion, and
    the daily bid job for the last day; with the runs it left in the instance (later tests add more)."""
    done = _run_cli(deployment)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return {"output": done.stdout + done.stderr, "runs": instance.get_runs()}


@pytest.fixture(scope="module")
def daily_run(first_run) -> dg.DagsterRun:
    (run,) = [run for run in first_run["runs"] if run.job_name == "daily_bid_job"]
    return run


def test_the_daily_graph_runs_from_landed_reports_to_published_bids_through_s3_faults(deployment, first_run):
    proxy, store, day = deployment["proxy"], deployment["store"], HISTORY[-1]
    print("faults:", dict(proxy.faults), "forwarded:", dict(proxy.forwarded))
    assert proxy.faults["500"] and proxy.faults["503"] and proxy.faults["stall"], proxy.faults
    assert store.list_partitions("validated_keyword_report") == HISTORY
    bids = store.read_partitions(tables.BIDS, [day])
    assert len(bids) > 250 and bids["bid"].gt(0).all()  # the keywords of the day's report
    assert store.list_partitions(tables.PUBLISHED_BIDS) == [day]
    sheet = pd.read_csv(io.BytesIO(store.read_bytes(ads_editor_export_path(day + dt.timedelta(days=1)))))
    assert len(sheet) == len(bids)
    champion = json.loads(store.read_bytes(f"{tables.CHAMPION}/current.json"))
    assert day.strftime("%Y%m%d") in champion["version"], champion  # trained through the day
    _assert_nothing_half_written(deployment)
    # MLflow's artifacts are in their bucket, and come back through MLflow.
    keys = _keys(deployment["client"], ARTIFACTS)
    bundles = [key for key in keys if "/artifacts/model/" in key and key.endswith(".zip")]
    assert bundles, keys
    from mlflow import MlflowClient

    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_S3_ENDPOINT_URL", deployment["endpoint"])
        env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        client = MlflowClient(tracking_uri=deployment["env"]["BIDS_MLFLOW_TRACKING_URI"])
        parts = bundles[0].split("/")
        run_id = parts[parts.index("artifacts") - 1]  # <artifact location>/<run id>/artifacts/model/<bundle>
        destination = deployment["root"] / "downloaded"
        destination.mkdir()
        downloaded = Path(client.download_artifacts(run_id, "model", str(destination)))
        stored = deployment["client"].get_object(Bucket=ARTIFACTS, Key=bundles[0])["Body"].read()
        assert (downloaded / Path(bundles[0]).name).read_bytes() == stored


def test_hostile_keyword_text_comes_through_s3_exactly_and_defused_in_the_ads_editor_file(deployment, first_run):
    store, day, hostile = deployment["store"], HISTORY[-1], _hostile_names(deployment["simulator"])
    history = store.read_partitions("validated_keyword_report", HISTORY).drop_duplicates("keyword_id")
    assert history.set_index("keyword_id").loc[list(hostile), "keyword"].tolist() == HOSTILE_KEYWORDS
    text = store.read_bytes(ads_editor_export_path(day + dt.timedelta(days=1))).decode("utf-8")
    shown = {int(row["Keyword ID"]): row["Keyword"] for row in csv.DictReader(io.StringIO(text, newline=""))}
    bid_on = [keyword_id for keyword_id in hostile if keyword_id in shown]  # a keyword without impressions has no row
    assert len(bid_on) > len(hostile) // 2, bid_on
    assert [shown[keyword_id] for keyword_id in bid_on] == [ads_editor_keyword(hostile[k]) for k in bid_on]


def test_the_instance_stores_everything_in_postgres(deployment, instance, first_run):
    assert isinstance(instance.run_storage, dagster_postgres.PostgresRunStorage)
    assert isinstance(instance.event_log_storage, dagster_postgres.PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, dagster_postgres.PostgresScheduleStorage)
    # The embedded default would have written history/runs.db, storage/*.db and schedules/schedules.db.
    assert sorted(path.relative_to(deployment["home"]) for path in deployment["home"].rglob("*.db")) == []


def test_the_runs_read_back_from_postgres(first_run, daily_run):
    runs = first_run["runs"]
    # Oldest first: the report history, the feature history, the training, then the day's bids.
    assert [run.job_name for run in reversed(runs)] == [
        "history_job",
        "history_job",
        "train_model_job",
        "daily_bid_job",
    ]
    assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
    assert daily_run.tags["dagster/partition"] == HISTORY[-1].isoformat()
    history = [run for run in reversed(runs) if run.job_name == "history_job"]
    assert history[0].tags["dagster/asset_partition_range_start"] == HISTORY[0].isoformat()
    assert {run.tags["dagster/asset_partition_range_end"] for run in history} == {HISTORY[-1].isoformat()}


def test_the_published_bids_and_the_blocking_checks_read_back_from_postgres(instance, daily_run):
    bid_day = HISTORY[-1].isoformat()
    published = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=published_bids.key, asset_partitions=[bid_day]), limit=10
    ).records
    assert [record.run_id for record in published] == [daily_run.run_id]
    csv = published[0].asset_materialization.metadata["ads_editor_csv"].value
    assert csv == f"s3://{WAREHOUSE}/prod/{ads_editor_export_path(HISTORY[-1] + dt.timedelta(days=1))}"
    assert [key.to_user_string() for key in BLOCKING_CHECKS if key.name == "bids_are_profitable_and_capped"] == [
        "keyword_bids:bids_are_profitable_and_capped"
    ]  # the check that guards publication is among them
    results = {}
    for key in BLOCKING_CHECKS:
        executions = [
            execution
            for execution in instance.event_log_storage.get_asset_check_execution_history(key, limit=100)
            if execution.run_id == daily_run.run_id
        ]
        assert len(executions) == 1, (key, executions)
        (execution,) = executions
        evaluation = execution.event.asset_check_evaluation
        results[key.to_user_string()] = (execution.status.value, execution.partition, evaluation.passed)
    assert results == {key.to_user_string(): ("SUCCEEDED", bid_day, True) for key in BLOCKING_CHECKS}


def test_the_tables_hold_the_runs_and_their_events(postgres, instance, first_run, daily_run):
    events = instance.get_records_for_run(daily_run.run_id).records
    stored_runs = _sql(postgres, "SELECT run_id, pipeline_name, status FROM runs")
    (stored_events,) = _sql(postgres, "SELECT count(*) FROM event_logs WHERE run_id = %s", daily_run.run_id)[0]
    stored_checks = dict(
        _sql(
            postgres,
            "SELECT check_name, execution_status FROM asset_check_executions WHERE run_id = %s",
            daily_run.run_id,
        )
    )
    assert {run.run_id for run in first_run["runs"]} <= {run_id for run_id, _, _ in stored_runs}
    assert (daily_run.run_id, "daily_bid_job", "SUCCESS") in stored_runs
    assert stored_events == len(events) > 100  # every event of the run, from steps started to the run's success
    assert {name: stored_checks.get(name) for name in (key.name for key in BLOCKING_CHECKS)} == {
        key.name: "SUCCEEDED" for key in BLOCKING_CHECKS
    }


def test_a_run_that_loses_its_writes_half_way_fails_cleanly_and_its_rerun_succeeds(deployment, first_run):
    proxy, store = deployment["proxy"], deployment["store"]
    champion_before = store.read_bytes(f"{tables.CHAMPION}/current.json")
    pointer_before = store.read_bytes("xgboost_model/current.json")
    _land_report(deployment["client"], deployment["simulator"], NEXT_DAY)
    # The next day's report, then a retraining whose XGBoost bundle is stored but nothing after it: the pointer
    # write and every later write fail.
    proxy.set_faults({})
    proxy.fail_writes(after=1, from_path="/xgboost_model/versions/")
    failed = _run_cli(deployment, "--retrain")
    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
    assert "training did not complete" in failed.stderr, failed.stderr[-3000:]
    assert proxy.faults["write_failure"] >= ATTEMPTS
    assert any("/xgboost_model/versions/" in write for write in proxy.writes)  # the new bundle is stored, orphaned
    assert store.read_bytes("xgboost_model/current.json") == pointer_before
    assert store.read_bytes(f"{tables.CHAMPION}/current.json") == champion_before
    _assert_nothing_half_written(deployment)
    assert NEXT_DAY not in store.list_partitions(tables.BIDS)

    proxy.allow_writes()
    rerun = _run_cli(deployment)
    assert rerun.returncode == 0, rerun.stdout[-4000:] + rerun.stderr[-4000:]
    assert store.list_partitions(tables.PUBLISHED_BIDS) == [HISTORY[-1], NEXT_DAY]
    assert len(store.read_partitions(tables.BIDS, [NEXT_DAY])) > 250
    _assert_nothing_half_written(deployment)


def test_the_credentials_are_nowhere_but_in_the_environment(postgres, deployment, instance, first_run):
    secrets = [ACCESS_KEY, SECRET_KEY, postgres.password]
    searched: dict[str, int] = {}

    def search(where: str, content: bytes) -> None:
        searched[where] = len(content)
        for secret in secrets:
            assert secret.encode() not in content, f"{secret} leaked into {where}"

    for output in deployment["outputs"]:  # every CLI run's stdout and stderr
        search(f"output of {output['args']}", (output["stdout"] + output["stderr"]).encode())
    for path in sorted(p for p in deployment["root"].rglob("*") if p.is_file()):  # DAGSTER_HOME, MLflow's store
        search(str(path), path.read_bytes())
    client = deployment["client"]
    for bucket in (WAREHOUSE, LANDING, ARTIFACTS):
        for key in _keys(client, bucket):
            search(f"s3://{bucket}/{key}", client.get_object(Bucket=bucket, Key=key)["Body"].read())
    runs = instance.get_runs()
    assert {run.run_id for run in first_run["runs"]} <= {run.run_id for run in runs}
    for run in runs:
        search(f"run {run.run_id}", dg.serialize_value(run).encode())
        records = instance.get_records_for_run(run.run_id, limit=100_000).records
        search(f"event log of {run.run_id}", "\n".join(dg.serialize_value(r.event_log_entry) for r in records).encode())
    for secret in secrets:  # and in the database's own tables, whatever the instance's API shows
        for table, column in (("event_logs", "event"), ("runs", "run_body")):
            assert _sql(postgres, f"SELECT count(*) FROM {table} WHERE strpos({column}, %s) > 0", secret) == [(0,)]
    for path in [*PLATFORM.rglob("*"), REPO_ROOT / "workspace.yaml"]:  # no credential in config
        if path.is_file():
            search(str(path), path.read_bytes())
    assert any("dagster_home" in where for where in searched) and any("mlflow.db" in where for where in searched)


def test_the_database_takes_passwords_on_loopback_only(postgres):
    assert _sql(postgres, "SHOW listen_addresses", database="postgres") == [("127.0.0.1",)]
    methods = _sql(postgres, "SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host'", database="postgres")
    assert {method for (method,) in methods} == {"scram-sha-256"}
    assert listening_addresses(postgres.port) == ["127.0.0.1"]
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(
            host=postgres.host,
            port=postgres.port,
            user=postgres.username,
            password=postgres.password + "-wrong",
            dbname=DATABASE,
            connect_timeout=10,
        )


def test_mlflow_artifacts_land_in_s3_through_the_platforms_endpoint_with_bounded_retries(moto, tmp_path, monkeypatch):
    from boto3.exceptions import S3UploadFailedError

    from resources.tracking import ExperimentTracker
    from resources.warehouse import BoundedS3Resource

    for name, value in {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "MLFLOW_S3_ENDPOINT_URL": "restored after the test",
    }.items():
        monkeypatch.setenv(name, value)
    attempts = 3
    endpoint, client = moto
    with FaultProxy(endpoint, seed=5) as proxy:
        tracker = ExperimentTracker(
            tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
            experiment="s3-artifacts",
            artifact_location=f"s3://{ARTIFACTS}/unit",
            s3=BoundedS3Resource(endpoint_url=proxy.endpoint, max_attempts=attempts, timeout_seconds=TIMEOUT),
        )
        try:
            run_id = tracker.log_run("probe", "probe", {}, {"score": 1.0}, {"probe.txt": b"landed"})
            (key,) = [key for key in _keys(client, ARTIFACTS) if key.startswith("unit/") and run_id in key]
            assert key.endswith(f"{run_id}/artifacts/probe.txt")
            assert client.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read() == b"landed"
            proxy.fail_writes()  # MLflow's boto3 client has the platform's retries: a bounded number of attempts
            with pytest.raises(S3UploadFailedError):
                tracker.log_run("probe", "probe", {}, {"score": 1.0}, {"probe.txt": b"lost"})
            assert proxy.faults["write_failure"] == attempts
        finally:
            boto3.setup_default_session()  # the tracker set the process's default boto3 session


def test_the_git_sha_is_unknown_where_there_is_no_git_binary(monkeypatch, tmp_path):
    from resources.tracking import _git_sha

    monkeypatch.setenv("PATH", str(tmp_path))  # as in a container image without git
    assert _git_sha() == "unknown"


def _land_report(client, simulator: AdMarketSimulator, day: dt.date) -> None:
    """A day's report as a CSV export dropped into the landing bucket, the first keywords named with hostile text."""
    report = simulator.report(day)
    report["keyword"] = report["keyword_id"].map(_hostile_names(simulator)).fillna(report["keyword"])
    client.put_object(
        Bucket=LANDING,
        Key=f"exports/keyword_report_{day.isoformat()}.csv",
        Body=report.to_csv(index=False, lineterminator="\r\n").encode(),
    )  # as spreadsheets write it


def _hostile_names(simulator: AdMarketSimulator) -> dict[int, str]:
    """The account's first keywords, named with text that attacks spreadsheets or breaks lines."""
    return dict(zip(simulator.keyword_dimensions["keyword_id"], HOSTILE_KEYWORDS))


def _run_cli(deployment, *args: str) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "daily_bids", "run", *args],
        cwd=REPO_ROOT,
        env=deployment["env"],
        check=False,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    print(f"daily_bids run {' '.join(args)}: exit {done.returncode} in {time.monotonic() - started:.0f}s")
    deployment["outputs"].append({"args": args, "stdout": done.stdout, "stderr": done.stderr})
    return done


def _sql(postgres, query: str, *parameters, database: str = DATABASE) -> list[tuple]:
    connection = postgres.connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, parameters)
            return cursor.fetchall()
    finally:
        connection.close()


def _keys(client, bucket: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _assert_nothing_half_written(deployment) -> None:
    """No multipart upload left open, no temporary object, and every model pointer names bundles that are there
    (each object is one PUT: there, it is whole)."""
    client = deployment["client"]
    for bucket in (WAREHOUSE, ARTIFACTS):
        assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads"), bucket
    # Objects only: an empty key ending in "/" is the folder marker pyarrow leaves when a folder's last object goes
    # (the staging folder's, once a step has published or thrown away what it staged), and holds no data.
    keys = {key for key in _keys(client, WAREHOUSE) if not key.endswith("/")}
    assert not [key for key in keys if "/." in key or key.endswith(".tmp")], keys
    pointers = [key for key in keys if key.endswith("/current.json")]
    assert f"prod/{tables.CHAMPION}/current.json" in pointers
    for key in pointers:
        pointer = json.loads(client.get_object(Bucket=WAREHOUSE, Key=key)["Body"].read())
        for named in (pointer, pointer.get("judged", pointer)):
            assert f"prod/{named['bundle']}" in keys, (key, pointer)


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
    words = [bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, len(hex_address), 8)]
    return str(ipaddress.ip_address(b"".join(words)))
