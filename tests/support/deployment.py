"""A deployment of the platform for a test: its environment for the CLI and servers, and runs over partition ranges."""

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "adwords_keywords.csv.gz"


def deployment_env(folder: Path, instance_config: str = "dagster.yaml", **settings: str) -> dict[str, str]:
    """The environment of a deployment of its own under `folder`, for the CLI, the webserver or the daemon: a
    DAGSTER_HOME with the platform's `instance_config` as its dagster.yaml, the warehouse and MLflow's store beside
    it, then `settings`. No BIDS_*, AWS_* or MLFLOW_* variable of the shell running the tests leaks in."""
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "platform" / instance_config, home / "dagster.yaml")
    inherited = {name: value for name, value in os.environ.items() if not name.startswith(("BIDS_", "AWS_", "MLFLOW_"))}
    return {
        **inherited,
        "DAGSTER_HOME": str(home),
        "BIDS_WAREHOUSE": str(folder / "warehouse"),
        "BIDS_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        **settings,
    }


def build_definitions(settings) -> dg.Definitions:
    """`daily_bids.definitions.build_definitions(settings)`. Importing that module builds its own `defs`, the
    deployment of this process's environment; the first import here does it with none of the shell's BIDS_*
    variables and a throw-away warehouse, so that it neither fails on them nor writes beside the tests."""
    with pytest.MonkeyPatch.context() as env, tempfile.TemporaryDirectory(prefix="bids-ambient-") as folder:
        for name in [name for name in os.environ if name.startswith("BIDS_")]:
            env.delenv(name)
        env.setenv("BIDS_WAREHOUSE", str(Path(folder) / "warehouse"))
        from daily_bids.definitions import build_definitions as build

    return build(settings)


def materialize_range(assets, start: dt.date, end: dt.date, resources, **kwargs) -> dg.ExecuteInProcessResult:
    """One run over a partition range, as a single-run backfill does it."""
    return dg.materialize(
        assets,
        resources=resources,
        tags={ASSET_PARTITION_RANGE_START_TAG: start.isoformat(), ASSET_PARTITION_RANGE_END_TAG: end.isoformat()},
        **kwargs,
    )
