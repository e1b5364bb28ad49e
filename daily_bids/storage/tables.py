"""Every table and stored model of the warehouse, named once.

A table written by a Dagster asset has the asset's name (the asset key is `dg.AssetKey(tables.X)`); the names
starting with `_` are the platform's own state, which no user reads. The warehouse lays each one out as its folder.
"""

# The keyword reports: as delivered, as validated, and the rows quarantined with their reasons.
RAW_REPORT = "raw_keyword_report"
VALIDATED_REPORT = "validated_keyword_report"
QUARANTINE = "keyword_quarantine"
# Features, their rolling state, and their catalog.
FEATURES = "keyword_features"
FEATURE_STATE = "_keyword_feature_state"
FEATURE_CATALOG = "feature_catalog"
# Each keyword's whole-history totals and the pooled posterior of its value per click.
KEYWORD_VALUE = "keyword_value"
# Models: the clusters, the candidates, the served champion, a user's Keras challenger, and the registry of versions.
CLUSTERS = "keyword_clusters"
XGBOOST_MODEL = "xgboost_model"
DEEP_MODEL = "deep_model"
CHAMPION = "champion_model"
USER_CHALLENGER = "user_keras_model"
MODEL_REGISTRY = "model_registry"
# Serving: the bid landscape, predictions, bids, the published bids, and how they turned out.
LANDSCAPE = "bid_landscape"
# The validated report's rows of the landscape's sample of keywords, a day at a time: what it learns from, kept.
LANDSCAPE_SAMPLE = "_landscape_sample"
PREDICTIONS = "keyword_predictions"
BIDS = "keyword_bids"
PUBLISHED_BIDS = "published_bids"
MONITORING = "model_monitoring"
# The morning report: each day's business view, a row per campaign (its HTML file sits under exports/).
MORNING_REPORT = "morning_report"
# The ad platform's side: the bids in force (the simulator's), and the index of the landing zone's files.
BIDS_IN_FORCE = "_ad_platform/bids_in_force"
# The Google Ads API's side: every bid change sent to the account (and every rollback), with its outcome, by bids day.
GOOGLE_ADS_BID_CHANGES = "google_ads_bid_changes"
LANDING_INDEX = "_landing_index"
# Each (ad group ID, criterion ID) pair's keyword_id, given once and never changed nor reused (only ever added to).
KEYWORD_KEYS = "_keyword_keys"
