"""Where keyword reports come from and where bids go: the embedded simulator, or a landing zone of exported files."""

import datetime as dt
from collections.abc import Callable, Iterator

import dagster as dg
import pandas as pd
import pyarrow.fs as pafs
from pydantic import Field, PrivateAttr

from daily_bids.currency import currency as currency_of
from daily_bids.google_ads import bids as google_ads_bids
from daily_bids.google_ads.bids import BATCH_JOB_THRESHOLD, GoogleAdsPublishError, Publication
from daily_bids.google_ads.reports import (
    REPORT_TOTAL_COLUMNS,
    AccountSettings,
    day_totals,
    plain_customer_id,
    read_account_settings,
    read_active_days,
    read_day_totals,
    read_keyword_report,
    restated_days,
)
from daily_bids.ingest.landing import (
    MB,
    ReadLimits,
    covered_days,
    files_covering,
    read_landing_file,
    refresh_index,
    unreadable_files,
    unsettled_files,
)
from daily_bids.schema import conform_raw, empty_raw
from daily_bids.settings import account_yesterday
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage import tables
from daily_bids.storage.warehouse import ROW_GROUP_ROWS, filesystem_for
from resources.warehouse import BoundedS3Resource, WarehouseResource, s3_options

# Rows of a simulated report made at a time: the warehouse's row group.
REPORT_PIECE_ROWS = ROW_GROUP_ROWS
# How far back the Google Ads API is asked for reports, at most: a first run fetches far less (`plan_history`).
ACCOUNT_HISTORY_DAYS = 3 * 365


class ReportSource(dg.ConfigurableResource):
    """Delivers raw keyword reports (contract columns plus source_file, source_row and parse_errors)."""

    def fetch_reports(self, days: list[dt.date], log: Callable[[str], None]) -> pd.DataFrame:
        raise NotImplementedError

    def report_pieces(self, days: list[dt.date], log: Callable[[str], None]) -> Iterator[pd.DataFrame]:
        """The reports of `days` in pieces, each in the raw contract's columns, in the order their rows come. A source
        that can make a large day a piece at a time says so here; by default, `fetch_reports` in one piece."""
        yield self.fetch_reports(days, log)

    def identity(self) -> dict[str, object]:
        """Which account's reports this source delivers; the warehouse records it and refuses any other."""
        raise NotImplementedError

    def covered_days(self) -> list[dt.date] | None:
        """The days this source has reports for, or None when it can produce any day's (the simulator)."""
        raise NotImplementedError

    def where(self) -> str:
        """Where the reports come from, for messages."""
        raise NotImplementedError

    @property
    def dry_run(self) -> bool:
        """Whether a hand-off only rehearses the publication (the ad platform applies nothing): such a day does not
        count as published, so turning publishing on publishes it."""
        return False

    def unsettled_files(self) -> list[str]:
        """Files that are not read yet because they may still be being written."""
        return []

    def claim_warehouse(self, warehouse: WarehouseResource) -> None:
        warehouse.warehouse().claim_for_source(self.identity(), "BIDS_SOURCE, BIDS_SIM_SEED, BIDS_LANDING_URI")

    def publish_bids(self, day: dt.date, bids: pd.DataFrame, run_id: str, log: Callable[[str], None]) -> str | None:
        """Hand the bids of partition `day` (in force from the day after) to the ad platform; returns what was done,
        or None where the Ads Editor CSV is the hand-off. `bids` has `keyword_id`, `bid`, and where the report had
        them `ad_group_id` and `criterion_id`."""
        raise NotImplementedError


class SimulatedAdPlatform(ReportSource):
    """The embedded ad platform: serves daily keyword reports and takes published bids.

    The bids published for day D are the ones in force in the report of day D. The loop from bids back to reports
    runs through this resource, so the asset graph stays acyclic.
    """

    warehouse: WarehouseResource
    seed: int = 7
    keywords: int = 2000
    market: str = Field(
        "share_of_bid",
        description="The auction shape the simulated market plays, one of daily_bids.simulator.auctions.MARKETS.",
    )
    demand_shocks: dict[str, float] = Field(
        default_factory=dict,
        description="What-if: multiply search volume from a day on, e.g. {'2025-03-01': 3.0}; "
        "a factor of 0 gives a day without report rows.",
    )
    _simulator: AdMarketSimulator | None = PrivateAttr(default=None)

    @property
    def simulator(self) -> AdMarketSimulator:
        if self._simulator is None:
            shocks = {dt.date.fromisoformat(day): factor for day, factor in self.demand_shocks.items()}
            self._simulator = AdMarketSimulator(
                seed=self.seed, keywords=self.keywords, demand_shocks=shocks, market=self.market
            )
        return self._simulator

    def day_pieces(self, day: dt.date) -> Iterator[pd.DataFrame]:
        """The report of `day` as the simulator makes it, a piece of `REPORT_PIECE_ROWS` rows at a time, played
        against the bids in force that day (`publish_bids`)."""
        store = self.warehouse.warehouse()
        bids = None
        if store.partition_exists(tables.BIDS_IN_FORCE, day):
            bids = store.read_partitions(tables.BIDS_IN_FORCE, [day]).set_index("keyword_id")["bid"]
        first_row = 1
        for piece in self.simulator.report_pieces(day, bids, REPORT_PIECE_ROWS):
            rows = range(first_row, first_row + len(piece))
            yield conform_raw(
                piece.assign(source_file=f"simulator:seed={self.seed}", source_row=rows, parse_errors=pd.NA)
            )
            first_row += len(piece)

    def identity(self):
        return {"source": "simulator", "seed": self.seed}

    def covered_days(self):
        return None

    def where(self):
        return f"the simulator (seed {self.seed})"

    def fetch_reports(self, days, log):
        return conform_raw(pd.concat(self.report_pieces(days, log), ignore_index=True))

    def report_pieces(self, days, log):
        self.claim_warehouse(self.warehouse)
        log_every = max(1, len(days) // 10)  # about ten progress lines however long the range
        for number, day in enumerate(days, start=1):
            rows = 0
            for piece in self.day_pieces(day):
                rows += len(piece)
                yield piece
            if number % log_every == 0 or number == len(days):
                log(f"fetched report {number}/{len(days)}: {day} ({rows:,} rows)")

    def publish_bids(self, day, bids, run_id, log):
        store = self.warehouse.warehouse()
        effective_day = day + dt.timedelta(days=1)
        return store.write_partition(tables.BIDS_IN_FORCE, effective_day, bids[["keyword_id", "bid"]])


class LandingZoneSource(ReportSource):
    """Reports exported by the user and dropped into a folder or S3 prefix. Files are only read, never changed."""

    uri: str = Field(description="Folder or s3://bucket/prefix to read report files from.")
    warehouse: WarehouseResource
    s3: BoundedS3Resource = BoundedS3Resource()
    column_map: dict[str, str] = Field(
        default_factory=dict,
        description="Extra header → contract column mappings, e.g. {'Impressions (all)': 'impressions'}.",
    )
    date_format: str = Field("", description="strftime format of the date column, where a file's dates are ambiguous.")
    max_file_mb: int = Field(1024, gt=0, description="The largest landing file read, in MB.")
    max_uncompressed_mb: int = Field(4096, gt=0, description="The most a landing file may decompress to, in MB.")
    max_gzip_ratio: int = Field(100, ge=2, description="The most a gzip file may inflate, as a multiple of its size.")
    settle_seconds: float = Field(60.0, ge=0, description="Files modified more recently than this are not read yet.")

    _location: tuple | None = PrivateAttr(default=None)

    def _filesystem(self):
        """(filesystem, root) of the landing zone, opened once per resource."""
        if self._location is None:
            self._location = filesystem_for(self.uri, s3_options(self.s3))
        return self._location

    def read_file(self, path: str, log: Callable[[str], None] | None = None) -> pd.DataFrame:
        filesystem, _ = self._filesystem()
        limits = ReadLimits(self.max_file_mb * MB, self.max_uncompressed_mb * MB, self.max_gzip_ratio)
        return read_landing_file(filesystem, path, self.column_map, self.date_format or None, limits, log=log)

    def identity(self):
        filesystem, root = self._filesystem()
        return {"source": "landing", "uri": root if isinstance(filesystem, pafs.LocalFileSystem) else f"s3://{root}"}

    def covered_days(self):
        index, _ = self.refresh_index()
        return covered_days(index)

    def where(self):
        return f"the landing zone {self.uri}"

    def unsettled_files(self):
        filesystem, root = self._filesystem()
        return unsettled_files(filesystem, root, self.settle_seconds)

    def refresh_index(self) -> tuple[pd.DataFrame, list]:
        """The landing index, brought up to date (new and changed files are read once), and the changed files."""
        self.claim_warehouse(self.warehouse)
        filesystem, root = self._filesystem()
        store = self.warehouse.warehouse()
        previous = store.read_table(tables.LANDING_INDEX) if store.table_exists(tables.LANDING_INDEX) else None
        index, changed = refresh_index(filesystem, root, previous, self.read_file, self.settle_seconds)
        if changed or previous is None or len(index) != len(previous):
            store.write_table(tables.LANDING_INDEX, index)
        return index, changed

    def fetch_reports(self, days, log):
        index, _ = self.refresh_index()
        for path, error in unreadable_files(index).items():  # its days are unknown, so it fails none of them
            log(f"not read: {error}")
        paths = files_covering(index, days)
        log(f"{len(paths)} landing file(s) cover {days[0]}...{days[-1]}: {paths[:5]}{' ...' if len(paths) > 5 else ''}")
        wanted = pd.DatetimeIndex([pd.Timestamp(d) for d in days])
        parts = []
        for number, path in enumerate(paths, start=1):
            rows = self.read_file(path, log)
            parts.append(rows[rows["date"].isin(wanted)])
            log(f"read {number}/{len(paths)}: {path} ({len(parts[-1]):,} rows in range)")
        return conform_raw(pd.concat(parts, ignore_index=True)) if parts else empty_raw()

    def publish_bids(self, day, bids, run_id, log):
        return None  # exported reports have no API to push to: the Ads Editor CSV is what the user uploads


class GoogleAdsAccount(ReportSource):
    """A Google Ads account through the Google Ads API: keyword reports in, bid changes out.

    Reports are read with `SearchStream` over `keyword_view` (`daily_bids.google_ads.reports`); bids go out through
    `AdGroupCriterionService` (`daily_bids.google_ads.bids`), as a dry run until publishing is turned on. Every change
    sent, with its outcome, is in the `google_ads_bid_changes` table of the bids' day.

    Credentials are Google's client library's business: a `google-ads.yaml` the user names, or its `GOOGLE_ADS_*`
    environment variables. This resource holds only the file's path, so no secret reaches a run's config or a log."""

    warehouse: WarehouseResource
    customer_id: str = Field(description="The account's customer ID (123-456-7890 or its digits).")
    login_customer_id: str = Field("", description="The manager account to log in through, if any.")
    config_file: str = Field("", description="Path of a google-ads.yaml; empty: the GOOGLE_ADS_* variables.")
    validate_only: bool = Field(True, description="Send bid changes as a dry run: Google checks them, applies none.")
    currency: str = Field("USD", description="The currency the bids are in (BIDS_CURRENCY); the account's must match.")
    time_zone: str = Field("UTC", description="The partitions' time zone (BIDS_TIME_ZONE); the account's must match.")
    batch_job_threshold: int = Field(
        BATCH_JOB_THRESHOLD, ge=1, description="A publication of more changes than this goes through BatchJobService."
    )
    restatement_days: int = Field(
        14, ge=0, description="Days back whose reports are compared with Google's totals, and read again if restated."
    )

    _client: object | None = PrivateAttr(default=None)
    _account: AccountSettings | None = PrivateAttr(default=None)

    def client(self):
        """Google's `GoogleAdsClient`, built once from the configuration file or the environment."""
        if self._client is None:
            from google.ads.googleads.client import GoogleAdsClient
            from google.auth.exceptions import GoogleAuthError

            try:
                self._client = (
                    GoogleAdsClient.load_from_storage(self.config_file)
                    if self.config_file
                    else GoogleAdsClient.load_from_env()
                )
            # The library's own message names the missing key or file, or the token endpoint's refusal.
            except (ValueError, OSError, GoogleAuthError) as error:
                where = (
                    f"the file {self.config_file} (BIDS_GOOGLE_ADS_CONFIG)"
                    if self.config_file
                    else ("the GOOGLE_ADS_* environment variables (or set BIDS_GOOGLE_ADS_CONFIG to a google-ads.yaml)")
                )
                raise GoogleAdsConfigError(
                    f"the Google Ads client could not be configured from {where}: {error}"
                ) from None
        return self._client

    def account(self) -> AccountSettings:
        """The account's currency and time zone, read once; a currency other than the bids', or a time zone other than
        the partitions', is refused."""
        if self._account is None:
            account = read_account_settings(self.client(), self.customer_id, login_customer_id=self._login())
            if account.currency_code != self.currency:
                raise GoogleAdsConfigError(
                    f"Google Ads customer {account.customer_id} is billed in {account.currency_code}, but the bids are "
                    f"in {self.currency}: set BIDS_CURRENCY={account.currency_code}"
                )
            ours = currency_of(self.currency).billable_unit_micros
            if ours % account.billable_unit_micros:
                raise GoogleAdsConfigError(
                    f"Google bills {account.currency_code} in units of {account.billable_unit_micros:,} micros, but "
                    f"Daily Bids' table (daily_bids/currency.py) bids it in steps of {ours:,}: Google would refuse "
                    "the bids. Correct the table's entry."
                )
            if account.time_zone != self.time_zone:
                raise GoogleAdsConfigError(
                    f"Google Ads customer {account.customer_id} reports the days of {account.time_zone}, but the "
                    f"partitions are days of {self.time_zone}: set BIDS_TIME_ZONE={account.time_zone}"
                )
            self._account = account
        return self._account

    @property
    def dry_run(self) -> bool:
        return self.validate_only

    def _publication(self) -> Publication:
        return Publication(
            customer_id=self.customer_id,
            billable_unit_micros=currency_of(self.account().currency_code).billable_unit_micros,
            validate_only=self.validate_only,
            login_customer_id=self._login(),
            batch_job_threshold=self.batch_job_threshold,
        )

    def _login(self) -> str | None:
        return self.login_customer_id or None

    def identity(self):
        return {"source": "google_ads", "customer_id": plain_customer_id(self.customer_id)}

    def where(self):
        return f"Google Ads customer {self.customer_id}"

    def covered_days(self):
        """The account's complete days with traffic, in its own time zone: up to its yesterday."""
        yesterday = account_yesterday(self.account().time_zone)
        return read_active_days(
            self.client(),
            self.customer_id,
            yesterday - dt.timedelta(days=ACCOUNT_HISTORY_DAYS),
            yesterday,
            login_customer_id=self._login(),
        )

    def fetch_reports(self, days, log):
        self.claim_warehouse(self.warehouse)
        account = self.account()
        log(f"reading {len(days)} day(s) of {self.where()} ({account.currency_code}, {account.time_zone})")
        report = read_keyword_report(self.client(), self.customer_id, days, login_customer_id=self._login())
        log(f"read {len(report):,} keyword-day rows from {days[0]} to {days[-1]}")
        return conform_raw(
            report.assign(
                source_file=f"google-ads:customers/{account.customer_id}/keywordView",
                source_row=range(1, len(report) + 1),
                parse_errors=pd.NA,
            )
        )

    def restated_days(self, days: list[dt.date]) -> list[dt.date]:
        """The days among `days` whose report Google now states differently from the stored one (conversions arrive
        for days after the fact): compared by their totals, one small query a day."""
        store = self.warehouse.warehouse()
        stored_days = [day for day in days if store.partition_exists(tables.RAW_REPORT, day)]
        if not stored_days:
            return []
        raw = store.read_partitions(tables.RAW_REPORT, stored_days, list(REPORT_TOTAL_COLUMNS))
        stated = read_day_totals(self.client(), self.customer_id, stored_days, login_customer_id=self._login())
        return restated_days(day_totals(raw, stored_days), stated)

    def publish_bids(self, day, bids, run_id, log):
        store = self.warehouse.warehouse()
        client = self.client()
        publication = self._publication()
        planned = google_ads_bids.plan_changes(
            bids, google_ads_bids.read_account_bids(client, publication), publication
        )
        log(f"{len(planned):,} bid change(s) to send to {self.where()}{' as a dry run' if self.validate_only else ''}")
        ledger = google_ads_bids.send_changes(client, planned, publication, run_id, log)
        google_ads_bids.append_to_ledger(store, day, ledger)
        outcomes = google_ads_bids.ledger_summary(ledger)
        failed = ledger[ledger["outcome"].eq(google_ads_bids.FAILED)]
        if len(failed):
            examples = "; ".join(f"{r.resource_name}: {r.error}" for r in failed.head(5).itertuples())
            raise GoogleAdsPublishError(
                f"{len(failed):,} of {len(ledger):,} bid change(s) to {self.where()} failed ({examples}). The others "
                f"are applied and every one is in {tables.GOOGLE_ADS_BID_CHANGES} for {day}; running the step again "
                "sends only what is missing."
            )
        outcomes_text = ", ".join(f"{count:,} {outcome}" for outcome, count in outcomes.items()) or "no change"
        dry_run = " (a dry run: BIDS_GOOGLE_ADS_PUBLISH=validate_only)" if self.validate_only else ""
        return f"{self.where()}: {outcomes_text}{dry_run}"

    def rollback(self, day: dt.date | None, run_id: str, log: Callable[[str], None]) -> pd.DataFrame:
        """Restores the bids the publication of `day` (None: the newest still live) replaced, where the account still
        holds the bids it set; returns the rollback's ledger rows (also added to the day's ledger). Later
        publications are rolled back first."""
        store = self.warehouse.warehouse()
        self.claim_warehouse(self.warehouse)
        live = google_ads_bids.live_publication_days(store)
        if day is None:
            if not live:
                raise GoogleAdsPublishError(f"no publication to {self.where()} is live: nothing to roll back")
            day = live[-1]
        log(f"rolling back the bids of {day} in {self.where()}")
        if day not in live:
            raise GoogleAdsPublishError(f"no bid change of {day} is live in {self.where()}: nothing to roll back")
        later = [later_day for later_day in live if later_day > day]
        if later:
            raise GoogleAdsPublishError(
                f"the bids of {', '.join(map(str, later))} were published after {day} and are live: roll those back "
                "first, newest first"
            )
        ledger = google_ads_bids.read_ledger(store, day)
        publication = self._publication()
        client = self.client()
        planned = google_ads_bids.plan_rollback(ledger, google_ads_bids.read_account_bids(client, publication))
        done = google_ads_bids.send_changes(client, planned, publication, run_id, log)
        google_ads_bids.append_to_ledger(store, day, done)
        return done


class GoogleAdsConfigError(ValueError):
    """The Google Ads client cannot be built, or the account does not match the deployment's settings."""
