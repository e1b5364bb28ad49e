"""Fixtures every lane shares, and the lanes themselves.

The suite has three lanes, one folder and one marker each: `unit` (domain code, no Dagster runs), `graph` (the asset
graph run in process) and `e2e` (the CLI, servers and the browser). `make check` runs the unit lane; `make test` runs
all three on two workers with `--dist loadfile`: a module's tests run on one worker, so an expensive fixture is built
once where it has one home (every test of the session's `graph` lives in tests/graph/test_daily_graph.py).
"""

import datetime as dt
import shutil

import dagster as dg
import pandas as pd
import pytest

from assets import ALL_ASSETS, ALL_CHECKS, DAILY_ASSETS, HISTORY_ASSETS, MODEL_ASSETS
from daily_bids.features.keyword_features import roll
from daily_bids.models.xgboost_model import TrainingParameters, train, training_frame
from daily_bids.settings import Settings
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage.warehouse import Warehouse
from resources import build_resources
from support.deployment import materialize_range
from support.scenarios import BID_DAYS, HISTORY_DAYS, HISTORY_END, HISTORY_START, START, TRAINING, VARIED_DAYS

LANES = ("unit", "graph", "e2e")


def pytest_collection_modifyitems(config, items):
    """Each test carries its lane's marker, from the folder it is in."""
    for item in items:
        lane = item.path.relative_to(config.rootpath / "tests").parts[0]
        if lane not in LANES:
            raise pytest.UsageError(f"{item.nodeid}: every test lives in a lane folder, one of {LANES}")
        item.add_marker(getattr(pytest.mark, lane))


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


@pytest.fixture(scope="session")
def graph(tmp_path_factory):
    """History backfilled in one run; clusters, both candidates and the champion gate; then the daily bid job for
    three consecutive days."""
    root = tmp_path_factory.mktemp("graph") / "warehouse"
    resources = build_resources(Settings(warehouse=str(root), sim_keywords=300, sim_seed=11))
    instance = dg.DagsterInstance.ephemeral()
    history = materialize_range(
        [*ALL_ASSETS, *ALL_CHECKS], HISTORY_START, HISTORY_END, resources, instance=instance, selection=HISTORY_ASSETS
    )
    training = dg.materialize(
        [*MODEL_ASSETS, *DAILY_ASSETS],
        selection=MODEL_ASSETS,
        resources=resources,
        instance=instance,
        run_config={"ops": TRAINING},
    )
    daily = [
        dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            selection=DAILY_ASSETS,
            resources=resources,
            instance=instance,
            partition_key=day.isoformat(),
        )
        for day in BID_DAYS
    ]
    return {
        "root": root,
        "resources": resources,
        "instance": instance,
        "history": history,
        "training": training,
        "daily": daily,
        "store": resources["warehouse"].warehouse(),
    }


@pytest.fixture()
def warehouse_copy(graph, tmp_path) -> Warehouse:
    """A copy of the whole-graph warehouse, so that what a test writes stays its own."""
    shutil.copytree(graph["root"], tmp_path / "warehouse")
    return Warehouse(str(tmp_path / "warehouse"))


@pytest.fixture(scope="session")
def account():
    """600 keywords: 70 days at the advertiser's manual bids, then two weeks in which the advertiser moved them by up
    to ±20% each week (the variation a landscape can learn from); an XGBoost champion trained on the last 42 days.
    Returns (simulator, reports by day, model, features by day)."""
    simulator = AdMarketSimulator(seed=7, keywords=600)
    reports = simulator.reports_with_varied_bids(START, HISTORY_DAYS, VARIED_DAYS)
    features = {day: frame for day, frame, _ in roll(sorted(reports)[28:], reports.get, history_start=START)}
    days = sorted(features)[-43:-1]
    frame = training_frame(
        pd.concat([features[d] for d in days]), pd.concat([reports[d + dt.timedelta(days=1)] for d in days])
    )
    model = train(frame, days[-1], TrainingParameters(training_days=42), log=lambda message: None)
    return simulator, reports, model, features
