"""One registry names every table (daily_bids.storage.tables): the assets that write tables are named by it, and it
names nothing that no asset or store writes."""

from assets import ALL_ASSETS
from daily_bids.storage import tables

# Assets that write no table of their own: a chart and MLflow run, and tuning results beside the models.
NOT_TABLES = {"bid_policy_backtest", "model_tuning"}
# Tables no asset materializes: the model IO manager's registry, the Google Ads ledger (written by `published_bids`
# through the Google Ads resource, and by `bids rollback`), and the platform's own state ("_" names).
NOT_ASSETS = {tables.MODEL_REGISTRY, tables.GOOGLE_ADS_BID_CHANGES}


def _registry() -> set[str]:
    return {value for name, value in vars(tables).items() if name.isupper()}


def test_every_table_an_asset_writes_is_named_in_the_registry():
    asset_names = {key.path[-1] for asset in ALL_ASSETS for key in asset.keys}
    assert asset_names - NOT_TABLES <= _registry()


def test_every_product_table_in_the_registry_is_an_asset():
    asset_names = {key.path[-1] for asset in ALL_ASSETS for key in asset.keys}
    products = {name for name in _registry() if not name.startswith("_")} - NOT_ASSETS
    assert products <= asset_names


def test_each_name_is_registered_once():
    values = [value for name, value in vars(tables).items() if name.isupper()]
    assert len(values) == len(set(values))
