"""How much of a day the quarantine took, and why: a day that is mostly quarantined (columns swapped, a unit
changed, a broken export) must not be bid on from what is left of it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from daily_bids.ingest.validation import SUPERSEDED

TOP_REASONS = 5


@dataclass(frozen=True)
class QuarantinedShare:
    """A day's quarantine against its rows. Rows superseded by a later row of the same keyword and day are left out
    of both counts: a restated export replaces them, and the keyword's day is still there."""

    rows: int  # validated rows plus quarantined ones, superseded rows aside
    quarantined: int  # quarantined rows, superseded ones aside
    superseded: int
    top_reasons: dict[str, int]  # the commonest reasons (superseded aside), most rows first
    examples: pd.DataFrame  # one quarantined row of each top reason: reason, detail, source_file, source_row

    @property
    def share(self) -> float:
        return self.quarantined / self.rows if self.rows else 0.0

    def exceeds(self, maximum_share: float) -> bool:
        return self.share > maximum_share


def quarantined_share(quarantine: pd.DataFrame, validated_rows: int, top: int = TOP_REASONS) -> QuarantinedShare:
    """The share of a day's rows that `quarantine` (that day's quarantined rows, with at least `reason`) holds, and
    its top reasons with their counts."""
    superseded = quarantine["reason"] == SUPERSEDED
    lost = quarantine[~superseded.to_numpy()]
    counts = lost["reason"].value_counts()
    top_reasons = {str(reason): int(count) for reason, count in counts.head(top).items()}
    example_columns = [c for c in ("reason", "detail", "source_file", "source_row") if c in lost.columns]
    examples = lost.drop_duplicates("reason").set_index("reason", drop=False).reindex(list(top_reasons))
    return QuarantinedShare(
        rows=int(validated_rows) + len(lost),
        quarantined=len(lost),
        superseded=int(superseded.sum()),
        top_reasons=top_reasons,
        examples=examples.loc[:, example_columns].reset_index(drop=True),
    )
