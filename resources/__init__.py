"""Dagster resources and IO managers. `build_resources(settings)` picks them for the deployment its `Settings` describe."""

from resources.ad_platform import LandingZoneSource, ReportSource, SimulatedAdPlatform
from resources.bid_policy import BidPolicyResource
from resources.deployment import build_resources
from resources.io_managers import ModelIOManager, WarehouseIOManager
from resources.warehouse import WarehouseResource

__all__ = [
    "BidPolicyResource",
    "LandingZoneSource",
    "ReportSource",
    "ModelIOManager",
    "SimulatedAdPlatform",
    "WarehouseIOManager",
    "WarehouseResource",
    "build_resources",
]
