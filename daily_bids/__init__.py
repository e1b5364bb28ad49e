"""Daily Bids: next-day keyword bids from daily sponsored-search keyword reports.

The modules of this package hold the domain logic (simulator, validation, features, models, bidding) and know
nothing of Dagster, except `definitions` (the code location) and `cli` (the command line).
"""
