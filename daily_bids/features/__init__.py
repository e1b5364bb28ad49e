"""Features: every keyword feature defined once, computed incrementally, written by shard, and catalogued.

Also sizes the history windows each step reads. Imports the foundation modules and `daily_bids.storage`.
"""
