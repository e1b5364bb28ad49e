"""The resource set of a deployment, chosen by `BIDS_*` environment variables."""

from dagster_aws.s3 import S3Resource

from daily_bids import settings
from resources.ad_platform import LandingZoneSource, ReportSource, SimulatedAdPlatform, parse_column_map
from resources.bid_policy import BidPolicyResource
from resources.io_managers import ModelIOManager, WarehouseIOManager
from resources.tracking import ExperimentTracker
from resources.warehouse import WarehouseResource


def build_resources() -> dict[str, object]:
    """The resources of this deployment, from the `BIDS_*` environment variables (see the README)."""
    s3 = S3Resource(endpoint_url=settings.S3_ENDPOINT_URL.read() or None, region_name=settings.S3_REGION.read())
    warehouse = WarehouseResource(uri=settings.WAREHOUSE.read(), s3=s3)
    return {
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
        "model_io_manager": ModelIOManager(warehouse=warehouse),
        "ad_platform": _report_source(warehouse, s3),
        "bid_policy": BidPolicyResource(value_per_click=settings.float_setting(settings.VALUE_PER_CLICK)),
        "tracker": ExperimentTracker(tracking_uri=settings.MLFLOW_TRACKING_URI.read()),
    }


def _report_source(warehouse: WarehouseResource, s3: S3Resource) -> ReportSource:
    source = settings.SOURCE.read()
    if source == "simulator":
        return SimulatedAdPlatform(
            warehouse=warehouse,
            seed=settings.int_setting(settings.SIM_SEED),
            keywords=settings.int_setting(settings.SIM_KEYWORDS),
        )
    if source == "landing":
        return LandingZoneSource(
            uri=settings.LANDING_URI.read(),
            warehouse=warehouse,
            s3=s3,
            column_map=parse_column_map(settings.LANDING_COLUMN_MAP.read()),
            date_format=settings.LANDING_DATE_FORMAT.read(),
        )
    raise ValueError(f"{settings.SOURCE.env_var}={source!r} is not a report source; use simulator or landing")
