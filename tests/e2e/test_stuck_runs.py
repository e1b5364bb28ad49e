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

from servers.postgres_server import running_server
from support.deployment import REPO_ROOT, deployment_env

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _wait(what: str, seconds: float, condition, log: Path):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} within {seconds} s; the daemon's log ends:\n" + "\n".join(
            log.read_text(errors="replace").splitlines()[-40:]
        )
        time.sleep(1)


@pytest.fixture(params=["dagster.yaml", "dagster-postgres.yaml"])
def instance_config(request):
    """The platform's instance configuration file, and the variables it needs: none for SQLite, a real server's
    connection for PostgreSQL."""
    if request.param == "dagster.yaml":
        yield request.param, {}
        return
    with running_server("dagster") as server:
        yield request.param, server.instance_env("dagster")


def test_a_killed_run_is_failed_by_run_monitoring_and_the_next_run_goes_through(tmp_path, monkeypatch, instance_config):
    config_file, instance_env = instance_config
    env = deployment_env(tmp_path, config_file, **instance_env, BIDS_SIM_KEYWORDS="300", BIDS_FIRST_DAY="2025-05-01")
    home = Path(env["DAGSTER_HOME"])
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    assert config["run_monitoring"]["enabled"]
    # The platform's monitoring, checked every 2 s instead of every minute, and one run at a time, so that a single
    # zombie would hold the whole queue.
    config["run_monitoring"]["poll_interval_seconds"] = 2
    config["run_queue"]["max_concurrent_runs"] = 1
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    for name, value in instance_env.items():  # read by the instance below when it opens its storage
        monkeypatch.setenv(name, value)
    # Opened before the daemon starts, so that only this process creates the instance's tables: a daemon creating
    # them at the same moment fails on SQLite ("table alembic_version already exists") and never runs a thing.
    instance = dg.DagsterInstance.from_config(str(home))
    instance.get_runs(limit=1)
    instance.all_instigator_state()
    daemon_log = tmp_path / "daemon.log"
    with daemon_log.open("wb") as log:  # the child keeps its own copy
        daemon = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # its code server and run workers join its process group
    try:

        def launch(tags: dict) -> str:
            history = dg.RunsFilter(job_name="history_job")  # the daemon's own sensors launch runs too
            before = {run.run_id for run in instance.get_runs(history)}
            done = subprocess.run(
                [DAGSTER, "job", "launch", "-w", "workspace.yaml", "-j", "history_job", "--tags", json.dumps(tags)],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, f"dagster job launch failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            (run_id,) = {run.run_id for run in instance.get_runs(history)} - before
            return run_id

        doomed = launch(
            {
                "dagster/asset_partition_range_start": "2025-05-01",
                "dagster/asset_partition_range_end": "2025-06-15",
                "dagster/max_runtime": "15",
            }
        )
        _wait(
            "the first run starts",
            120,
            lambda: instance.get_run_by_id(doomed).status == dg.DagsterRunStatus.STARTED,
            daemon_log,
        )
        worker = _wait("its run worker process shows", 30, lambda: _run_worker_pid(instance, doomed), daemon_log)
        os.kill(worker, signal.SIGKILL)  # as the OOM killer would
        following = launch({"dagster/partition": "2025-05-01"})
        _wait(
            "run monitoring fails the killed run",
            120,
            lambda: instance.get_run_by_id(doomed).status == dg.DagsterRunStatus.FAILURE,
            daemon_log,
        )
        # The code server that spawned the worker notices the SIGKILL; where it cannot (it died too), run monitoring
        # fails the run when it outlives its dagster/max_runtime. Either way the run is failed, not left STARTED.
        reasons = " ".join(entry.message or "" for entry in instance.all_logs(doomed))
        assert "terminated by signal 9 (SIGKILL)" in reasons or "Exceeded maximum runtime of 15 seconds" in reasons
        _wait(
            "the next run succeeds",
            180,
            lambda: instance.get_run_by_id(following).status == dg.DagsterRunStatus.SUCCESS,
            daemon_log,
        )
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
