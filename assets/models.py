"""Trained models."""

import datetime as dt

import dagster as dg
from pydantic import Field

from assets.features import keyword_features
from assets.reports import VALIDATED_REPORT
from daily_bids.model import KeywordModel, TrainingParameters, train, training_days, training_frame
from resources.warehouse import WarehouseResource


class XGBoostModelConfig(dg.Config, TrainingParameters):
    train_through: str = Field(
        "", description="Last report day whose outcomes are trained on (YYYY-MM-DD). Empty: the latest day with features."
    )


@dg.asset(
    group_name="models",
    kinds={"xgboost"},
    io_manager_key="model_io_manager",
    # Reads a rolling window of daily partitions itself, so it depends on the tables without loading all of them.
    deps=[keyword_features, VALIDATED_REPORT],
)
def xgboost_model(
    context: dg.AssetExecutionContext, config: XGBoostModelConfig, warehouse: WarehouseResource
) -> dg.Output[KeywordModel]:
    """Gradient-boosted Poisson/Tweedie models of next-day clicks, conversions and conversion value, trained on the
    last `training_days` days of features with the following day's report as targets."""
    store = warehouse.warehouse()
    features_table, reports_table = keyword_features.key.path[-1], VALIDATED_REPORT.path[-1]
    if config.train_through:
        through = dt.date.fromisoformat(config.train_through)
    else:
        available = store.list_partitions(features_table)
        if not available:
            raise ValueError(f"{features_table} has no partitions yet: materialize the reports and features first")
        through = available[-1]
    feature_days = training_days(through, config)
    context.log.info(f"training on features of {feature_days[0]}...{feature_days[-1]}, outcomes through {through}")
    features = store.read_partitions(features_table, feature_days)
    outcomes = store.read_partitions(reports_table, [day + dt.timedelta(days=1) for day in feature_days])
    model = train(training_frame(features, outcomes), through, config, log=context.log.info)
    return dg.Output(
        model,
        metadata={
            "model_version": model.version,
            "trained_through": through.isoformat(),
            "training_window": f"{feature_days[0]}...{feature_days[-1]}",
            "training_rows": len(features),
            **{f"validation_{name}": value for name, value in model.validation_metrics.items()},
        },
    )
