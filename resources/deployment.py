"""The resource set of a deployment, chosen by `BIDS_*` environment variables.

Everything the variables say is checked here, when the definitions load, so a wrong setting fails in seconds with
the variable's name, not forty seconds into a run with a field's name.
"""

import pydantic
from dagster_aws.s3 import S3Resource

from daily_bids import settings
from daily_bids.simulator import MAX_KEYWORDS, MIN_KEYWORDS
from daily_bids.warehouse import Warehouse
from resources.ad_platform import LandingZoneSource, ReportSource, SimulatedAdPlatform, parse_column_map
from resources.bid_policy import BidPolicyResource
from resources.io_managers import ModelIOManager, WarehouseIOManager
from resources.tracking import ExperimentTracker
from resources.warehouse import WarehouseResource


def build_resources() -> dict[str, object]:
    """The resources of this deployment, from the `BIDS_*` environment variables (see the README)."""
    s3 = S3Resource(endpoint_url=settings.S3_ENDPOINT_URL.read() or None, region_name=settings.S3_REGION.read())
    warehouse = WarehouseResource(uri=settings.WAREHOUSE.read(), s3=s3)
    if not warehouse.uri.startswith("s3://"):
        _require_writable(warehouse.uri)
    try:
        bid_policy = BidPolicyResource(value_per_click=settings.float_setting(settings.VALUE_PER_CLICK))
    except pydantic.ValidationError as error:
        problems = "; ".join(e["msg"] for e in error.errors())
        raise ValueError(f"{settings.VALUE_PER_CLICK.env_var}={settings.VALUE_PER_CLICK.read()!r}: {problems}") from None
    return {
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
        "model_io_manager": ModelIOManager(warehouse=warehouse),
        "ad_platform": _report_source(warehouse, s3),
        "bid_policy": bid_policy,
        "tracker": ExperimentTracker(tracking_uri=settings.MLFLOW_TRACKING_URI.read()),
    }


def _require_writable(uri: str) -> None:
    """A local warehouse folder must exist or be creatable, and take a file."""
    store = Warehouse(uri)
    try:
        store.write_bytes(".write_probe", b"")
        store.fs.delete_file(store.path(".write_probe"))
    except OSError as error:
        raise ValueError(f"{settings.WAREHOUSE.env_var}={uri!r}: the warehouse folder is not writable ({error})") from None


def _report_source(warehouse: WarehouseResource, s3: S3Resource) -> ReportSource:
    source = settings.SOURCE.read()
    if source == "simulator":
        return SimulatedAdPlatform(
            warehouse=warehouse,
            seed=settings.int_setting(settings.SIM_SEED),
            keywords=settings.int_setting(settings.SIM_KEYWORDS, MIN_KEYWORDS, MAX_KEYWORDS),
        )
    if source == "landing":
        return LandingZoneSource(
            uri=settings.LANDING_URI.read(),
            warehouse=warehouse,
            s3=s3,
            column_map=parse_column_map(settings.LANDING_COLUMN_MAP.read()),
            date_format=settings.LANDING_DATE_FORMAT.read(),
            max_file_mb=settings.int_setting(settings.LANDING_MAX_FILE_MB, 1, 10**7),
            max_uncompressed_mb=settings.int_setting(settings.LANDING_MAX_UNCOMPRESSED_MB, 1, 10**7),
            settle_seconds=settings.int_setting(settings.LANDING_SETTLE_SECONDS, 0, 86_400),
        )
    raise ValueError(f"{settings.SOURCE.env_var}={source!r} is not a report source; use simulator or landing")
