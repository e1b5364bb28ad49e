"""Storage: the warehouse of partitioned Parquet tables and model bundles, on a local disk or on S3.

Owns how tables and files are laid out, written atomically and read back. Imports only the foundation modules
(`daily_bids.schema`, `daily_bids.settings`, `daily_bids.charts`).
"""
