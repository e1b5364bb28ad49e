"""Bidding: from next-day predictions to one max CPC per keyword.

- `policy`: the policy and its settings; `budgets`: the campaign budget file.
- `decision`: the bid decision for a day (`decide_bids`), the one place a keyword's bid is decided.
- `landscape`: how clicks and cost respond to the bid; `optimizer`: profit-optimal bids within the rules.
- `moves`: the plausibility of a day's bid moves; `backtest`: policies replayed on the simulator.

Imports the foundation modules, `daily_bids.storage`, `daily_bids.simulator`, `daily_bids.features` and
`daily_bids.models`.
"""
