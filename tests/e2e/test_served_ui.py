"""The served UI end to end: `dagster-webserver` and `dagster-daemon` over a small simulated account (300 keywords,
the fewest days of history a first model trains on), driven through Dagster's GraphQL API and a real headless
Chromium.

Everything goes through the server, as a user of the UI would: the automation is switched off (so the daemon runs
only what the test launches), the history is launched as the UI's backfill dialog launches it, the first champion as
a run, then the day's `daily_bid_job`. Screenshots of the pages land in `test-artifacts/`.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import socket
import time
from pathlib import Path

import dagster as dg
import pytest

from assets import ALL_ASSETS, ALL_CHECKS, FRESHNESS_CHECKS, HISTORY_ASSETS, JOBS
from assets.automation import daily_bid_job, train_model_job
from assets.serving import published_bids
from daily_bids.features.windows import minimum_history_days
from daily_bids.serving.ads_editor import ADS_EDITOR_COLUMNS
from servers.ui_server import ServedDeployment, free_port
from support.deployment import REPO_ROOT, deployment_env
from support.webhook import Webhook

ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium, not a Playwright download. This machine's closed network refuses Chromium's background
# connections (updates, sync, QUIC), which would otherwise stall page loads.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium: Debian package chromium; .ci/run installs it"
)

LOCATION = "daily_bids"  # workspace.yaml
KEYWORDS = 300
ASSET_NAMES = sorted(key.to_user_string() for asset in ALL_ASSETS for key in asset.keys)
CHECKS = sorted(
    (key.asset_key.to_user_string(), key.name) for check in [*ALL_CHECKS, *FRESHNESS_CHECKS] for key in check.check_keys
)
PUBLISHED = published_bids.key.to_user_string()
HISTORY = sorted(key.to_user_string() for asset in HISTORY_ASSETS for key in asset.keys)
# Freshness checks judge "now", not a partition: a backfill that runs them records no partition for them.
FRESHNESS = {(key.asset_key.to_user_string(), key.name) for check in FRESHNESS_CHECKS for key in check.check_keys}
PARTITION = "dagster/partition"  # Dagster's tag of a run's partition
RUN_TIMEOUT = 300  # seconds per run; on this 2-core machine the slowest (training) takes about 25

INSTIGATORS = """{ repositoriesOrError { __typename ... on RepositoryConnection { nodes {
    sensors { name sensorState { id status } } schedules { name scheduleState { id status } } } } } }"""
STOP_SENSOR = """mutation($id: String!) { stopSensor(id: $id) { __typename
    ... on StopSensorMutationResult { instigationState { status } } ... on Error { message } } }"""
START_SENSOR = """mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) { __typename
    ... on Sensor { sensorState { status } } ... on Error { message } } }"""
SENSOR_TICKS = """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) { __typename
    ... on Sensor { sensorState { ticks(limit: 1) { status timestamp } } } } }"""
RUNS_OF_SENSOR = """query($name: String!) { runsOrError(filter: {tags: [{key: "dagster/sensor_name", value: $name}]}) {
    __typename ... on Runs { results { runId status endTime } } } }"""
CHECK_EXECUTIONS = """query($key: AssetKeyInput!, $name: String!) {
    assetCheckExecutions(assetKey: $key, checkName: $name, limit: 1) { runId status evaluation { description } } }"""
# They launch no runs (they post alerts), so they stay on while everything else is switched off.
ALERT_SENSORS = ("run_failure_alert_sensor", "check_failure_alert_sensor")
FRESHNESS_SENSOR = "freshness_checks_sensor"  # dagster's build_sensor_for_freshness_checks
STOP_SCHEDULE = """mutation($id: String!) { stopRunningSchedule(id: $id) { __typename
    ... on ScheduleStateResult { scheduleState { status } } ... on Error { message } } }"""
GRAPH = """{ assetNodes { assetKey { path } groupName jobNames isPartitioned
    partitionKeysByDimension { partitionKeys }
    assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } } } }"""
RESULTS = """query($keys: [AssetKeyInput!], $day: String!) { assetNodes(assetKeys: $keys) { assetKey { path }
    assetMaterializations(partitions: [$day]) { runId partition metadataEntries { label
        ... on PathMetadataEntry { path } } }
    assetChecksOrError { ... on AssetChecks { checks { name blocking
        executionForLatestMaterialization { runId status partition } } } } } }"""


@pytest.fixture(scope="module")
def days() -> dict[str, dt.date]:
    """The latest complete day (UTC) is the one to bid from; the account's reports start just early enough to train
    a first model on the days before it."""
    bid_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    first = bid_day - dt.timedelta(days=minimum_history_days())
    return {"first": first, "trained_through": bid_day - dt.timedelta(days=1), "bid": bid_day}


@pytest.fixture(scope="module")
def webhook():
    """Where the alert sensors post (BIDS_ALERT_WEBHOOK): every alert of the module's runs lands here."""
    with Webhook() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def served(tmp_path_factory, days, webhook):
    """The webserver on a free loopback port over a fresh instance (platform/dagster.yaml) and warehouse, with every
    sensor and schedule but the alert sensors stopped through the API before the daemon starts."""
    root = tmp_path_factory.mktemp("served_ui")
    env = deployment_env(
        root, BIDS_SIM_KEYWORDS=str(KEYWORDS), BIDS_FIRST_DAY=days["first"].isoformat(), BIDS_ALERT_WEBHOOK=webhook.url
    )
    deployment = ServedDeployment(REPO_ROOT, env, logs=root, port=free_port())
    try:
        deployment.start_webserver()
        # The retraining and freshness sensors and the daily schedule run by default: with the daemon up they would
        # launch runs of their own beside the test's.
        (repository,) = deployment.graphql(INSTIGATORS)["repositoriesOrError"]["nodes"]
        for sensor in repository["sensors"]:
            if sensor["sensorState"]["status"] == "RUNNING" and sensor["name"] not in ALERT_SENSORS:
                stopped = deployment.graphql(STOP_SENSOR, {"id": sensor["sensorState"]["id"]})["stopSensor"]
                assert stopped["instigationState"]["status"] == "STOPPED", (sensor["name"], stopped)
        for schedule in repository["schedules"]:
            if schedule["scheduleState"]["status"] == "RUNNING":
                stopped = deployment.graphql(STOP_SCHEDULE, {"id": schedule["scheduleState"]["id"]})
                assert stopped["stopRunningSchedule"]["scheduleState"]["status"] == "STOPPED", (schedule, stopped)
        (repository,) = deployment.graphql(INSTIGATORS)["repositoriesOrError"]["nodes"]
        assert {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]} == {
            s["name"]: "RUNNING" if s["name"] in ALERT_SENSORS else "STOPPED" for s in repository["sensors"]
        }
        assert {s["scheduleState"]["status"] for s in repository["schedules"]} == {"STOPPED"}
        deployment.start_daemon()
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(scope="module")
def history_backfill(served, days) -> dict:
    """The report and feature history, launched as the UI's backfill dialog launches it (the history assets, every
    day from the first report to the day before the bid day) and run by the daemon; the backfill once it has ended,
    and its days."""
    count = (days["trained_through"] - days["first"]).days + 1
    partitions = [(days["first"] + dt.timedelta(days=offset)).isoformat() for offset in range(count)]
    backfill_id = served.launch_backfill(HISTORY, partitions)
    return {"backfill": served.wait_for_backfill(backfill_id, RUN_TIMEOUT), "partitions": partitions}


@pytest.fixture(scope="module")
def champion(served, history_backfill, days):
    """A first champion, launched as a run: clusters, both candidates and the gate, trained through the day before
    the bid day, on the history the backfill made."""
    assert history_backfill["backfill"]["status"] == "COMPLETED_SUCCESS", history_backfill["backfill"]
    window = {"config": {"train_through": days["trained_through"].isoformat()}}  # what `python -m daily_bids run` sets
    training = served.launch_run(
        train_model_job.name,
        LOCATION,
        run_config={"ops": {"keyword_clusters": window, "xgboost_model": window, "deep_model": window}},
    )
    served.assert_run_succeeds(training, RUN_TIMEOUT)


@pytest.fixture(scope="module")
def daily_run(served, champion, days) -> dict:
    """The day's `daily_bid_job`, launched for the bid day's partition; the run once it has ended."""
    run_id = served.launch_run(daily_bid_job.name, LOCATION, tags={PARTITION: days["bid"].isoformat()})
    return served.wait_for_run(run_id, RUN_TIMEOUT)


def test_the_served_graph_has_every_asset_and_check_of_the_project(served, days):
    nodes = served.graphql(GRAPH)["assetNodes"]
    assert sorted("/".join(node["assetKey"]["path"]) for node in nodes) == ASSET_NAMES
    served_checks = sorted(
        ("/".join(node["assetKey"]["path"]), check["name"])
        for node in nodes
        for check in node["assetChecksOrError"]["checks"]
    )
    assert served_checks == CHECKS
    by_name = {"/".join(node["assetKey"]["path"]): node for node in nodes}
    published = by_name[PUBLISHED]
    assert daily_bid_job.name in published["jobNames"] and published["isPartitioned"]
    # The daily partitions run from the account's first report day to the latest complete day.
    (dimension,) = published["partitionKeysByDimension"]
    assert dimension["partitionKeys"][0] == days["first"].isoformat()
    assert dimension["partitionKeys"][-1] == days["bid"].isoformat()
    blocking = {check["name"] for node in nodes for check in node["assetChecksOrError"]["checks"] if check["blocking"]}
    assert {"bids_are_profitable_and_capped", "raw_report_contract"} <= blocking
    # Every job of the project can be launched from the UI, the model lab's among them.
    assert {job.name for job in JOBS} <= {name for node in nodes for name in node["jobNames"]}


def test_a_history_backfill_launched_as_the_ui_does_is_one_run_with_a_check_result_per_day(served, history_backfill):
    backfill, partitions = history_backfill["backfill"], history_backfill["partitions"]
    assert backfill["status"] == "COMPLETED_SUCCESS", f"{backfill}\n{served.log_tails()}"
    assert backfill["numPartitions"] == len(partitions)
    (run,) = backfill["runs"]  # the whole range in one run: every history asset has BackfillPolicy.single_run()
    assert run["status"] == "SUCCESS", served.run_errors(run["runId"])
    instance = dg.DagsterInstance.from_config(served.env["DAGSTER_HOME"])
    judged: dict[tuple[str, str], list[str]] = {}
    for entry in instance.all_logs(run["runId"], of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.asset_check_evaluation_data
        check = (evaluation.asset_key.to_user_string(), evaluation.check_name)
        if check not in FRESHNESS:
            judged.setdefault(check, []).append(evaluation.partition)
    # Every check of the history's assets judged each day of the range once, none the range as a whole.
    assert sorted(judged) == sorted(check for check in CHECKS if check[0] in HISTORY and check not in FRESHNESS)
    for check, judged_days in judged.items():
        assert sorted(judged_days) == partitions, check


def test_the_daily_bid_job_launched_through_graphql_publishes_the_bids(served, daily_run, days):
    assert daily_run["status"] == "SUCCESS", (
        f"daily_bid_job ended {daily_run['status']}:\n{served.run_errors(daily_run['runId'])}\n{served.log_tails()}"
    )
    assert {tag["key"]: tag["value"] for tag in daily_run["tags"]}[PARTITION] == days["bid"].isoformat()
    keys = sorted({name for name, _ in CHECKS} | {PUBLISHED})
    nodes = served.graphql(RESULTS, {"keys": [{"path": [name]} for name in keys], "day": days["bid"].isoformat()})
    by_name = {"/".join(node["assetKey"]["path"]): node for node in nodes["assetNodes"]}
    # Every blocking check ran in this run, on this day, and passed: that is what lets the bids be published.
    blocking = [
        (name, check)
        for name, node in by_name.items()
        for check in node["assetChecksOrError"]["checks"]
        if check["blocking"]
    ]
    assert blocking
    for name, check in blocking:
        execution = check["executionForLatestMaterialization"]
        assert execution is not None, f"{name}.{check['name']} did not run"
        assert (execution["runId"], execution["partition"], execution["status"]) == (
            daily_run["runId"],
            days["bid"].isoformat(),
            "SUCCEEDED",
        ), f"{name}.{check['name']}: {execution}"
    (publication,) = by_name[PUBLISHED]["assetMaterializations"]
    assert publication["runId"] == daily_run["runId"]
    (csv_path,) = [entry["path"] for entry in publication["metadataEntries"] if entry["label"] == "ads_editor_csv"]
    assert Path(csv_path).name == f"keyword_bids_{days['bid'] + dt.timedelta(days=1)}.csv"  # bids apply to D+1
    with open(csv_path, newline="") as sheet:
        rows = list(csv.reader(sheet))
    assert rows[0] == list(ADS_EDITOR_COLUMNS) and 0 < len(rows) - 1 <= KEYWORDS


def _listening_inodes(port: int) -> dict[str, str]:
    """The sockets listening on `port`, from /proc/net/tcp and tcp6: inode to local address (hex, as the kernel
    writes it)."""
    listening = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, local_port = fields[1].rsplit(":", 1)
            if int(local_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                listening[fields[9]] = address
    return listening


def _non_loopback_addresses() -> list[str]:
    """This machine's IPv4 addresses outside 127/8, from the kernel's routing table of local addresses."""
    text = Path("/proc/net/fib_trie").read_text()
    return sorted(
        {
            address
            for address in re.findall(r"\|-- (\d+\.\d+\.\d+\.\d+)\n\s+/32 host LOCAL", text)
            if not address.startswith("127.")
        }
    )


def test_the_webserver_listens_on_loopback_only(served):
    listening = _listening_inodes(served.port)
    assert listening, f"nothing listens on port {served.port}"
    assert set(listening.values()) == {"0100007F"}, listening  # 127.0.0.1, little-endian hex; no 0.0.0.0 or ::
    # ...and those sockets are the webserver's own.
    webserver = served.processes["webserver"].pid
    owned = {
        os.readlink(fd).removeprefix("socket:[").removesuffix("]")
        for fd in Path(f"/proc/{webserver}/fd").iterdir()
        if os.readlink(fd).startswith("socket:[")
    }
    assert set(listening) <= owned
    with socket.create_connection(("127.0.0.1", served.port), timeout=5):
        pass
    # The kernel's listening address above is the proof; connecting from this machine's other addresses (where it
    # has any) shows what a neighbour on the network would get.
    for address in _non_loopback_addresses():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, served.port), timeout=5).close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium: Debian package chromium; .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, served):
    context = browser.new_context(viewport={"width": 1920, "height": 1200}, base_url=served.url)
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"served-ui-{name}.png", full_page=True)


def _shown(name: str, labels: str) -> bool:
    """Whether an asset name is among the graph's labels, which the UI shortens in the middle ("validated_…_report")
    when they are long."""
    return name in labels or any(
        name.startswith(head) and name.endswith(tail) for head, tail in re.findall(r"(\w+)…(\w+)", labels)
    )


@needs_chromium
def test_the_asset_graph_page_shows_every_asset(page, served):
    page.goto("/asset-groups")  # the global asset lineage: one box per asset group at first
    page.get_by_text("Global asset lineage").first.wait_for()
    nodes = page.locator("svg foreignObject")
    nodes.first.wait_for()
    page.keyboard.press("Alt+KeyE")  # the graph's shortcut: expand all groups
    page.get_by_text("raw_keyword_report", exact=True).last.wait_for()  # the graph's root, drawn top left
    page.get_by_role("button", name="panel_show_right", exact=True).click()  # hide the asset tree beside the graph
    viewport = page.viewport_size
    for _ in range(8):  # zoom out until every asset's node is on screen (nodes off screen are not drawn at all)
        boxes = [nodes.nth(n).bounding_box() for n in range(nodes.count())]
        drawn = "\n".join(nodes.all_text_contents())
        if all(_shown(name, drawn) for name in ASSET_NAMES) and all(
            0 <= box["x"]
            and box["x"] + box["width"] <= viewport["width"]
            and 0 <= box["y"]
            and box["y"] + box["height"] <= viewport["height"]
            for box in boxes
        ):
            break
        page.get_by_role("button", name="zoom_out", exact=True).click()
        page.wait_for_timeout(300)  # the zoom animates
    page.wait_for_load_state("networkidle")
    _screenshot(page, "asset-graph")
    labels = "\n".join(nodes.all_text_contents())  # SVG elements have no innerText
    assert [name for name in ASSET_NAMES if not _shown(name, labels)] == [], labels
    # The catalog lists them in full.
    page.goto("/assets")
    page.get_by_text(PUBLISHED, exact=True).first.wait_for()
    page.wait_for_load_state("networkidle")
    _screenshot(page, "asset-catalog")
    text = page.inner_text("body")
    assert [name for name in ASSET_NAMES if name not in text] == []


@needs_chromium
def test_the_published_bids_page_shows_its_checks(page, served, daily_run, days):
    page.goto(f"/assets/{PUBLISHED}")
    page.get_by_text("Latest materialization").wait_for()
    page.get_by_text(days["bid"].isoformat()).first.wait_for()  # the partition the daily run published
    page.wait_for_load_state("networkidle")
    _screenshot(page, "published-bids")
    assert PUBLISHED in page.inner_text("body")
    page.get_by_role("tab", name="Checks").click()
    checks = [name for asset, name in CHECKS if asset == PUBLISHED]
    page.get_by_text(f"Checks ({len(checks)})").wait_for()
    page.wait_for_load_state("networkidle")
    _screenshot(page, "published-bids-checks")
    text = page.inner_text("body")
    assert [name for name in checks if name not in text] == []
    # The bids' own checks, which guard the publication, show the daily run's verdicts.
    page.goto("/assets/keyword_bids?view=checks")
    checks = [name for asset, name in CHECKS if asset == "keyword_bids"]
    page.get_by_text(f"Checks ({len(checks)})").wait_for()
    page.get_by_text("Succeeded").first.wait_for()
    page.wait_for_load_state("networkidle")
    _screenshot(page, "keyword-bids-checks")
    text = page.inner_text("body")
    assert [name for name in checks if name not in text] == []


STATS = """query($keys: [AssetKeyInput!]) { assetNodes(assetKeys: $keys) { assetKey { path }
    partitionStats { numMaterialized numPartitions numFailed } } }"""


@needs_chromium
def test_the_first_morning_has_every_history_day_and_a_morning_report_to_read(page, served, daily_run, days):
    """The first morning as a new user finds it: no daily partition missing from the account's first report day on,
    and the morning report of the day, in the UI and as the page to mail."""
    assert daily_run["status"] == "SUCCESS", served.run_errors(daily_run["runId"])
    history = ["raw_keyword_report", "validated_keyword_report", "keyword_features"]
    nodes = served.graphql(STATS, {"keys": [{"path": [name]} for name in history]})["assetNodes"]
    every_day = (days["bid"] - days["first"]).days + 1
    assert {node["assetKey"]["path"][0]: node["partitionStats"] for node in nodes} == {
        name: {"numMaterialized": every_day, "numPartitions": every_day, "numFailed": 0} for name in history
    }
    results = served.graphql(RESULTS, {"keys": [{"path": ["morning_report"]}], "day": days["bid"].isoformat()})
    (report,) = results["assetNodes"][0]["assetMaterializations"]
    assert report["runId"] == daily_run["runId"]  # the daily job's last step
    (html_path,) = [entry["path"] for entry in report["metadataEntries"] if entry["label"] == "report_html"]
    assert f"Morning report: bids for {days['bid'] + dt.timedelta(days=1)}" in Path(html_path).read_text()
    page.goto("/assets/morning_report")
    page.get_by_text("Latest materialization").wait_for()
    page.get_by_text(days["bid"].isoformat()).first.wait_for()
    page.wait_for_load_state("networkidle")
    _screenshot(page, "morning-report")
    assert "morning_report" in page.inner_text("body")
    # The monitoring has nothing to compare yet, and says so where the user looks.
    page.goto("/assets/model_monitoring")
    page.get_by_text("why_empty").first.wait_for()
    page.wait_for_load_state("networkidle")
    _screenshot(page, "model-monitoring")
    assert "Empty: no predictions were made" in page.inner_text("body")
    # The Runs page lists the morning's runs, the daily one among them.
    page.goto("/runs")
    page.get_by_text(daily_run["runId"][:8]).first.wait_for()
    _screenshot(page, "runs")


def test_the_first_morning_finds_every_table_fresh_and_raises_no_alert(served, daily_run, webhook):
    """The freshness sensor, switched on once the day's run is done, as the daemon runs it: every freshness check
    passes. The alert sensors, on all along, have posted nothing for any run of the first morning."""
    assert daily_run["status"] == "SUCCESS", served.run_errors(daily_run["runId"])
    selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}
    started = served.graphql(START_SENSOR, {"selector": {**selector, "sensorName": FRESHNESS_SENSOR}})["startSensor"]
    assert started["__typename"] == "Sensor", started
    deadline = time.monotonic() + RUN_TIMEOUT
    while not (runs := served.graphql(RUNS_OF_SENSOR, {"name": FRESHNESS_SENSOR})["runsOrError"]["results"]):
        assert time.monotonic() < deadline, f"the freshness sensor launched no run\n{served.log_tails()}"
        time.sleep(2)
    freshness_run = served.assert_run_succeeds(runs[0]["runId"], RUN_TIMEOUT)  # the newest first
    for asset, name in sorted(FRESHNESS):
        (execution,) = served.graphql(CHECK_EXECUTIONS, {"key": {"path": [asset]}, "name": name})[
            "assetCheckExecutions"
        ]
        assert execution["status"] == "SUCCEEDED", (asset, name, execution)
    # The alert sensors' first tick after the freshness run ended has seen every run of the morning.
    for sensor in ALERT_SENSORS:
        while True:
            ticks = served.graphql(SENSOR_TICKS, {"selector": {**selector, "sensorName": sensor}})["sensorOrError"]
            latest = ticks["sensorState"]["ticks"]
            if latest and latest[0]["timestamp"] > freshness_run["endTime"]:
                break
            assert time.monotonic() < deadline, f"{sensor} did not tick after the freshness run: {latest}"
            time.sleep(2)
    assert webhook.bodies == []


@needs_chromium
def test_the_history_backfill_page_shows_its_assets_and_days(page, history_backfill):
    backfill, partitions = history_backfill["backfill"], history_backfill["partitions"]
    page.goto(f"/runs/b/{backfill['id']}")
    page.get_by_text(HISTORY[0], exact=True).first.wait_for()
    page.wait_for_load_state("networkidle")
    _screenshot(page, "history-backfill")
    text = page.inner_text("body")
    assert backfill["id"] in text and "Succeeded" in text
    # A row per asset: every day of the range targeted and succeeded, none in progress or failed.
    days = len(partitions)
    for name in HISTORY:
        assert re.search(rf"^{name}\n(?:{name}\n)?100% completed\n{days}\n0\n{days}\n0$", text, re.MULTILINE), (
            name,
            text,
        )
