"""The ad platform reports come from and bids go to; the embedded default is the simulator."""

import datetime as dt

import dagster as dg
import pandas as pd
from pydantic import PrivateAttr

from daily_bids.simulator import AdMarketSimulator
from resources.warehouse import WarehouseResource

# Where the simulated ad platform keeps the bids published to it: the platform's state, not a product table.
BIDS_IN_FORCE_TABLE = "_ad_platform/bids_in_force"


class SimulatedAdPlatform(dg.ConfigurableResource):
    """The embedded ad platform: serves daily keyword reports and takes published bids.

    The bids published for day D are the ones in force in the report of day D. The loop from bids back to reports
    runs through this resource, so the asset graph stays acyclic.
    """

    warehouse: WarehouseResource
    seed: int = 7
    keywords: int = 2000
    _simulator: AdMarketSimulator | None = PrivateAttr(default=None)

    @property
    def simulator(self) -> AdMarketSimulator:
        if self._simulator is None:
            self._simulator = AdMarketSimulator(seed=self.seed, keywords=self.keywords)
        return self._simulator

    def fetch_report(self, day: dt.date) -> pd.DataFrame:
        store = self.warehouse.warehouse()
        bids = None
        if store.partition_exists(BIDS_IN_FORCE_TABLE, day):
            published = store.read_partitions(BIDS_IN_FORCE_TABLE, [day])
            bids = published.set_index("keyword_id")["bid"]
        return self.simulator.report(day, bids)

    def publish_bids(self, effective_day: dt.date, bids: pd.DataFrame) -> str:
        """Bids (keyword_id, bid) in force from `effective_day`; replaces any published before for that day."""
        store = self.warehouse.warehouse()
        return store.write_partition(BIDS_IN_FORCE_TABLE, effective_day, bids[["keyword_id", "bid"]])
