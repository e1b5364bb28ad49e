"""Features: every keyword feature defined once, computed incrementally, written by shard, and catalogued.

Also sizes the history windows each step reads. Imports the foundation modules, `daily_bids.storage` and
`daily_bids.spark_tasks` (the features' Spark form).
"""
