"""The resource set of a deployment, chosen by `BIDS_*` environment variables.

Everything the variables say is checked here, when the definitions load, so a wrong setting fails in seconds with
the variable's name, not forty seconds into a run with a field's name.
"""

import pydantic

from daily_bids import settings
from daily_bids.bidding.budgets import read_campaign_budgets
from daily_bids.simulator.market import MAX_KEYWORDS, MIN_KEYWORDS
from daily_bids.storage.warehouse import Warehouse
from resources.ad_platform import LandingZoneSource, ReportSource, SimulatedAdPlatform, parse_column_map
from resources.bid_policy import BidPolicyResource
from resources.io_managers import ModelIOManager, WarehouseIOManager
from resources.scoring import ScoringEngineResource
from resources.tracking import ExperimentTracker
from resources.warehouse import BoundedS3Resource, WarehouseResource


def build_resources() -> dict[str, object]:
    """The resources of this deployment, from the `BIDS_*` environment variables (see the README)."""
    warehouse = deployment_warehouse()
    s3 = warehouse.s3
    if not warehouse.uri.startswith("s3://"):
        _require_writable(warehouse.uri)
    bid_policy = _bid_policy()
    return {
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
        "model_io_manager": ModelIOManager(warehouse=warehouse),
        "ad_platform": _report_source(warehouse, s3),
        "bid_policy": bid_policy,
        "tracker": ExperimentTracker(
            tracking_uri=settings.MLFLOW_TRACKING_URI.read(), artifact_location=settings.MLFLOW_ARTIFACTS.read(), s3=s3
        ),
        "scoring": _scoring_engine(),
    }


def deployment_warehouse() -> WarehouseResource:
    """The deployment's warehouse (`BIDS_WAREHOUSE`) with its S3 settings: what the resources and the CLI's reading
    commands open."""
    return WarehouseResource(uri=settings.WAREHOUSE.read(), s3=_s3())


def _s3() -> BoundedS3Resource:
    """The one S3 configuration of every `s3://` location. Credentials are not settings: boto3 and pyarrow find them
    in the AWS_* variables, a profile or an IAM role, so they never reach a config file or a run's recorded config."""
    timeout = settings.float_setting(settings.S3_TIMEOUT_SECONDS)
    if timeout is None or timeout <= 0:
        raise ValueError(
            f"{settings.S3_TIMEOUT_SECONDS.env_var}={settings.S3_TIMEOUT_SECONDS.read()!r} is not a "
            "positive number of seconds"
        )
    return BoundedS3Resource(
        endpoint_url=settings.S3_ENDPOINT_URL.read() or None,
        region_name=settings.S3_REGION.read(),
        max_attempts=settings.int_setting(settings.S3_MAX_ATTEMPTS, 1, 20),
        timeout_seconds=timeout,
    )


def _scoring_engine() -> ScoringEngineResource:
    engine = settings.SCORING_ENGINE.read()
    if engine not in ("local", "spark"):
        raise ValueError(f"{settings.SCORING_ENGINE.env_var}={engine!r} is not a scoring engine; use local or spark")
    driver_host = settings.SPARK_DRIVER_HOST.read()
    if not driver_host:
        raise ValueError(
            f"{settings.SPARK_DRIVER_HOST.env_var} is empty; unset it to bind the Spark driver to 127.0.0.1"
        )
    return ScoringEngineResource(
        engine=engine, spark_master=settings.SPARK_MASTER.read(), spark_driver_host=driver_host
    )


def _bid_policy() -> BidPolicyResource:
    """The bid policy from its settings; an invalid one is refused naming the variable that set it."""
    from_settings = {
        "value_per_click": (settings.VALUE_PER_CLICK, settings.float_setting(settings.VALUE_PER_CLICK)),
        "policy": (settings.BID_POLICY, settings.BID_POLICY.read()),
        "max_bid_change": (settings.MAX_BID_CHANGE, settings.float_setting(settings.MAX_BID_CHANGE)),
        "exploration_share": (settings.EXPLORATION_SHARE, settings.float_setting(settings.EXPLORATION_SHARE)),
    }
    values = {field: value for field, (_, value) in from_settings.items() if value is not None}
    if settings.CAMPAIGN_BUDGETS.read():
        values["campaign_budgets"] = read_campaign_budgets(settings.CAMPAIGN_BUDGETS.read())
    try:
        return BidPolicyResource(**values)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        setting = from_settings[first["loc"][0]][0] if first["loc"] and first["loc"][0] in from_settings else None
        named = f"{setting.env_var}={setting.read()!r}" if setting else "bid policy"
        raise ValueError(f"{named}: {first['msg']}") from None


def _require_writable(uri: str) -> None:
    """A local warehouse folder must exist or be creatable, and take a file."""
    store = Warehouse(uri)
    try:
        store.write_bytes(".write_probe", b"")
        store.fs.delete_file(store.path(".write_probe"))
    except OSError as error:
        raise ValueError(
            f"{settings.WAREHOUSE.env_var}={uri!r}: the warehouse folder is not writable ({error})"
        ) from None


def _report_source(warehouse: WarehouseResource, s3: BoundedS3Resource) -> ReportSource:
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
