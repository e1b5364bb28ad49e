"""Data quality: expectation suites built from the data contract and the feature definitions, and their evaluation.

Imports the foundation modules, `daily_bids.storage`, `daily_bids.features`, `daily_bids.ingest` (the quarantine's
reason codes) and `daily_bids.spark_tasks` (the checks' Spark form).
"""
