"""IO managers over the warehouse: partitioned Parquet tables, and versioned model bundles."""

import datetime as dt
import importlib
import json

import dagster as dg
import pandas as pd

from daily_bids.catalog import MODEL_REGISTRY
from daily_bids.warehouse import Warehouse
from resources.warehouse import WarehouseResource


def _days(partition_keys) -> list[dt.date]:
    return [dt.date.fromisoformat(key) for key in partition_keys]


class WarehouseIOManager(dg.ConfigurableIOManager):
    """DataFrames as Parquet under `<warehouse>/<asset>/date=YYYY-MM-DD/data.parquet`.

    A run over a partition range hands over one frame with a `date` column; it is split into one file per day, and
    every day of the range is written, so a re-run replaces rather than adds. Reading a range that has gaps raises
    an error naming the missing days.
    """

    warehouse: WarehouseResource

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: the warehouse stores DataFrames, got {type(obj)}")
        store = self.warehouse.warehouse()
        table = context.asset_key.path[-1]
        if context.has_asset_partitions:
            days = _days(context.asset_partition_keys)
            store.write_partitions(table, days, obj)
            location = store.display_uri(table)
            context.add_output_metadata({"path": dg.MetadataValue.path(location), "partitions_written": len(days)})
        else:
            store.write_table(table, obj)
            context.add_output_metadata({"path": dg.MetadataValue.path(store.display_uri(table))})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        store = self.warehouse.warehouse()
        table = context.asset_key.path[-1]
        if context.has_asset_partitions:
            return store.read_partitions(table, _days(context.asset_partition_keys))
        return store.read_table(table)


class ModelIOManager(dg.ConfigurableIOManager):
    """Trained models as versioned bundles: `<warehouse>/<asset>/versions/<version>.zip`, plus `current.json`
    pointing at the one downstream assets load. Older versions stay, so any of them can be restored. Every stored
    model also gets a row in `<warehouse>/model_registry` (which feature versions it used, among others)."""

    warehouse: WarehouseResource

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        store = self.warehouse.warehouse()
        table = context.asset_key.path[-1]
        bundle = f"{table}/versions/{obj.version}.zip"
        store.write_bytes(bundle, obj.to_bytes())
        pointer = {"version": obj.version, "bundle": bundle, "class": f"{type(obj).__module__}.{type(obj).__qualname__}"}
        store.write_bytes(f"{table}/current.json", json.dumps(pointer, indent=2).encode())
        entry = {"asset": table, "stored_at": pd.Timestamp.now(tz="UTC").isoformat(), **obj.registry_entry()}
        registry = (store.read_table(MODEL_REGISTRY) if store.table_exists(MODEL_REGISTRY)
                    else pd.DataFrame(columns=list(entry)))
        same = (registry["asset"] == table) & (registry["version"] == obj.version)  # a re-run replaces its row
        store.write_table(MODEL_REGISTRY, pd.concat([registry[~same], pd.DataFrame([entry])], ignore_index=True))
        context.add_output_metadata({"path": dg.MetadataValue.path(store.display_uri(bundle)), "model_version": obj.version})

    def load_input(self, context: dg.InputContext):
        store = self.warehouse.warehouse()
        table = context.asset_key.path[-1]
        model = load_current_model(store, table)
        if model is None:
            raise FileNotFoundError(
                f"{table} has not been materialized yet (no {store.display_uri(table, 'current.json')}); "
                f"materialize it first, e.g. `dagster asset materialize -m daily_bids.definitions --select {table}`"
            )
        return model


def load_current_model(store: Warehouse, table: str):
    """The model `<table>/current.json` points at, or None when none has been stored."""
    if not store.exists(f"{table}/current.json"):
        return None
    pointer = json.loads(store.read_bytes(f"{table}/current.json"))
    module_name, class_name = pointer["class"].rsplit(".", 1)
    if not module_name.startswith("daily_bids."):
        raise ValueError(f"{table}/current.json names a class outside daily_bids: {pointer['class']}")
    model_class = getattr(importlib.import_module(module_name), class_name)
    return model_class.from_bytes(store.read_bytes(pointer["bundle"]))
