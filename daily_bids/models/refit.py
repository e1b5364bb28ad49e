"""The refit of the gate's winner: the same kind and parameters, trained on the window through the latest data.

The gate judges candidates that stopped 7 days short of the data (the holdout). The winner is then refit on a window
of the same length that reaches the latest complete day, for the rounds or epochs its early stopping chose, with no
day held out: that refit serves. A model trained outside the platform (a user's Keras model) cannot be refit here
and serves as it was judged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd

from daily_bids.models.blend_model import BlendModel
from daily_bids.models.clustering import KeywordClusters
from daily_bids.models.deep_model import DeepKeywordModel, DeepParameters, train_deep
from daily_bids.models.naive_model import NaiveModel
from daily_bids.models.xgboost_model import KeywordModel, TrainingParameters, train

TrainingFrame = Callable[[int], pd.DataFrame]  # training days -> features with next-day outcomes through `through`


def refit(model, training_frame: TrainingFrame, through: dt.date, log=print):
    """`model` trained again, on as many days as it trained on, ending with the outcomes of `through`; or None when
    its kind cannot be refit (it learned outside the platform)."""
    if isinstance(model, KeywordModel):
        rounds = {target: booster.num_boosted_rounds() for target, booster in model.boosters.items()}
        parameters = TrainingParameters(**model.parameters)
        return train(training_frame(parameters.training_days), through, parameters, log, rounds=rounds)
    if isinstance(model, DeepKeywordModel):
        epochs = int(model.validation_metrics.get("best_epoch", model.validation_metrics.get("epochs", 1)))
        parameters = DeepParameters(**model.parameters)
        clusters = KeywordClusters(model.clusters, pd.DataFrame(), int(model.clusters["cluster"].max()) + 1, {})
        return train_deep(training_frame(parameters.training_days), clusters, through, parameters, log, epochs=epochs)
    if isinstance(model, BlendModel):
        return model.with_components(
            {name: refit(component, training_frame, through, log) for name, component in model.components.items()}
        )
    if isinstance(model, NaiveModel):  # learns nothing: only the day it stands for moves on
        return NaiveModel(model.window_days, through)
    return None
