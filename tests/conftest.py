import datetime as dt
import os
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from daily_bids.features import roll
from daily_bids.model import TrainingParameters, train, training_frame
from daily_bids.simulator import AdMarketSimulator
from assets import ALL_ASSETS, ALL_CHECKS, DAILY_ASSETS, HISTORY_ASSETS, MODEL_ASSETS
from resources import build_resources

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "adwords_keywords.csv.gz"


def deployment_env(folder: Path, instance_config: str = "dagster.yaml", **settings: str) -> dict[str, str]:
    """The environment of a deployment of its own under `folder`, for the CLI, the webserver or the daemon: a
    DAGSTER_HOME with the platform's `instance_config` as its dagster.yaml, the warehouse and MLflow's store beside
    it, then `settings`. No BIDS_*, AWS_* or MLFLOW_* variable of the shell running the tests leaks in."""
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "platform" / instance_config, home / "dagster.yaml")
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(("BIDS_", "AWS_", "MLFLOW_"))}
    return {**inherited, "DAGSTER_HOME": str(home), "BIDS_WAREHOUSE": str(folder / "warehouse"),
            "BIDS_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", **settings}


def materialize_range(assets, start: dt.date, end: dt.date, resources, **kwargs) -> dg.ExecuteInProcessResult:
    """One run over a partition range, as a single-run backfill does it."""
    return dg.materialize(
        assets,
        resources=resources,
        tags={ASSET_PARTITION_RANGE_START_TAG: start.isoformat(), ASSET_PARTITION_RANGE_END_TAG: end.isoformat()},
        **kwargs,
    )


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups to schedule by
def pytest_collection_modifyitems(config, items):
    """`make test` runs two pytest-xdist workers (`--dist loadgroup`). Each test module runs on one worker, so its
    module fixtures (servers, accounts, runs) are set up once; the modules that use the session's whole-graph
    fixture share one worker, so that graph is built once."""
    if not config.pluginmanager.hasplugin("xdist"):  # run with -p no:xdist: the marker would be unknown
        return
    graph_modules = {item.module.__name__ for item in items if "graph" in item.fixturenames}
    for item in items:
        module = item.module.__name__
        item.add_marker(pytest.mark.xdist_group("graph" if module in graph_modules else module))


def pytest_collection_finish(session):
    """On an xdist worker with `--dist loadgroup`, xdist suffixes each node id with its group, and the controller
    schedules by that suffix. Without it every test is a group of its own, and each module's fixtures are built
    again on the other worker (seen with pytest 9.2 and xdist 3.8: the suite took twice as long)."""
    if getattr(session.config.option, "loadgroup", False) and session.items and "@" not in session.items[0].nodeid:
        raise pytest.UsageError("pytest-xdist did not group the tests (--dist loadgroup): the installed pytest and "
                                "pytest-xdist do not work together; see the pin in pyproject.toml")


@pytest.fixture
def landing(tmp_path, monkeypatch):
    """A landing-zone deployment: its folder, with the warehouse beside it."""
    folder = tmp_path / "landing"
    folder.mkdir()
    monkeypatch.setenv("BIDS_SOURCE", "landing")
    monkeypatch.setenv("BIDS_LANDING_URI", str(folder))
    monkeypatch.setenv("BIDS_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("BIDS_LANDING_SETTLE_SECONDS", "0")  # the tests' files are complete when written
    return folder


@pytest.fixture(autouse=True, scope="session")
def mlflow_store(tmp_path_factory):
    """Every test tracks its training runs in a throw-away MLflow store, never in the repository's."""
    with pytest.MonkeyPatch.context() as env:
        store = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
        env.setenv("BIDS_MLFLOW_TRACKING_URI", f"sqlite:///{store}")
        yield store


HISTORY_START, HISTORY_END = dt.date(2025, 1, 1), dt.date(2025, 2, 14)
BID_DAYS = [dt.date(2025, 2, 15), dt.date(2025, 2, 16), dt.date(2025, 2, 17)]
WINDOW = {"train_through": "2025-02-14"}  # candidates train through 2025-02-07; the last 7 days are the holdout
TRAINING = {
    "keyword_clusters": {"config": {**WINDOW, "profile_days": 28}},
    "xgboost_model": {"config": {**WINDOW, "training_days": 21, "validation_days": 4}},
    "deep_model": {"config": {**WINDOW, "training_days": 21, "validation_days": 4, "epochs": 20}},
}


@pytest.fixture(scope="session")
def graph(tmp_path_factory):
    """History backfilled in one run; clusters, both candidates and the champion gate; then the daily bid job for
    three consecutive days."""
    root = tmp_path_factory.mktemp("graph") / "warehouse"
    with pytest.MonkeyPatch.context() as env:  # the deployment's settings are read when resources are built
        env.setenv("BIDS_WAREHOUSE", str(root))
        env.setenv("BIDS_SIM_KEYWORDS", "300")
        env.setenv("BIDS_SIM_SEED", "11")
        resources = build_resources()
    instance = dg.DagsterInstance.ephemeral()
    history = materialize_range([*ALL_ASSETS, *ALL_CHECKS], HISTORY_START, HISTORY_END, resources, instance=instance,
                                selection=HISTORY_ASSETS)
    training = dg.materialize(
        [*MODEL_ASSETS, *DAILY_ASSETS], selection=MODEL_ASSETS, resources=resources, instance=instance,
        run_config={"ops": TRAINING},
    )
    daily = [
        dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=DAILY_ASSETS, resources=resources, instance=instance,
                       partition_key=day.isoformat())
        for day in BID_DAYS
    ]
    return {"root": root, "resources": resources, "instance": instance, "history": history,
            "training": training, "daily": daily, "store": resources["warehouse"].warehouse()}


START, HISTORY_DAYS, VARIED_DAYS = dt.date(2025, 1, 1), 84, 14


@pytest.fixture(scope="session")
def account():
    """600 keywords: 70 days at the advertiser's manual bids, then two weeks in which the advertiser moved them by up
    to ±20% each week (the variation a landscape can learn from); an XGBoost champion trained on the last 42 days.
    Returns (simulator, reports by day, model, features by day)."""
    simulator = AdMarketSimulator(seed=7, keywords=600)
    reports = simulator.reports_with_varied_bids(START, HISTORY_DAYS, VARIED_DAYS)
    features = {day: frame for day, frame, _ in roll(sorted(reports)[28:], reports.get, history_start=START)}
    days = sorted(features)[-43:-1]
    frame = training_frame(pd.concat([features[d] for d in days]),
                           pd.concat([reports[d + dt.timedelta(days=1)] for d in days]))
    model = train(frame, days[-1], TrainingParameters(training_days=42), log=lambda message: None)
    return simulator, reports, model, features
