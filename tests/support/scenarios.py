"""The small simulated accounts the session fixtures build (tests/conftest.py): their days and training settings."""

import datetime as dt

HISTORY_START, HISTORY_END = dt.date(2025, 1, 1), dt.date(2025, 2, 14)
BID_DAYS = [dt.date(2025, 2, 15), dt.date(2025, 2, 16), dt.date(2025, 2, 17)]
WINDOW = {"train_through": "2025-02-14"}  # candidates train through 2025-02-07; the last 7 days are the holdout
TRAINING = {
    "keyword_clusters": {"config": {**WINDOW, "profile_days": 28}},
    "xgboost_model": {"config": {**WINDOW, "training_days": 21, "validation_days": 4}},
    "deep_model": {"config": {**WINDOW, "training_days": 21, "validation_days": 4, "epochs": 20}},
}

START, HISTORY_DAYS, VARIED_DAYS = dt.date(2025, 1, 1), 84, 14
