"""Asset definitions by layer: reports → features → models → serving (predictions and bids)."""

from assets.checks import bids_are_profitable_and_capped
from assets.features import keyword_features
from assets.models import xgboost_model
from assets.partitions import daily_partitions
from assets.reports import raw_keyword_report, validated_keyword_report
from assets.serving import keyword_bids, keyword_predictions

DAILY_ASSETS = [raw_keyword_report, validated_keyword_report, keyword_features, keyword_predictions, keyword_bids]
HISTORY_ASSETS = [raw_keyword_report, validated_keyword_report, keyword_features]
MODEL_ASSETS = [xgboost_model]
ALL_ASSETS = [*DAILY_ASSETS, *MODEL_ASSETS]
ALL_CHECKS = [bids_are_profitable_and_capped]

__all__ = ["ALL_ASSETS", "ALL_CHECKS", "DAILY_ASSETS", "HISTORY_ASSETS", "MODEL_ASSETS", "daily_partitions"]
