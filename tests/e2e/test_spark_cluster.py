"""The Spark scoring engine on a real standalone cluster: a master and one worker started from the pyspark
distribution in the venv, on 127.0.0.1. Against `spark://` the engine gives the local engine's predictions and bids
(tests/support/spark_parity.py's check, run on this cluster), the application runs on the worker's executor, and the
driver listens on loopback only; the example platform/spark/spark-defaults.conf sets only keys this Spark knows."""

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from daily_bids.bidding.policy import BidPolicy
from daily_bids.settings import Settings
from resources import build_resources
from resources.engine import EngineResource
from support.deployment import REPO_ROOT
from support.spark_parity import check_parity  # the local[2] suite's parity check: the same inputs and tolerances
from support.spark_sessions import spark_session

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (java on PATH)")
STARTUP_SECONDS = 120  # two JVMs on a shared 2-core machine; they usually take under 10 s


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _master_status(webui: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=5) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master and one worker (1 core, 2g), both on 127.0.0.1, until the module ends."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    folder = tmp_path_factory.mktemp("spark_cluster")
    port, webui, worker_webui = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_CONF_DIR": str(folder),  # no spark-defaults.conf of anyone's
        # The master's REST submission server would take the fixed port 6066; nothing here submits through it.
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
    }
    spark_class = str(spark_home / "bin" / "spark-class")
    commands = {
        "master": [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(webui),
        ],
        "worker": [
            spark_class,
            "org.apache.spark.deploy.worker.Worker",
            f"spark://127.0.0.1:{port}",
            "--host",
            "127.0.0.1",
            "--cores",
            "1",
            "--memory",
            "2g",
            "--webui-port",
            str(worker_webui),
            "--work-dir",
            str(folder / "work"),
        ],  # not the default, inside the venv's pyspark
    }
    processes: dict[str, subprocess.Popen] = {}
    logs = {name: folder / f"{name}.log" for name in commands}

    def tails() -> str:
        return "\n".join(
            f"--- {name} log (last 3000 characters):\n{log.read_text()[-3000:]}"
            for name, log in logs.items()
            if log.exists()
        )

    def start(name: str) -> None:
        with logs[name].open("w") as log:  # a session of its own: teardown stops the JVM and its executors
            processes[name] = subprocess.Popen(
                commands[name], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_for(what: str, ready) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if ready(_master_status(webui)):
                    return
            except (OSError, json.JSONDecodeError):  # the master's web UI is not up yet, or not yet serving its status
                pass
            exited = [name for name, process in processes.items() if process.poll() is not None]
            if exited or time.monotonic() > deadline:
                pytest.fail(
                    f"the Spark {what} within {STARTUP_SECONDS} s ({', '.join(exited) or 'none'} exited)\n{tails()}"
                )
            time.sleep(0.5)

    try:
        start("master")
        wait_for("master did not serve its status", lambda status: status["status"] == "ALIVE")
        start("worker")
        wait_for("worker did not register", lambda status: status["aliveworkers"] >= 1)
        yield {"url": f"spark://127.0.0.1:{port}", "webui": webui, "worker_webui": worker_webui, "tails": tails}
    finally:
        for name in ("worker", "master"):
            if name in processes and processes[name].poll() is None:
                os.killpg(processes[name].pid, signal.SIGTERM)
                try:
                    processes[name].wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(processes[name].pid, signal.SIGKILL)
                    processes[name].wait(timeout=30)


@pytest.fixture(scope="module")
def spark(cluster):
    """The platform's Spark session against the cluster, through the resource as a deployment builds it."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SPARK_LOCAL_IP", raising=False)  # the driver's loopback binding must come from the resource
        with spark_session(cluster["url"]) as session:
            yield session


@pytest.mark.parametrize(
    "kind, policy",
    [("xgboost_model", BidPolicy()), ("deep_model", BidPolicy(campaign_budgets={"Hiking 001": 3.0}))],
    ids=["xgboost_no_budget", "deep_budget"],
)
def test_the_spark_engine_on_a_cluster_gives_the_local_engines_predictions_and_bids(
    warehouse_copy, spark, kind, policy
):
    check_parity(warehouse_copy, spark, kind, policy)


def test_the_application_ran_on_the_clusters_executor(cluster, spark):
    context = spark.sparkContext
    assert context.master == cluster["url"]
    (app,) = [a for a in _master_status(cluster["webui"])["activeapps"] if a["id"] == context.applicationId]
    assert app["name"] == "daily-bids" and app["state"] == "RUNNING" and app["cores"] == 1
    # The status tracker lists the driver and every executor: here the driver and the worker's one executor, once
    # it has registered (the worker launches it after the application starts).
    deadline = time.monotonic() + 60
    while len(context.statusTracker().getExecutorInfos()) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(context.statusTracker().getExecutorInfos()) == 2, cluster["tails"]()
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster['worker_webui']}/json/", timeout=5) as response:
        worker = json.load(response)
    assert [e["appid"] for e in worker["executors"]] == [context.applicationId]


def _listening_sockets(pid: int) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """(address, port) of every TCP socket process `pid` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                # The kernel prints each 32-bit word of the address in host (little-endian) order.
                raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8))
                address = ipaddress.ip_address(raw)
                # Java listens on IPv6 sockets: ::ffff:127.0.0.1 is IPv4's loopback.
                found.append((getattr(address, "ipv4_mapped", None) or address, int(port, 16)))
    return found


def test_the_driver_listens_on_loopback_only(spark):
    """With a cluster master and no SPARK_LOCAL_IP, Spark would bind the driver to this machine's hostname address."""
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.host") == conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.ui.enabled") == "false"
    listening = _listening_sockets(spark._jvm.java.lang.ProcessHandle.current().pid())
    assert int(conf.get("spark.driver.port")) in {port for _, port in listening}  # the driver's RPC server is there
    exposed = [(str(address), port) for address, port in listening if not address.is_loopback]
    assert not exposed, f"the driver listens beyond loopback: {exposed}"


def test_the_driver_host_setting_reaches_the_spark_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("BIDS_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("BIDS_ENGINE", "spark")
    monkeypatch.setenv("BIDS_SPARK_MASTER", "spark://spark-master.example.internal:7077")
    assert (
        build_resources(Settings())["scoring"].spark_config()["spark.driver.bindAddress"] == "127.0.0.1"
    )  # the default
    monkeypatch.setenv("BIDS_SPARK_DRIVER_HOST", "10.0.0.5")
    config = build_resources(Settings())["scoring"].spark_config()
    assert config["spark.driver.host"] == config["spark.driver.bindAddress"] == "10.0.0.5"
    monkeypatch.setenv("BIDS_SPARK_MASTER", "local[2]")  # in-process Spark stays on loopback whatever the setting
    assert build_resources(Settings())["scoring"].spark_config()["spark.driver.bindAddress"] == "127.0.0.1"
    monkeypatch.setenv("BIDS_SPARK_DRIVER_HOST", "")
    with pytest.raises(ValueError, match="BIDS_SPARK_DRIVER_HOST is empty"):
        build_resources(Settings())


def test_the_example_spark_defaults_set_only_keys_this_spark_knows(spark):
    """Spark ignores a mistyped key without a word, and the platform's own settings win over the file: the example
    sets neither."""
    lines = (REPO_ROOT / "platform" / "spark" / "spark-defaults.conf").read_text().splitlines()
    keys = [line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert keys
    known = spark._jvm.org.apache.spark.internal.config.ConfigEntry
    assert [key for key in keys if known.findEntry(key) is None] == []
    overridden = set(EngineResource(engine="spark", spark_master="spark://h:7077").spark_config())
    assert overridden.isdisjoint(keys)
