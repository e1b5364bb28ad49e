"""Data quality: expectation suites built from the data contract and the feature definitions, and their evaluation.

Imports the foundation modules, `daily_bids.storage` and `daily_bids.features`.
"""
