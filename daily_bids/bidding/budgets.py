"""The campaign budgets file: each campaign's daily budget, which `profit_optimal` keeps expected spend within."""

from __future__ import annotations

import csv

import numpy as np


class BudgetFileError(ValueError):
    """A campaign budgets file that cannot be read; the message names the file, row and column."""


def read_campaign_budgets(path: str) -> dict[str, float]:
    """{campaign: daily budget} from a CSV with a `campaign` and a `budget` column (one row per campaign)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = {"campaign", "budget"} - {name.strip().lower() for name in reader.fieldnames or []}
            if missing:
                raise BudgetFileError(f"{path}: missing column(s) {sorted(missing)}; found {reader.fieldnames}")
            budgets: dict[str, float] = {}
            for line, row in enumerate(reader, start=2):
                row = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
                try:
                    budget = float(row["budget"].replace(",", ""))
                except ValueError:
                    raise BudgetFileError(
                        f"{path}: row {line}: column budget: {row['budget']!r} is not a number"
                    ) from None
                if not np.isfinite(budget) or budget < 0:
                    raise BudgetFileError(f"{path}: row {line}: column budget: {row['budget']!r} must be 0 or more")
                if not row["campaign"]:
                    raise BudgetFileError(f"{path}: row {line}: column campaign is empty")
                if row["campaign"] in budgets:
                    raise BudgetFileError(f"{path}: row {line}: campaign {row['campaign']!r} is listed twice")
                budgets[row["campaign"]] = budget
    except OSError as error:
        raise BudgetFileError(f"{path}: cannot read the campaign budgets file ({error.strerror})") from None
    return budgets
