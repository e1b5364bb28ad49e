"""Where models live: what every servable model offers, and the store of their versions.

Every model kind implements `daily_bids.models.protocol.ServableModel`. A `ModelStore` keeps one named model's
versions in the warehouse:

    <warehouse>/<name>/versions/<version>.zip   every version stored, so any of them can be restored
    <warehouse>/<name>/current.json             the version the next reader loads: {version, bundle, kind}
    <warehouse>/model_registry                  a row per stored model (feature versions, scaler, window)

A bundle is read back by its kind (`daily_bids.models.kinds`): nothing read from a file chooses which code runs.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import pandas as pd

from daily_bids.models.kinds import model_from_bundle
from daily_bids.models.protocol import ServableModel
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse

# The stored names of the models the gate reads and writes (also the Dagster asset names).


class ModelStore:
    """The stored versions of one named model (`champion_model`, `xgboost_model`, …) and its `current` pointer."""

    def __init__(self, warehouse: Warehouse, name: str):
        self.warehouse, self.name = warehouse, name

    @property
    def pointer_path(self) -> str:
        return f"{self.name}/current.json"

    def bundle_path(self, version: str) -> str:
        return f"{self.name}/versions/{version}.zip"

    def save(self, model: ServableModel, judged: ServableModel | None = None, **registry_fields) -> str:
        """Store `model` as a new version and point `current` at it; returns the bundle's path. `judged` is the
        model the gate judged when `model` is its refit (see `incumbent_for`). Bundles are written first and each
        file atomically, so a failure leaves the old pointer on whole bundles."""
        bundle = self.bundle_path(model.version)
        self.warehouse.write_bytes(bundle, model.to_bytes())
        pointer = {"version": model.version, "bundle": bundle, "kind": model.kind}
        if judged is not None and judged.version != model.version:
            self.warehouse.write_bytes(self.bundle_path(judged.version), judged.to_bytes())
            pointer["judged"] = {
                "version": judged.version,
                "bundle": self.bundle_path(judged.version),
                "kind": judged.kind,
            }
        self.warehouse.write_bytes(self.pointer_path, json.dumps(pointer, indent=2).encode())
        self._register(model, registry_fields)
        return bundle

    def _pointer(self) -> dict | None:
        if not self.warehouse.exists(self.pointer_path):
            return None
        return json.loads(self.warehouse.read_bytes(self.pointer_path))

    def current(self) -> ServableModel | None:
        """The model `current` points at, or None when none has been stored."""
        pointer = self._pointer()
        if pointer is None:
            return None
        return model_from_bundle(pointer["kind"], self.warehouse.read_bytes(pointer["bundle"]))

    def incumbent_for(self, first_outcome_day: dt.date) -> tuple[ServableModel | None, str]:
        """The model that stands for the current one on a holdout whose outcomes start on `first_outcome_day`,
        and why. A refit that trained on those days would be judged on what it has seen: the model the gate judged
        before that refit (same kind and parameters, trained before the holdout) stands for it instead."""
        pointer = self._pointer()
        if pointer is None:
            return None, "there is no champion yet"
        current = model_from_bundle(pointer["kind"], self.warehouse.read_bytes(pointer["bundle"]))
        if current.trained_through < first_outcome_day or "judged" not in pointer:
            return current, f"the champion {current.version} is judged on the holdout"
        judged = pointer["judged"]
        return (
            model_from_bundle(judged["kind"], self.warehouse.read_bytes(judged["bundle"])),
            f"the champion {current.version} trained on this holdout's days: it is judged as "
            f"{judged['version']}, the model the gate picked before refitting it",
        )

    def current_or_fail(self) -> ServableModel:
        model = self.current()
        if model is None:
            raise FileNotFoundError(
                f"{self.name} has not been materialized yet (no {self.warehouse.display_uri(self.pointer_path)}); "
                f"materialize it first, e.g. `dagster asset materialize -m daily_bids.definitions --select {self.name}`"
            )
        return model

    def _register(self, model: ServableModel, fields: dict) -> None:
        entry = {
            "asset": self.name,
            "stored_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "kind": model.kind,
            **model.registry_entry(),
            **fields,
        }
        registry = (
            self.warehouse.read_table(tables.MODEL_REGISTRY)
            if self.warehouse.table_exists(tables.MODEL_REGISTRY)
            else pd.DataFrame(columns=list(entry))
        )
        same = (registry["asset"] == self.name) & (registry["version"] == model.version)  # a re-run replaces its row
        self.warehouse.write_table(
            tables.MODEL_REGISTRY, pd.concat([registry[~same], pd.DataFrame([entry])], ignore_index=True)
        )


@dataclass(frozen=True)
class ServedModel:
    """What the gate hands the store: the model that serves, and the one it judged for it (the same model, or the
    candidate that `served` is the refit of)."""

    served: ServableModel
    judged: ServableModel
    registry_fields: dict = field(default_factory=dict)
