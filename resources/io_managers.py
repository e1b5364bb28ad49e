"""IO managers over the warehouse: partitioned Parquet tables, and versioned model bundles."""

import datetime as dt

import dagster as dg
import pandas as pd

from daily_bids.models.store import ModelStore, ServedModel
from resources.warehouse import WarehouseResource, held_metadata


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
        store = self.warehouse.for_step(context)
        table = context.asset_key.path[-1]
        if context.has_asset_partitions:
            days = _days(context.asset_partition_keys)
            store.write_partitions(table, days, obj)
            location = store.display_uri(table)
            context.add_output_metadata(
                {
                    "path": dg.MetadataValue.path(location),
                    "partitions_written": len(days),
                    **held_metadata(store, table),
                }
            )
        else:
            store.write_table(table, obj)
            context.add_output_metadata({"path": dg.MetadataValue.path(store.display_uri(table))})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        store = self.warehouse.warehouse(context.step_context.run_id)
        table = context.asset_key.path[-1]
        if context.has_asset_partitions:
            return store.read_partitions(table, _days(context.asset_partition_keys))
        return store.read_table(table)


class ModelIOManager(dg.ConfigurableIOManager):
    """Trained models through `daily_bids.models.store.ModelStore`: versioned bundles under `<warehouse>/<asset>/`,
    the `current.json` pointer downstream assets load, and a row per model in `<warehouse>/model_registry`.

    An asset may return a `ServedModel` (the served model, and the one the gate judged for it) or a plain model."""

    warehouse: WarehouseResource

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        store = ModelStore(self.warehouse.warehouse(), context.asset_key.path[-1])
        served = obj if isinstance(obj, ServedModel) else ServedModel(obj, obj)
        bundle = store.save(served.served, judged=served.judged, **served.registry_fields)
        context.add_output_metadata(
            {"path": dg.MetadataValue.path(store.warehouse.display_uri(bundle)), "model_version": served.served.version}
        )

    def load_input(self, context: dg.InputContext):
        return ModelStore(self.warehouse.warehouse(), context.asset_key.path[-1]).current_or_fail()
