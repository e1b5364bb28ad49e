"""The resource set of a deployment, chosen by `BIDS_*` environment variables."""

from dagster_aws.s3 import S3Resource

from daily_bids import settings
from resources.ad_platform import SimulatedAdPlatform
from resources.bid_policy import BidPolicyResource
from resources.io_managers import ModelIOManager, WarehouseIOManager
from resources.warehouse import WarehouseResource


def build_resources() -> dict[str, object]:
    """The resources of this deployment, from the `BIDS_*` environment variables (see the README)."""
    endpoint = settings.S3_ENDPOINT_URL.read()
    warehouse = WarehouseResource(
        uri=settings.WAREHOUSE.read(),
        s3=S3Resource(endpoint_url=endpoint or None, region_name=settings.S3_REGION.read()),
    )
    source = settings.SOURCE.read()
    if source != "simulator":
        raise ValueError(f"{settings.SOURCE.env_var}={source!r} is not a known report source; known: simulator")
    return {
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
        "model_io_manager": ModelIOManager(warehouse=warehouse),
        "ad_platform": SimulatedAdPlatform(
            warehouse=warehouse,
            seed=settings.int_setting(settings.SIM_SEED),
            keywords=settings.int_setting(settings.SIM_KEYWORDS),
        ),
        "bid_policy": BidPolicyResource(),
    }
