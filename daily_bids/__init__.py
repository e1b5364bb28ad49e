"""Daily Bids: next-day keyword bids from daily sponsored-search keyword reports.

The modules of this package hold the domain logic (simulator, validation, features, models, bidding) and know
nothing of Dagster, except `definitions` (the code location) and `cli` (the command line).
"""

import os

# TensorFlow prints start-up notices on stderr when it is imported (by the deep model, or by MLflow's integrations);
# they are not for users. Set before anything imports it; an explicit setting by the user wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
