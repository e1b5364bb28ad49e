import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "adwords_keywords.csv.gz"


def materialize_range(assets, start: dt.date, end: dt.date, resources, **kwargs) -> dg.ExecuteInProcessResult:
    """One run over a partition range, as a single-run backfill does it."""
    return dg.materialize(
        assets,
        resources=resources,
        tags={ASSET_PARTITION_RANGE_START_TAG: start.isoformat(), ASSET_PARTITION_RANGE_END_TAG: end.isoformat()},
        **kwargs,
    )


@pytest.fixture(autouse=True, scope="session")
def mlflow_store(tmp_path_factory):
    """Every test tracks its training runs in a throw-away MLflow store, never in the repository's."""
    with pytest.MonkeyPatch.context() as env:
        store = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
        env.setenv("BIDS_MLFLOW_TRACKING_URI", f"sqlite:///{store}")
        yield store
