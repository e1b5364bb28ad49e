"""Ingest: reading the advertiser's report files from a landing zone and validating every raw row.

Owns the landing zone's hygiene (file formats, sizes, settling, export completeness) and row-level validation
(validated or quarantined with a reason). Imports only the foundation modules and `daily_bids.storage`.
"""
