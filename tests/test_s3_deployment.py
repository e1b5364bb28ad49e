"""A whole deployment on S3: reports landed in a bucket, the warehouse, the model bundles and MLflow's artifacts in
buckets, every request through a fault-injecting proxy in front of moto's S3 server (both on 127.0.0.1, started
here). `python -m daily_bids run` goes from the landed reports to published bids while a share of requests fail or
stall; then a run that loses its writes half-way fails cleanly and its re-run succeeds; and the deployment's fake
credentials are nowhere in what it wrote or logged."""

import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import dagster as dg
import pandas as pd
import pytest
from conftest import REPO_ROOT
from fault_proxy import FaultProxy
from s3_server import REGION, moto_server

from assets.serving import BIDS_TABLE, PUBLISHED_TABLE, ads_editor_export_path
from daily_bids.model_store import CHAMPION
from daily_bids.simulator import AdMarketSimulator
from daily_bids.warehouse import S3Options, Warehouse
from daily_bids.windows import minimum_history_days

# Recognizable fake credentials (moto accepts any): found anywhere but the environment, they leaked.
ACCESS_KEY = "AKIADAILYBIDSLEAKTEST"
SECRET_KEY = "daily-bids-fake-secret-4f1c9e7a2b"
WAREHOUSE, LANDING, ARTIFACTS = "bids-warehouse", "bids-landing", "bids-mlflow"
# The fewest report days that train a first model; the day after them comes in a second run.
DAYS = [dt.date(2025, 3, 1) + dt.timedelta(days=offset) for offset in range(minimum_history_days() + 1)]
HISTORY, NEXT_DAY = DAYS[:-1], DAYS[-1]
# Clients give up on a stalled request after TIMEOUT seconds and try again, up to ATTEMPTS times with backoff.
TIMEOUT, ATTEMPTS = 1, 5  # 5: the default of BIDS_S3_MAX_ATTEMPTS
# A run makes about 6,000 requests: some 120 errors and a dozen stalls, each costing a retry (a stall: TIMEOUT too).
FAULT_SHARES, FAULT_SEED = {"500": 0.01, "503": 0.01, "stall": 0.002}, 20261202
RUN_TIMEOUT = 600


@pytest.fixture(scope="module")
def moto():
    """moto's S3 server on a free loopback port, and a client straight to it (not through the proxy)."""
    with moto_server() as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY)
        for bucket in (WAREHOUSE, LANDING, ARTIFACTS):
            client.create_bucket(Bucket=bucket)
        yield endpoint, client


@pytest.fixture(scope="module")
def deployment(moto, tmp_path_factory):
    """The landed reports of the history, the fault proxy, and the environment of a deployment that reaches S3
    only through the proxy: a fresh DAGSTER_HOME (platform/dagster.yaml) and MLflow store."""
    endpoint, client = moto
    simulator = AdMarketSimulator(seed=5, keywords=300)
    for day in HISTORY:
        _land_report(client, simulator, day)
    root = tmp_path_factory.mktemp("s3_deployment")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "platform" / "dagster.yaml", home / "dagster.yaml")
    proxy = FaultProxy(endpoint, seed=FAULT_SEED, shares=FAULT_SHARES, stall_seconds=TIMEOUT + 2).start()
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "BIDS_", "MLFLOW_"))}
    env = {**inherited, "DAGSTER_HOME": str(home), "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "BIDS_S3_ENDPOINT_URL": proxy.endpoint, "BIDS_S3_TIMEOUT_SECONDS": str(TIMEOUT),
           "BIDS_S3_MAX_ATTEMPTS": str(ATTEMPTS), "BIDS_WAREHOUSE": f"s3://{WAREHOUSE}/prod",
           "BIDS_SOURCE": "landing", "BIDS_LANDING_URI": f"s3://{LANDING}/exports", "BIDS_LANDING_SETTLE_SECONDS": "0",
           "BIDS_FIRST_DAY": DAYS[0].isoformat(), "BIDS_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
           "BIDS_MLFLOW_ARTIFACTS": f"s3://{ARTIFACTS}/daily-bids"}
    store = Warehouse(f"s3://{WAREHOUSE}/prod", S3Options(endpoint_url=endpoint, access_key=ACCESS_KEY,
                                                           secret_key=SECRET_KEY))
    yield {"env": env, "proxy": proxy, "client": client, "endpoint": endpoint, "root": root, "home": home,
           "store": store, "simulator": simulator, "outputs": []}
    proxy.stop()


@pytest.fixture(scope="module")
def first_run(deployment):
    """`python -m daily_bids run` over the history with faults on: report history, features, a first champion,
    and the daily bid job for the last day."""
    return _run_cli(deployment)


def test_the_daily_graph_runs_from_landed_reports_to_published_bids_through_s3_faults(deployment, first_run):
    proxy, store, day = deployment["proxy"], deployment["store"], HISTORY[-1]
    assert first_run.returncode == 0, first_run.stdout[-4000:] + first_run.stderr[-4000:]
    print("faults:", dict(proxy.faults), "forwarded:", dict(proxy.forwarded))
    assert proxy.faults["500"] and proxy.faults["503"] and proxy.faults["stall"], proxy.faults
    assert store.list_partitions("validated_keyword_report") == HISTORY
    bids = store.read_partitions(BIDS_TABLE, [day])
    assert len(bids) > 250 and bids["bid"].gt(0).all()  # the keywords of the day's report
    assert store.list_partitions(PUBLISHED_TABLE) == [day]
    sheet = pd.read_csv(io.BytesIO(store.read_bytes(ads_editor_export_path(day + dt.timedelta(days=1)))))
    assert len(sheet) == len(bids)
    champion = json.loads(store.read_bytes(f"{CHAMPION}/current.json"))
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


def test_a_run_that_loses_its_writes_half_way_fails_cleanly_and_its_rerun_succeeds(deployment, first_run):
    assert first_run.returncode == 0
    proxy, store = deployment["proxy"], deployment["store"]
    champion_before = store.read_bytes(f"{CHAMPION}/current.json")
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
    assert store.read_bytes(f"{CHAMPION}/current.json") == champion_before
    _assert_nothing_half_written(deployment)
    assert NEXT_DAY not in store.list_partitions(BIDS_TABLE)

    proxy.allow_writes()
    rerun = _run_cli(deployment)
    assert rerun.returncode == 0, rerun.stdout[-4000:] + rerun.stderr[-4000:]
    assert store.list_partitions(PUBLISHED_TABLE) == [HISTORY[-1], NEXT_DAY]
    assert len(store.read_partitions(BIDS_TABLE, [NEXT_DAY])) > 250
    _assert_nothing_half_written(deployment)


def test_the_credentials_are_nowhere_but_in_the_environment(deployment, first_run):
    assert first_run.returncode == 0
    secrets = [ACCESS_KEY.encode(), SECRET_KEY.encode()]
    searched: dict[str, int] = {}

    def search(where: str, content: bytes) -> None:
        searched[where] = len(content)
        for secret in secrets:
            assert secret not in content, f"{secret.decode()} leaked into {where}"

    for output in deployment["outputs"]:  # every CLI run's stdout and stderr
        search(f"output of {output['args']}", (output["stdout"] + output["stderr"]).encode())
    for path in sorted(p for p in deployment["root"].rglob("*") if p.is_file()):  # DAGSTER_HOME, MLflow's store
        search(str(path), path.read_bytes())
    client = deployment["client"]
    for bucket in (WAREHOUSE, LANDING, ARTIFACTS):
        for key in _keys(client, bucket):
            search(f"s3://{bucket}/{key}", client.get_object(Bucket=bucket, Key=key)["Body"].read())
    instance = dg.DagsterInstance.from_config(str(deployment["home"]))
    runs = instance.get_runs()
    assert runs
    for run in runs:
        search(f"run {run.run_id}", dg.serialize_value(run).encode())
        records = instance.get_records_for_run(run.run_id, limit=100_000).records
        search(f"event log of {run.run_id}", "\n".join(dg.serialize_value(r.event_log_entry) for r in records).encode())
    for path in [*(REPO_ROOT / "platform").rglob("*"), REPO_ROOT / "workspace.yaml"]:  # no credential in config
        if path.is_file():
            search(str(path), path.read_bytes())
    assert any("dagster_home" in where for where in searched) and any("mlflow.db" in where for where in searched)


def test_mlflow_artifacts_land_in_s3_through_the_platforms_endpoint_with_bounded_retries(moto, tmp_path, monkeypatch):
    from boto3.exceptions import S3UploadFailedError

    from resources.tracking import ExperimentTracker
    from resources.warehouse import BoundedS3Resource

    endpoint, client = moto
    for name, value in {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                        "MLFLOW_S3_ENDPOINT_URL": "restored after the test"}.items():
        monkeypatch.setenv(name, value)
    attempts = 3
    with FaultProxy(endpoint, seed=5) as proxy:
        tracker = ExperimentTracker(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="s3-artifacts",
                                    artifact_location=f"s3://{ARTIFACTS}/unit",
                                    s3=BoundedS3Resource(endpoint_url=proxy.endpoint, max_attempts=attempts,
                                                         timeout_seconds=TIMEOUT))
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
    """A day's report as a CSV export dropped into the landing bucket."""
    client.put_object(Bucket=LANDING, Key=f"exports/keyword_report_{day.isoformat()}.csv",
                      Body=simulator.report(day).to_csv(index=False).encode())


def _run_cli(deployment, *args: str) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "daily_bids", "run", *args], cwd=REPO_ROOT, env=deployment["env"],
                          check=False, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    print(f"daily_bids run {' '.join(args)}: exit {done.returncode} in {time.monotonic() - started:.0f}s")
    deployment["outputs"].append({"args": args, "stdout": done.stdout, "stderr": done.stderr})
    return done


def _keys(client, bucket: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _assert_nothing_half_written(deployment) -> None:
    """No multipart upload left open, no temporary object, and every model pointer names bundles that are there
    (each object is one PUT: there, it is whole)."""
    client = deployment["client"]
    for bucket in (WAREHOUSE, ARTIFACTS):
        assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads"), bucket
    keys = set(_keys(client, WAREHOUSE))
    assert not [key for key in keys if "/." in key or key.endswith(".tmp")], keys
    pointers = [key for key in keys if key.endswith("/current.json")]
    assert f"prod/{CHAMPION}/current.json" in pointers
    for key in pointers:
        pointer = json.loads(client.get_object(Bucket=WAREHOUSE, Key=key)["Body"].read())
        for named in (pointer, pointer.get("judged", pointer)):
            assert f"prod/{named['bundle']}" in keys, (key, pointer)
