"""Serving: scoring a day (locally in batches or on Spark) and publishing its bids as the Ads Editor file.

Imports every domain package below it (storage, spark_tasks, features, quality, models, bidding); nothing imports it but the
Dagster assets and resources.
"""
