"""Where keyword reports come from and where bids go: the embedded simulator, or a landing zone of exported files."""

import datetime as dt
from collections.abc import Callable

import dagster as dg
import pandas as pd
import pyarrow.fs as pafs
from pydantic import Field, PrivateAttr

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
from daily_bids.simulator.market import AdMarketSimulator
from daily_bids.storage import tables
from daily_bids.storage.warehouse import filesystem_for
from resources.warehouse import BoundedS3Resource, WarehouseResource, s3_options

# The simulated platform's own state (the bids published to it), kept beside the product tables.
# What the landing source has seen: one row per (file, day) with the file's size and mtime.


class ReportSource(dg.ConfigurableResource):
    """Delivers raw keyword reports (contract columns plus source_file, source_row and parse_errors)."""

    def fetch_reports(self, days: list[dt.date], log: Callable[[str], None]) -> pd.DataFrame:
        raise NotImplementedError

    def identity(self) -> dict[str, object]:
        """Which account's reports this source delivers; the warehouse records it and refuses any other."""
        raise NotImplementedError

    def covered_days(self) -> list[dt.date] | None:
        """The days this source has reports for, or None when it can produce any day's (the simulator)."""
        raise NotImplementedError

    def where(self) -> str:
        """Where the reports come from, for messages."""
        raise NotImplementedError

    def unsettled_files(self) -> list[str]:
        """Files that are not read yet because they may still be being written."""
        return []

    def claim_warehouse(self, warehouse: WarehouseResource) -> None:
        warehouse.warehouse().claim_for_source(self.identity(), "BIDS_SOURCE, BIDS_SIM_SEED, BIDS_LANDING_URI")

    def publish_bids(self, effective_day: dt.date, bids: pd.DataFrame) -> str | None:
        """Hand bids to the ad platform; returns where they went, or None where the Ads Editor CSV is the hand-off."""
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

    def fetch_report(self, day: dt.date) -> pd.DataFrame:
        store = self.warehouse.warehouse()
        bids = None
        if store.partition_exists(tables.BIDS_IN_FORCE, day):
            bids = store.read_partitions(tables.BIDS_IN_FORCE, [day]).set_index("keyword_id")["bid"]
        report = self.simulator.report(day, bids)
        return report.assign(
            source_file=f"simulator:seed={self.seed}", source_row=range(1, len(report) + 1), parse_errors=pd.NA
        )

    def identity(self):
        return {"source": "simulator", "seed": self.seed}

    def covered_days(self):
        return None

    def where(self):
        return f"the simulator (seed {self.seed})"

    def fetch_reports(self, days, log):
        self.claim_warehouse(self.warehouse)
        reports = []
        log_every = max(1, len(days) // 10)  # about ten progress lines however long the range
        for number, day in enumerate(days, start=1):
            reports.append(self.fetch_report(day))
            if number % log_every == 0 or number == len(days):
                log(f"fetched report {number}/{len(days)}: {day} ({len(reports[-1]):,} rows)")
        return conform_raw(pd.concat(reports, ignore_index=True))

    def publish_bids(self, effective_day, bids):
        store = self.warehouse.warehouse()
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

    def read_file(self, path: str) -> pd.DataFrame:
        filesystem, _ = self._filesystem()
        limits = ReadLimits(self.max_file_mb * MB, self.max_uncompressed_mb * MB, self.max_gzip_ratio)
        return read_landing_file(filesystem, path, self.column_map, self.date_format or None, limits)

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
            rows = self.read_file(path)
            parts.append(rows[rows["date"].isin(wanted)])
            log(f"read {number}/{len(paths)}: {path} ({len(parts[-1]):,} rows in range)")
        return conform_raw(pd.concat(parts, ignore_index=True)) if parts else empty_raw()

    def publish_bids(self, effective_day, bids):
        return None  # exported reports have no API to push to: the Ads Editor CSV is what the user uploads
