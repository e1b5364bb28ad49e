"""A served Daily Bids deployment for end-to-end tests: `dagster-webserver` (and `dagster-daemon`) as subprocesses
of the repository's workspace, on a loopback port, with a small GraphQL client for Dagster's public API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
TERMINAL_RUN_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")

LOCATION = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message stack } } } } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
    ... on Error { message } } }"""
BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack } ... on Error { message } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
    ... on PartitionBackfill { id status numPartitions runs(limit: 100) { runId status } } ... on Error { message } } }"""
TERMINAL_BACKFILL_STATUSES = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")
RUN = """query($id: ID!) { runOrError(runId: $id) { __typename
    ... on Run { runId status jobName endTime tags { key value } } ... on Error { message } } }"""
# Everything a failed run said at ERROR level, with the errors' messages and the end of their stacks.
RUN_ERRORS = """query($id: ID!) { logsForRun(runId: $id, limit: 5000) { __typename
    ... on EventConnection { events { __typename
        ... on MessageEvent { message level stepKey }
        ... on ErrorEvent { error { message stack cause { message } } } } }
    ... on Error { message } } }"""


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServedDeployment:
    """The webserver and, once `start_daemon` is called, the daemon: each in a session of its own, so that stopping
    it also stops the code servers and run workers it started. Logs go to files in `logs`."""

    def __init__(self, repo_root: Path, env: dict[str, str], logs: Path, port: int, host: str = "127.0.0.1"):
        self.repo_root, self.env, self.logs, self.port, self.host = repo_root, env, logs, port, host
        self.url = f"http://{host}:{port}"
        self.processes: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, *command: str) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command, cwd=self.repo_root, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()  # the child holds its own copy
        self.processes[name] = process
        return process

    def start_webserver(self, timeout: float = 120) -> None:
        self._start(
            "webserver", str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", self.host, "-p", str(self.port)
        )
        self._wait_until_loaded(timeout)

    def start_daemon(self) -> None:
        """The instance's run coordinator queues launched runs (platform/dagster.yaml has a `run_queue`): the daemon
        is what dequeues and starts them."""
        self._start("daemon", str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml")

    def _wait_until_loaded(self, timeout: float) -> None:
        """Until /server_info answers and the code location has loaded, or fail with the logs."""
        deadline = time.monotonic() + timeout
        while True:
            self.assert_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as response:
                    json.load(response)
                entries = self.graphql(LOCATION)["workspaceOrError"]["locationEntries"]
                if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                    errors = [
                        e["locationOrLoadError"]
                        for e in entries
                        if e["locationOrLoadError"]["__typename"] == "PythonError"
                    ]
                    assert not errors, f"the code location failed to load: {errors}\n{self.log_tails()}"
                    return
            except OSError:  # not listening yet (refused, reset): try again
                pass
            assert time.monotonic() < deadline, (
                f"the webserver did not serve the code location within {timeout:.0f} s\n{self.log_tails()}"
            )
            time.sleep(0.5)

    def assert_alive(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}\n{self.log_tails()}"

    def log_tails(self, lines: int = 60) -> str:
        tails = []
        for name in self.processes:
            text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
            tails.append(f"--- last {lines} lines of {name}.log ---\n" + "\n".join(text[-lines:]))
        return "\n".join(tails)

    def stop(self) -> None:
        """SIGTERM to each process group (the daemon first), then SIGKILL to any that has not exited in 30 s."""
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.load(response)
        assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
        return body["data"]

    def launch_run(
        self, job: str, location: str, tags: dict[str, str] | None = None, run_config: dict | None = None
    ) -> str:
        """`launchRun`, as the UI's launchpad sends it; returns the run's id."""
        params = {
            "selector": {"repositoryLocationName": location, "repositoryName": "__repository__", "jobName": job},
            "runConfigData": run_config or {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        launched = self.graphql(LAUNCH, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", f"launching {job} failed: {launched}"
        return launched["run"]["runId"]

    def launch_backfill(self, assets: list[str], partitions: list[str]) -> str:
        """`launchPartitionBackfill`, as the UI's backfill dialog sends it for a selection of assets and a range of
        partitions; returns the backfill's id."""
        params = {"assetSelection": [{"path": [name]} for name in assets], "partitionNames": partitions}
        launched = self.graphql(BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", f"launching the backfill failed: {launched}"
        return launched["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout: float) -> dict:
        """Polls `partitionBackfillOrError` until the daemon has finished the backfill; returns it (status, runs)."""
        return self._poll(
            lambda: self.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"],
            "PartitionBackfill",
            TERMINAL_BACKFILL_STATUSES,
            f"backfill {backfill_id}",
            timeout,
        )

    def wait_for_run(self, run_id: str, timeout: float) -> dict:
        """Polls `runOrError` until the run ends; returns the run (its status, job and tags)."""
        return self._poll(
            lambda: self.graphql(RUN, {"id": run_id})["runOrError"],
            "Run",
            TERMINAL_RUN_STATUSES,
            f"run {run_id}",
            timeout,
        )

    def _poll(self, fetch, typename: str, terminal: tuple[str, ...], what: str, timeout: float) -> dict:
        """`fetch()` every second until its status is one of `terminal`; fails once `timeout` has passed."""
        deadline = time.monotonic() + timeout
        while True:
            current = fetch()
            assert current["__typename"] == typename, current
            if current["status"] in terminal:
                return current
            self.assert_alive()
            assert time.monotonic() < deadline, (
                f"{what} still {current['status']} after {timeout:.0f} s: {current}\n{self.log_tails()}"
            )
            time.sleep(1)

    def run_errors(self, run_id: str) -> str:
        """What a run reported at ERROR level, for an assertion message."""
        logs = self.graphql(RUN_ERRORS, {"id": run_id})["logsForRun"]
        if logs["__typename"] != "EventConnection":
            return str(logs)
        lines = []
        for event in logs["events"]:
            error = event.get("error")
            if event.get("level") != "ERROR" and not error:
                continue
            lines.append(f"{event['__typename']} {event.get('stepKey') or ''}: {event.get('message')}")
            if error:
                lines.append(f"  {error['message']}" + "".join(error["stack"][-5:]))
                if error.get("cause"):
                    lines.append(f"  caused by: {error['cause']['message']}")
        return "\n".join(lines) or "no error events"

    def assert_run_succeeds(self, run_id: str, timeout: float) -> dict:
        run = self.wait_for_run(run_id, timeout)
        assert run["status"] == "SUCCESS", (
            f"run {run_id} of {run['jobName']} ended {run['status']}:\n{self.run_errors(run_id)}\n{self.log_tails()}"
        )
        return run
