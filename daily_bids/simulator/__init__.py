"""The simulator: an embedded ad market that writes keyword reports and knows each keyword's true value and curves.

Imports only the foundation modules (`daily_bids.schema`).
"""
