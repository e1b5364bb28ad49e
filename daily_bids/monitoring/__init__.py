"""Monitoring: how yesterday's predictions and bids turned out, and alerts when a run or a check fails.

Imports the foundation modules, `daily_bids.storage`, `daily_bids.features` and `daily_bids.models`.
"""
