"""A run killed with SIGKILL must not wedge the queue: with the real daemon and the platform's instance configuration
the killed run is marked failed, and the next run launches and succeeds. On the embedded SQLite instance and on the
shared PostgreSQL one (platform/dagster-postgres.yaml, on a real server started for the test)."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from conftest import REPO_ROOT
from postgres_server import SKIP_REASON, PostgresServer, server_binaries
from ui_server import free_port

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _wait(what: str, seconds: float, condition):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(1)


@pytest.fixture(params=["dagster.yaml", "dagster-postgres.yaml"])
def instance_config(request):
    """The platform's instance configuration file, and the variables it needs: none for SQLite, a real server's
    connection for PostgreSQL."""
    if request.param == "dagster.yaml":
        yield request.param, {}
        return
    binaries = server_binaries()
    if binaries is None:
        pytest.skip(SKIP_REASON)
    server = PostgresServer(binaries, port=free_port())
    try:
        server.start()
        server.create_database("dagster")
        yield request.param, server.instance_env("dagster")
    finally:
        server.stop()


def test_a_killed_run_is_failed_by_run_monitoring_and_the_next_run_goes_through(tmp_path, monkeypatch, instance_config):
    config_file, instance_env = instance_config
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((REPO_ROOT / "platform" / config_file).read_text())
    assert config["run_monitoring"]["enabled"]
    # The platform's monitoring, checked every 2 s instead of every minute, and one run at a time, so that a single
    # zombie would hold the whole queue.
    config["run_monitoring"]["poll_interval_seconds"] = 2
    config["run_queue"]["max_concurrent_runs"] = 1
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, **instance_env, "DAGSTER_HOME": str(home), "BIDS_WAREHOUSE": str(tmp_path / "warehouse"),
           "BIDS_SIM_KEYWORDS": "300", "BIDS_FIRST_DAY": "2025-05-01"}
    daemon = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # its code server and run workers join its process group
    for name, value in instance_env.items():  # read by the instance below when it opens its storage
        monkeypatch.setenv(name, value)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        def launch(tags: dict) -> str:
            history = dg.RunsFilter(job_name="history_job")  # the daemon's own sensors launch runs too
            before = {run.run_id for run in instance.get_runs(history)}
            subprocess.run([DAGSTER, "job", "launch", "-w", "workspace.yaml", "-j", "history_job", "--tags",
                            json.dumps(tags)], cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=120)
            (run_id,) = {run.run_id for run in instance.get_runs(history)} - before
            return run_id

        doomed = launch({"dagster/asset_partition_range_start": "2025-05-01",
                         "dagster/asset_partition_range_end": "2025-06-15", "dagster/max_runtime": "15"})
        _wait("the first run starts", 120,
              lambda: instance.get_run_by_id(doomed).status == dg.DagsterRunStatus.STARTED)
        worker = _wait("its run worker process shows", 30, lambda: _run_worker_pid(instance, doomed))
        os.kill(worker, signal.SIGKILL)  # as the OOM killer would
        following = launch({"dagster/partition": "2025-05-01"})
        _wait("run monitoring fails the killed run", 120,
              lambda: instance.get_run_by_id(doomed).status == dg.DagsterRunStatus.FAILURE)
        # The code server that spawned the worker notices the SIGKILL; where it cannot (it died too), run monitoring
        # fails the run when it outlives its dagster/max_runtime. Either way the run is failed, not left STARTED.
        reasons = " ".join(entry.message or "" for entry in instance.all_logs(doomed))
        assert "terminated by signal 9 (SIGKILL)" in reasons or "Exceeded maximum runtime of 15 seconds" in reasons
        _wait("the next run succeeds", 180,
              lambda: instance.get_run_by_id(following).status == dg.DagsterRunStatus.SUCCESS)
    finally:
        # The whole group: a code server left behind would live on after the test (seen here).
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):  # nothing of it left: nothing to kill
            os.killpg(daemon.pid, signal.SIGKILL)


def _run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process executing `run_id`, from the engine event the run logs when its process starts."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        found = re.search(r"\(pid: (\d+)\)", entry.message or "")
        if found:
            return int(found.group(1))
    return None
