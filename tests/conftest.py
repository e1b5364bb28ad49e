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


@pytest.fixture
def small_account(tmp_path, monkeypatch):
    """Environment of a deployment with a 300-keyword simulated account and a warehouse in a temp dir."""
    monkeypatch.setenv("BIDS_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("BIDS_SIM_KEYWORDS", "300")
    monkeypatch.setenv("BIDS_SIM_SEED", "11")
    return tmp_path / "warehouse"
