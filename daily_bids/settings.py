"""Deployment settings: one typed `Settings` object, read once from the `BIDS_*` environment variables.

Every default is the embedded deployment: a local Parquet warehouse, the ad-market simulator as the report source and
a local Dagster instance. The README's table of variables is generated from the fields of `Settings`, so the two
cannot drift. This is the only module that reads the environment: the code location builds its definitions from a
`Settings` (`daily_bids.definitions.build_definitions`), and tests build one from a mapping of their own.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from daily_bids import currency as currencies

ENV_PREFIX = "BIDS_"


@dataclass(frozen=True)
class S3Options:
    """How every S3 client of the platform connects: pyarrow's (the warehouse, the landing zone), and boto3's
    (`botocore_config`) for the bucket check and MLflow's artifacts. The one form of the S3 settings: `Settings.s3`
    builds it from the `BIDS_S3_*` variables, whose defaults are these. Empty keys: the AWS_* variables, a profile or
    an IAM role (the keys only ever come from there; they are fields for tests that pass them explicitly)."""

    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = field(default="", repr=False)  # never in a log line that prints the options
    max_attempts: int = 5
    timeout_seconds: float = 30.0

    def botocore_config(self):
        """The same retries (standard mode: exponential backoff with jitter) and timeouts for a boto3 client."""
        # Imported where used: boto3 is only needed on S3.
        from botocore.config import Config

        # total_max_attempts counts the first attempt, as pyarrow's max_attempts does; botocore's `max_attempts`
        # would count retries only (one attempt more than asked).
        return Config(
            retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
            connect_timeout=self.timeout_seconds,
            read_timeout=self.timeout_seconds,
        )


# The environment `Settings.from_environment` reads: os.environ, or the mapping a caller gave.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("bids_environ", default=None)


def _environ() -> Mapping[str, str]:
    environ = _ENVIRON.get()
    return os.environ if environ is None else environ


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            _renamed(_environ()),
            self.case_sensitive,
            self.env_ignore_empty,
            self.env_parse_none_str,
        )


# Integer settings: their (minimum, maximum), None where unbounded. BIDS_SIM_KEYWORDS's range is the simulator's
# own, checked where the simulator is built (resources.deployment).
INT_RANGES: dict[str, tuple[int | None, int | None]] = {
    "sim_keywords": (None, None),
    "sim_seed": (None, None),
    "s3_max_attempts": (1, 20),
    "model_max_age_days": (1, 365),
    "landing_max_file_mb": (1, 10**7),
    "landing_max_uncompressed_mb": (1, 10**7),
    "landing_max_gzip_ratio": (2, 10**6),
    "landing_settle_seconds": (0, 86_400),
    "google_ads_restatement_days": (0, 90),
    "google_ads_batch_job_threshold": (1, 10**9),
    "min_history_days": (None, None),  # the bid policy's own bounds apply (resources.deployment names the variable)
}
FLOAT_FIELDS = (
    "value_per_click",
    "target_margin",
    "value_quantile",
    "max_bid_change",
    "exploration_share",
    "cold_start_margin",
    "min_bid",
    "max_bid",
    "exploration_spread",
    "max_daily_change",
    "max_share_large_moves",
    "s3_timeout_seconds",
    "decline_margin",
    "losing_spend_warn_share",
    "outlier_factor",
    "max_quarantined_share",
)

# The settings that are one of a few words (a Literal type): what each word names, for the message that refuses
# any other.
CHOICES = {
    "source": "a report source",
    "engine": "an engine",
    "sim_market": "an auction shape",
    "google_ads_publish": "a publishing mode",
}

# Former names of settings, still read: the variable → the setting's field. Setting both names to different values
# is refused, naming both.
DEPRECATED_VARIABLES = {"BIDS_SCORING_ENGINE": "engine"}


# ---- the account's clock: the one place that says what "now" and "yesterday" are in the account's time zone -------
def account_zone(time_zone: str) -> ZoneInfo:
    """The account's time zone (`Settings.time_zone`, `BIDS_TIME_ZONE`)."""
    return ZoneInfo(time_zone)


def account_now(time_zone: str, at: dt.datetime | None = None) -> dt.datetime:
    """The moment `at` (default: now) on the account's clock. `at` must be aware; it is converted, not relabelled."""
    if at is not None and at.tzinfo is None:
        raise ValueError(f"{at!r} has no time zone: which moment it is depends on one")
    zone = account_zone(time_zone)
    return dt.datetime.now(zone) if at is None else at.astimezone(zone)


def account_yesterday(time_zone: str, at: dt.datetime | None = None) -> dt.date:
    """The account's yesterday at `at` (default: now): the last day whose report is complete, the one the daily
    schedule runs for."""
    return account_now(time_zone, at).date() - dt.timedelta(days=1)


def account_time(time_zone: str, day: dt.date, time: dt.time) -> dt.datetime:
    """The moment the account's clock shows `time` on `day` (e.g. 06:00 the morning after a report day)."""
    return dt.datetime.combine(day, time, tzinfo=account_zone(time_zone))


class Settings(BaseSettings):
    """The deployment: every `BIDS_*` variable as a typed, validated field (`BIDS_` + the field's name in capitals).
    A field's default is written as its variable would be set; a wrong value is refused naming the variable."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, validate_default=True, frozen=True)

    warehouse: str = Field(
        "warehouse",
        description=(
            "Where every table is written: a local folder (relative to the working directory) or `s3://bucket/prefix`."
        ),
    )
    first_day: dt.date | None = Field(
        "",
        description=(
            "First day of the daily partitions (YYYY-MM-DD). Partition D is the report of day D; its bids apply to D+1. "
            "Empty: where the account's history starts, found when the definitions load: the earliest report in the "
            "warehouse or, for a landing zone, the earliest day its files cover; before the simulator's first run, the "
            "first day that run fetches (90 days before yesterday)."
        ),
    )
    time_zone: str = Field(
        "UTC",
        description=(
            "The account's time zone (an IANA name, e.g. `America/New_York`, `Europe/Berlin`), the one its reports are "
            "in: partition D is the account's day D, the daily schedule runs at 05:30 there (for the account's "
            "yesterday), and `BIDS_REPORT_DEADLINE` and `BIDS_BIDS_DEADLINE` are read there."
        ),
    )
    source: Literal["simulator", "landing", "google_ads"] = Field(
        "simulator",
        description=(
            "Where keyword reports come from: `simulator` (the embedded ad market), `landing` (exported files in a "
            "folder) or `google_ads` (the Google Ads API, which the bids are also published to)."
        ),
    )
    landing_uri: str = Field(
        "landing",
        description=(
            "`landing` source: folder or `s3://bucket/prefix` where report files (CSV, CSV.gz, Parquet, Excel .xlsx) "
            "are dropped."
        ),
    )
    landing_column_map: Annotated[dict[str, str], NoDecode] = Field(
        "",
        description=(
            '`landing` source: extra header → column mappings as JSON, e.g. `{"Impressions (all)": "impressions"}`.'
        ),
    )
    landing_date_format: str = Field(
        "", description="`landing` source: strftime format of the date column, for files whose dates are ambiguous."
    )
    value_per_click: float | None = Field(
        "",
        description=(
            "Value of a click in account currency, for reports without conversion value (e.g. impressions and clicks "
            "only). Empty: such reports get predictions but no bids."
        ),
    )
    bid_policy: str = Field(
        "profit_optimal",
        description=(
            "How bids are chosen: `profit_optimal` (the bid of highest expected profit on the learnt bid landscape; the "
            "fixed margin wherever there is no landscape yet) or `fixed_margin` (value per click × (1 − `BIDS_TARGET_MARGIN`))."
        ),
    )
    target_margin: float | None = Field(
        "0.3",
        description="The fixed margin: the share of the value per click kept where a bid is not priced on the bid "
        "landscape (`fixed_margin`, and every keyword before the landscape has learnt anything).",
    )
    cold_start_margin: float | None = Field(
        "0.5",
        description="The margin of a cold-start keyword (one with fewer than `BIDS_MIN_HISTORY_DAYS` days of history): "
        "wider than the target margin, since less is known of it.",
    )
    min_history_days: int = Field(
        "7",
        description="Days of history (1 to 28) below which a keyword is a cold start and bid with the wider margin.",
    )
    min_bid: float | None = Field(
        "0.05", description="The lowest bid (max CPC) ever set, in account currency: the ad platform's minimum."
    )
    max_bid: float | None = Field(
        "20.0", description="The highest bid (max CPC) ever set, in account currency, whatever a keyword seems worth."
    )
    currency: str = Field(
        "USD",
        description=(
            "The account's currency (ISO 4217 code, e.g. `EUR`, `JPY`): every bid is a whole multiple of its billable "
            "unit in Google Ads (USD 0.01, JPY 1), and bids are written with its decimals. `BIDS_MIN_BID` and "
            "`BIDS_MAX_BID` must be whole multiples of that unit too: set both in the currency (JPY: e.g. 5 and 3000)."
        ),
    )
    value_quantile: float | None = Field(
        "0.1",
        description=(
            "The money rule's conservative value: each bid's expected cost per click stays at or below this quantile of "
            "the keyword's value per click (the posterior of `keyword_value`). Lower is more cautious."
        ),
    )
    max_bid_change: float | None = Field(
        "0.3",
        description="The largest relative change of a bid from the bid in force in one day, under every policy and "
        "from the first publication on (the money rule may still lower a bid further); 0 turns the cap off.",
    )
    exploration_share: float | None = Field(
        "0.1",
        description=(
            "Share of keywords whose bid is moved by up to ±`BIDS_EXPLORATION_SPREAD` each day (within every rule), so "
            "the bid landscape sees bids vary; 0 turns exploration off."
        ),
    )
    exploration_spread: float | None = Field(
        "0.2", description="How far an explored bid moves: a factor within 1 ± this (0.2: ±20%), then every rule."
    )
    max_daily_change: float | None = Field(
        "0.5",
        description="The `bids_move_plausibly` check: a bid that moves by more than this share of the previous bid "
        "counts as a large move.",
    )
    max_share_large_moves: float | None = Field(
        "0.25",
        description="The `bids_move_plausibly` check: above this share of keywords with a large move, the day's bids "
        "are judged implausible and are not published.",
    )
    campaign_budgets: str = Field(
        "",
        description=(
            "Path of a CSV with columns `campaign,budget`: each campaign's daily budget in account currency. "
            "`profit_optimal` keeps each campaign's expected spend within it. Empty: no budgets."
        ),
    )
    engine: Literal["local", "spark"] = Field(
        "local",
        description=(
            "Where every step that has a Spark form runs (today: scoring and bids): `local` (this process, streaming "
            "the features in batches) or `spark` (Spark jobs through dagster-pyspark, started only then). "
            "`BIDS_SCORING_ENGINE`, its former name, is still read but deprecated."
        ),
    )
    spark_master: str = Field(
        "local[*]",
        description=(
            "`spark` engine: the master URL, e.g. `spark://host:7077`; `local[*]` runs Spark in this machine's cores."
        ),
    )
    spark_driver_host: str = Field(
        "127.0.0.1",
        description=(
            "`spark` engine with a cluster master: the address the driver listens on and the executors connect back to. "
            "The default keeps the driver on loopback (a cluster on this machine); for workers on other machines, this "
            "machine's address on their network. A `local` master always binds to 127.0.0.1."
        ),
    )
    sim_keywords: int = Field("2000", description="Simulator: number of keywords in the account (300 to 10,000,000).")
    sim_seed: int = Field("7", description="Simulator: seed. The same seed and bids give the same reports.")
    sim_market: Literal["share_of_bid", "second_price"] = Field(
        "share_of_bid",
        description=(
            "Simulator: the auction shape. `share_of_bid`: the price per click is a share of your own bid. "
            "`second_price`: a generalized second-price auction, like Google's, where the competing bids below yours "
            "set the price."
        ),
    )
    s3_endpoint_url: str = Field(
        S3Options.endpoint_url,
        description=(
            "S3 API endpoint of every `s3://` location (warehouse, landing zone, MLflow artifacts), for S3-compatible "
            "stores (empty: AWS). Credentials: the usual AWS_* variables or an IAM role, never a setting."
        ),
    )
    s3_region: str = Field(S3Options.region, description="Region of the S3 buckets.")
    s3_max_attempts: int = Field(
        str(S3Options.max_attempts),
        description=(
            "Attempts per S3 request, the first included, for every S3 client (warehouse, landing zone, MLflow "
            "artifacts): throttling, 5xx errors and timeouts are retried with exponential backoff (AWS standard retry "
            "mode), then the step fails."
        ),
    )
    s3_timeout_seconds: float = Field(
        f"{S3Options.timeout_seconds:g}",
        description=(
            "Connect and read timeout of every S3 request, in seconds: a request that stalls longer is abandoned and "
            "retried."
        ),
    )
    mlflow_tracking_uri: str = Field(
        "sqlite:///mlflow.db",
        description=(
            "MLflow tracking store for every training run (default: a local SQLite file, artifacts in `mlruns/` beside "
            "it)."
        ),
    )
    mlflow_artifacts: str = Field(
        "",
        description=(
            "Where the MLflow experiment keeps its artifacts (the model bundles): `s3://bucket/prefix` or a folder, set "
            "when the experiment is created. Empty: beside a SQLite store, or where the tracking server decides."
        ),
    )
    model_max_age_days: int = Field(
        "7",
        description=(
            "Freshness window of the models: a model not retrained within this many days is stale, and the automation "
            "retrains it."
        ),
    )
    report_deadline: str = Field(
        "0 6 * * *",
        description=(
            "Cron, read in `BIDS_TIME_ZONE`, by which yesterday's report partition (or a newer one) must be "
            "materialized; later, its freshness check fails. The daily schedule fetches the report at 05:30 there."
        ),
    )
    bids_deadline: str = Field(
        "0 7 * * *",
        description=(
            "Cron, read in `BIDS_TIME_ZONE`, by which yesterday's partition of bids (or a newer one) must be "
            "published; later, its freshness check fails."
        ),
    )
    losing_spend_warn_share: float | None = Field(
        "0.3",
        description=(
            "The `losing_spend` check on `model_monitoring` warns when more than this share of the last 28 days' spend "
            "went to keywords whose realized value per click was below their average cost per click. Chance alone "
            "makes about 0.15 of it look lost, since most keywords convert a few times a month."
        ),
    )
    decline_margin: float | None = Field(
        "0.10",
        description=(
            "How much worse than the champion's holdout deviance the rolling 7-day deviance of clicks may get before the "
            "decline check fails and the automation retrains."
        ),
    )
    alert_webhook: str = Field(
        "",
        description=(
            "URL that failed runs and failed checks are POSTed to as JSON (asset, partition, check, run link). Empty: "
            "alerts are only logged."
        ),
    )
    ui_url: str = Field("http://127.0.0.1:3000", description="Base URL of the Dagster UI, for the run links in alerts.")
    plausible_max: Annotated[dict[str, object], NoDecode] = Field(
        "",
        description=(
            "JSON of report column → the largest value one keyword can plausibly have in a day, overriding the "
            'contract\'s (e.g. `{"conversion_value": 50000}`); rows above it are quarantined as `out_of_range`.'
        ),
    )
    outlier_factor: float | None = Field(
        "5",
        description=(
            "A keyword's daily value above this many times its own total of the previous 28 days (and above the column's "
            "floor) is quarantined as `outlier_vs_history`; 0 turns the rule off."
        ),
    )
    max_quarantined_share: float | None = Field(
        "0.2",
        description=(
            "The `quarantine_stays_small` check on `validated_keyword_report`: above this share of a day's rows "
            "quarantined (rows superseded by a restatement aside), the day is judged broken (columns swapped, a unit "
            "changed) and its bids are not made. From 0 to 1; 1 turns the check off."
        ),
    )
    landing_max_file_mb: int = Field(
        "1024", description="`landing` source: the largest file read, in MB (checked while reading)."
    )
    landing_max_uncompressed_mb: int = Field(
        "4096", description="`landing` source: the most a file may decompress to, in MB (a gzip bomb stops there)."
    )
    landing_max_gzip_ratio: int = Field(
        "100",
        description=(
            "`landing` source: the most a gzip file may inflate, as a multiple of its compressed size, once 16 MB have "
            "come out. Report CSV compresses about 4 to 10 times; a gzip bomb of repeated rows a hundred times or "
            "more, and would otherwise fill a frame up to the decompression limit."
        ),
    )
    landing_settle_seconds: int = Field(
        "60",
        description=(
            "`landing` source: a file modified more recently than this is not read yet (it may still be being written)."
        ),
    )
    google_ads_customer_id: str = Field(
        "",
        description="`google_ads` source: the account's customer ID (`123-456-7890`, or its ten digits). Required there.",
    )
    google_ads_login_customer_id: str = Field(
        "",
        description=(
            "`google_ads` source: the manager account to log in through, when the account is reached through one "
            "(its customer ID). Empty: the client configuration's own `login_customer_id`, if any."
        ),
    )
    google_ads_config: str = Field(
        "",
        description=(
            "`google_ads` source: path of a `google-ads.yaml` holding the developer token and the OAuth or "
            "service-account credentials. Empty: the client library's `GOOGLE_ADS_*` environment variables. Google's "
            "client library reads the credentials; they never reach a log, a run's config or the warehouse."
        ),
    )
    google_ads_restatement_days: int = Field(
        "14",
        description=(
            "`google_ads` source: how many days back the `google_ads_restatement_sensor` compares the stored reports "
            "with Google's totals; a day Google now states differently (conversions arrive days after the click) is "
            "read again, and the features from it on are rebuilt. 0 turns it off."
        ),
    )
    google_ads_batch_job_threshold: int = Field(
        "50000",
        description=(
            "`google_ads` source: a publication of more bid changes than this goes through Google's `BatchJobService` "
            "(one asynchronous job) instead of synchronous requests of 2,000. Dry runs are always synchronous."
        ),
    )
    google_ads_publish: Literal["validate_only", "apply"] = Field(
        "validate_only",
        description=(
            "`google_ads` source: `validate_only` sends each day's bid changes as a dry run (Google checks every one "
            "and applies none; the ledger says which would fail), `apply` makes them live."
        ),
    )

    # ---- validation: every message names the variable, with the value as it was given ----------------------------
    @staticmethod
    def env_name(field_name: str) -> str:
        return f"{ENV_PREFIX}{field_name.upper()}"

    @field_validator("first_day", mode="before")
    @classmethod
    def _date(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dt.date) or value in ("", None):
            return value or None
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ValueError(
                f"{cls.env_name(info.field_name)}={value!r} is not a date of the form YYYY-MM-DD"
            ) from None

    @field_validator("time_zone", mode="before")
    @classmethod
    def _time_zone(cls, value: Any) -> str:
        """An IANA time zone name that the time zone database (the system's, or the tzdata package) knows; not
        `localtime`, which is whatever machine reads it."""
        try:
            if str(value) == "localtime":
                raise ValueError(value)
            account_zone(str(value))
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones, such as `America`
            raise ValueError(
                f"BIDS_TIME_ZONE={value!r} is not a time zone: use an IANA name such as America/New_York, "
                "Europe/Berlin or UTC"
            ) from None
        return str(value)

    @field_validator(*INT_RANGES, mode="before")
    @classmethod
    def _whole_number(cls, value: Any, info: ValidationInfo) -> int:
        raw, name = str(value), cls.env_name(info.field_name)
        if isinstance(value, bool) or (not isinstance(value, int) and not isinstance(value, str)):
            raise ValueError(f"{name}={raw!r} is not a whole number")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a whole number") from None
        minimum, maximum = INT_RANGES[info.field_name]
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise ValueError(f"{name}={raw!r} is outside {minimum:,} to {maximum:,}")
        return number

    @field_validator(*FLOAT_FIELDS, mode="before")
    @classmethod
    def _finite_number(cls, value: Any, info: ValidationInfo) -> float | None:
        """A finite number, or None when empty; inf and nan are refused (they would reach every bid)."""
        raw, name = "" if value is None else str(value), cls.env_name(info.field_name)
        if raw == "":
            number = None
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name}={raw!r} is not a number") from None
            if not math.isfinite(number):
                raise ValueError(f"{name}={raw!r} is not a finite number")
        if info.field_name == "s3_timeout_seconds" and (number is None or number <= 0):
            raise ValueError(f"{name}={raw!r} is not a positive number of seconds")
        if info.field_name == "losing_spend_warn_share" and (number is None or not 0 < number <= 1):
            raise ValueError(f"{name}={raw!r} is not a share of spend above 0 and at most 1")
        if info.field_name == "max_quarantined_share" and (number is None or not 0 <= number <= 1):
            raise ValueError(f"{name}={raw!r} is not a share of rows from 0 to 1")
        return number

    @field_validator("landing_column_map", mode="before")
    @classmethod
    def _column_map(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            mapping = json.loads(value) if value else {}
        except json.JSONDecodeError as error:
            raise ValueError(f"BIDS_LANDING_COLUMN_MAP is not JSON ({error}): {value!r}") from None
        if not isinstance(mapping, dict):
            raise ValueError(f"BIDS_LANDING_COLUMN_MAP must be a JSON object of header → column, got {value!r}")
        return mapping

    @field_validator("plausible_max", mode="before")
    @classmethod
    def _plausible_max(cls, value: Any) -> Any:
        """JSON of column → number; which columns and numbers are plausible is the report contract's to say
        (`assets.reports.plausibility`)."""
        if not isinstance(value, str):
            return value
        try:
            overrides = json.loads(value) if value else {}
        except json.JSONDecodeError as error:
            raise ValueError(f"BIDS_PLAUSIBLE_MAX={value!r}: {error}") from None
        if not isinstance(overrides, dict):
            raise ValueError(f"BIDS_PLAUSIBLE_MAX={value!r}: expected a JSON object of column → largest value")
        return overrides

    @field_validator(*CHOICES, mode="before")
    @classmethod
    def _one_of(cls, value: Any, info: ValidationInfo) -> Any:
        choices = get_args(cls.model_fields[info.field_name].annotation)
        if value not in choices:
            name = _given_as(info.field_name)
            raise ValueError(f"{name}={value!r} is not {CHOICES[info.field_name]}; use {' or '.join(choices)}")
        return value

    @field_validator("google_ads_customer_id", "google_ads_login_customer_id")
    @classmethod
    def _customer_id(cls, value: str, info: ValidationInfo) -> str:
        """A customer ID as Google shows it (123-456-7890) or as its API takes it (1234567890); kept as given."""
        if value and not re.fullmatch(r"\d{3}-?\d{3}-?\d{4}", value.strip()):
            raise ValueError(
                f"{cls.env_name(info.field_name)}={value!r} is not a Google Ads customer ID (ten digits, as "
                "123-456-7890 or 1234567890)"
            )
        return value.strip()

    @model_validator(mode="after")
    def _google_ads_account(self) -> Settings:
        if self.source == "google_ads" and not self.google_ads_customer_id:
            raise ValueError(
                "BIDS_SOURCE='google_ads' needs BIDS_GOOGLE_ADS_CUSTOMER_ID: the customer ID of the account to bid in"
            )
        return self

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        try:
            return currencies.currency(value).code
        except currencies.UnknownCurrencyError as error:
            raise ValueError(f"BIDS_CURRENCY={value!r} {str(error).split(' ', 1)[1]}") from None

    @field_validator("spark_driver_host")
    @classmethod
    def _driver_host(cls, value: str) -> str:
        if not value:
            raise ValueError("BIDS_SPARK_DRIVER_HOST is empty; unset it to bind the Spark driver to 127.0.0.1")
        return value

    # ---- sources: the environment, or a given mapping, and nothing else ------------------------------------------
    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return init_settings, _EnvironSource(settings_cls)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of `environ` (default: this process's environment). A `BIDS_*` variable that is not a
        setting is refused, naming the closest one: a misspelt variable would otherwise be ignored silently. Any
        invalid value is refused with one line per variable."""
        environ = os.environ if environ is None else environ
        variables = {name: value for name, value in environ.items() if name.startswith(ENV_PREFIX)}
        known = [cls.env_name(name) for name in cls.model_fields]
        unknown = sorted(set(variables) - set(known) - set(DEPRECATED_VARIABLES))
        if unknown:
            raise SettingsError("; ".join(_unknown_variable(name, known) for name in unknown))
        token = _ENVIRON.set(variables)
        try:
            return cls()
        except ValidationError as error:
            raise SettingsError(validation_messages(error)) from None
        finally:
            _ENVIRON.reset(token)

    @classmethod
    def defaults(cls) -> Settings:
        """The embedded deployment: every setting at its default, whatever the environment holds."""
        return cls.from_environment({})

    # ---- what the settings make ----------------------------------------------------------------------------------
    @property
    def s3(self) -> S3Options:
        """The one S3 configuration of every `s3://` location. Credentials are not settings: boto3 and pyarrow find
        them in the AWS_* variables, a profile or an IAM role, so they never reach a config file or a run's config."""
        return S3Options(
            endpoint_url=self.s3_endpoint_url,
            region=self.s3_region,
            max_attempts=self.s3_max_attempts,
            timeout_seconds=self.s3_timeout_seconds,
        )


class SettingsError(ValueError):
    """Settings that cannot be used; the message names each variable at fault."""


def _renamed(variables: Mapping[str, str]) -> dict[str, str]:
    """`variables` with each deprecated name read as its setting's current one. Both names with different values are
    refused: which one was meant cannot be known."""
    variables = dict(variables)
    for old, field_name in DEPRECATED_VARIABLES.items():
        if old not in variables:
            continue
        value, current = variables.pop(old), Settings.env_name(field_name)
        if variables.setdefault(current, value) != value:
            raise SettingsError(
                f"{current}={variables[current]!r} and {old}={value!r} disagree; {old} is the deprecated name of "
                f"{current}: set {current} only"
            )
    return variables


def _given_as(field_name: str) -> str:
    """The variable that set `field_name`: its deprecated name when only that one is set."""
    current, environ = Settings.env_name(field_name), _environ()
    if current not in environ:
        for old, renamed in DEPRECATED_VARIABLES.items():
            if renamed == field_name and old in environ:
                return old
    return current


def _unknown_variable(name: str, known: list[str]) -> str:
    closest = difflib.get_close_matches(name, known, n=1, cutoff=0.0)
    hint = f"; did you mean {closest[0]}?" if closest else ""
    return f"{name} is not a Daily Bids setting{hint} (`python -m daily_bids settings` lists them)"


def validation_messages(error: ValidationError) -> str:
    """One line per invalid field: the validator's own message (which names the variable), else the variable, the
    value and pydantic's reason."""
    lines = []
    for item in error.errors():
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, ValueError):
            lines.append(str(cause))
        else:
            field_name = str(item["loc"][0]) if item["loc"] else ""
            lines.append(f"{Settings.env_name(field_name)}={item.get('input')!r}: {item['msg']}")
    return "; ".join(lines)


def _default_text(field_name: str) -> str:
    default = Settings.model_fields[field_name].default
    return str(default) if default not in (None, "") else "(empty)"


def settings_table_markdown(current: bool = False) -> str:
    """The README's table of environment variables; with `current`, a column of the values in force here (the
    variable's value where it is set, else its default)."""
    fields = Settings.model_fields
    if not current:
        rows = ["| variable | default | meaning |", "|---|---|---|"]
        return "\n".join(
            rows
            + [
                f"| `{Settings.env_name(name)}` | `{_default_text(name)}` | {info.description} |"
                for name, info in fields.items()
            ]
        )
    rows = ["| variable | value here | default | meaning |", "|---|---|---|---|"]
    for name, info in fields.items():
        variable = Settings.env_name(name)
        given = [variable] + [old for old, field_name in DEPRECATED_VARIABLES.items() if field_name == name]
        given = [each for each in given if each in os.environ]
        value = (
            f"`{os.environ[given[0]]}` (set{'' if given[0] == variable else ' as ' + given[0]})"
            if given
            else "(default)"
        )
        rows.append(f"| `{variable}` | {value} | `{_default_text(name)}` | {info.description} |")
    return "\n".join(rows)
