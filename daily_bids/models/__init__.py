"""Models: one module per model kind, the protocol they share, the kinds registry, the store, the gate and tuning.

- `protocol`: `ServableModel`, what every kind offers (imports nothing from the project).
- `kinds`: the one map from a kind's name to its class.
- `xgboost_model`, `deep_model` (wide & deep Keras), `user_keras_model` (a data scientist's own Keras network),
  `naive_model` (the floors), `blend_model`: the kinds.
- `store`: where versions live; `evaluation`: the holdout and the champion gate; `refit`, `tuning`.
- `prediction`: the table of next-day predictions that bids are made from.

Imports the foundation modules, `daily_bids.storage`, `daily_bids.features` and `daily_bids.quality`.
"""
