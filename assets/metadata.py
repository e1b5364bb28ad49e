"""Materialization metadata as people read it in the UI."""

import math

# Enough for a deviance, a calibration or a money total; the tables keep full precision.
DIGITS = 4


def readable(metadata: dict) -> dict:
    """`metadata` with its floats rounded to `DIGITS` decimals (NaN and inf as they are)."""
    return {
        key: round(value, DIGITS) if isinstance(value, float) and math.isfinite(value) else value
        for key, value in metadata.items()
    }
