"""Daily Bids: next-day keyword bids from daily sponsored-search keyword reports.

Its subpackages hold the domain logic, one layer each (see docs/architecture.md), and know nothing of Dagster; only
`definitions` (the code location) and `cli` (the command line) do.
"""

import os

# TensorFlow prints start-up notices on stderr when it is imported (by the deep model, or by MLflow's integrations);
# they are not for users. Set before anything imports it; an explicit setting by the user wins. The notices its C++
# runtime writes before this level applies are dropped by the command line (daily_bids.quiet).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
