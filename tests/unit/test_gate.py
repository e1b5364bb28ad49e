"""The champion gate as a plain function: every branch of `run_gate`, and which model stands for the champion.

The holdout is synthetic: each keyword has a known click rate, and its clicks are Poisson draws of it. Models are
rate tables with controlled errors, so each test sets up exactly the race it is about.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from daily_bids.models.evaluation import GatePolicy, run_gate
from daily_bids.models.kinds import MODEL_KINDS
from daily_bids.models.naive_model import NaiveModel, naive_floors
from daily_bids.models.protocol import ServableModel
from daily_bids.models.store import ModelStore
from daily_bids.storage.warehouse import Warehouse

THROUGH = dt.date(2025, 6, 1)
ROWS = 3_000
POLICY = GatePolicy()


@dataclass
class RateModel:
    """Predicts a fixed expected-clicks value per holdout row (the row's `row` column)."""

    kind: ClassVar[str] = "rate"  # judged only, never stored
    parity_tolerance: ClassVar[float] = 1e-6
    name: str
    clicks: np.ndarray
    trained_through: dt.date = THROUGH
    feature_versions: dict = field(default_factory=dict)
    validation_metrics: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return f"rate-{self.name}"

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        clicks = self.clicks[features["row"].to_numpy()]
        return pd.DataFrame(
            {"expected_clicks": clicks, "expected_conversions": np.nan, "expected_value": np.nan}, index=features.index
        )


@pytest.fixture(scope="module")
def race():
    """The holdout, the true rates and the clusters (two halves of the keywords)."""
    rng = np.random.default_rng(7)
    rate = rng.gamma(1.5, 2.0, ROWS)
    noisy_mean = rate * rng.lognormal(0, 0.6, ROWS)  # the naive floors' means are far noisier than a model
    holdout = pd.DataFrame(
        {
            "row": np.arange(ROWS),
            "keyword_id": np.arange(ROWS) + 1,
            "date": pd.Timestamp(THROUGH),
            "clicks": rng.poisson(rate).astype("float64"),
            "conversions": np.nan,
            **{f"clicks_mean_{d}d": np.log1p(noisy_mean * (1.0 if d == 28 else 1.3)) for d in (7, 28)},
            **{f"{t}_mean_{d}d": np.nan for t in ("conversions", "conversion_value") for d in (7, 28)},
        }
    )
    clusters = (np.arange(ROWS) >= ROWS // 2).astype("int64")
    return holdout, rate, clusters


def noisy(rate: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return rate * np.random.default_rng(seed).lognormal(-(sigma**2) / 2, sigma, len(rate))  # unbiased in the mean


def gate(race, candidates: dict, incumbent=None, policy: GatePolicy = POLICY):
    holdout, _, clusters = race
    return run_gate(candidates, incumbent, holdout, clusters, naive_floors(THROUGH), policy)


def test_every_kind_the_store_reads_offers_what_the_protocol_declares():
    declared = set(ServableModel.__annotations__) | {n for n in vars(ServableModel) if not n.startswith("_")}
    assert {"predict", "version", "to_bytes", "from_bytes", "registry_entry", "trained_through"} <= declared
    for kind, model_class in MODEL_KINDS.items():
        offered = set(dir(model_class)) | set(getattr(model_class, "__dataclass_fields__", {}))
        assert model_class.kind == kind and declared <= offered, (kind, declared - offered)
    assert isinstance(NaiveModel(28, THROUGH), ServableModel)


def test_without_a_champion_the_best_candidate_that_beats_the_floor_serves(race):
    _, rate, _ = race
    verdict = gate(
        race, {"xgboost": RateModel("ok", noisy(rate, 0.3, 1)), "deep": RateModel("good", noisy(rate, 0.1, 2))}
    )
    assert verdict.decision.champion == "deep" and verdict.decision.replaced
    assert verdict.chosen.version == "rate-good" and verdict.incumbent is None


def test_without_a_champion_the_floor_serves_when_no_candidate_beats_it(race):
    _, rate, _ = race
    verdict = gate(race, {"xgboost": RateModel("bad", noisy(rate, 2.0, 3))})
    assert verdict.decision.champion in {"naive_7d", "naive_28d"} and isinstance(verdict.chosen, NaiveModel)
    assert any("does not beat the naive floor" in reason for reason in verdict.decision.reasons)


def test_a_champion_that_is_neither_candidate_keeps_serving_when_none_beats_it_by_the_margin(race):
    _, rate, _ = race
    champion = RateModel("champion", noisy(rate, 0.1, 4))
    verdict = gate(race, {"xgboost": RateModel("same", noisy(rate, 0.1, 5))}, incumbent=champion)
    assert verdict.incumbent == "champion (rate-champion)"
    assert verdict.decision.champion == verdict.incumbent and not verdict.decision.replaced
    assert verdict.chosen is champion
    assert any("does not beat the champion" in reason for reason in verdict.decision.reasons)


def test_a_candidate_that_beats_the_champion_by_the_margin_replaces_it(race):
    _, rate, _ = race
    verdict = gate(
        race, {"deep": RateModel("good", noisy(rate, 0.05, 6))}, incumbent=RateModel("old", noisy(rate, 0.5, 7))
    )
    assert verdict.decision.champion == "deep" and verdict.decision.replaced


def test_a_champion_of_a_candidates_version_is_that_candidate(race):
    _, rate, _ = race
    same = RateModel("good", noisy(rate, 0.1, 8))
    verdict = gate(race, {"deep": same, "xgboost": RateModel("worse", noisy(rate, 0.4, 9))}, incumbent=same)
    assert verdict.incumbent == "deep" and verdict.decision.champion == "deep" and not verdict.decision.replaced
    assert set(verdict.predictions) == {"deep", "xgboost", "naive_7d", "naive_28d"}  # not judged twice


def test_a_better_candidate_worse_calibrated_than_the_champion_is_refused(race):
    _, rate, _ = race
    biased = RateModel("biased", noisy(rate, 0.02, 10) * 1.25)
    verdict = gate(
        race,
        {"xgboost": biased},
        incumbent=RateModel("calibrated", noisy(rate, 0.35, 11)),
        policy=GatePolicy(margin=0.0),
    )
    assert verdict.decision.champion == "champion (rate-calibrated)"
    assert any("calibration" in reason for reason in verdict.decision.reasons)


def test_a_candidate_worse_on_a_cluster_is_refused(race):
    _, rate, _ = race
    half = ROWS // 2
    uneven = np.concatenate([noisy(rate[:half], 0.01, 12), noisy(rate[half:], 0.45, 13)])
    verdict = gate(
        race,
        {"xgboost": RateModel("uneven", uneven)},
        incumbent=RateModel("even", noisy(rate, 0.3, 14)),
        policy=GatePolicy(margin=0.0),
    )
    assert verdict.decision.champion == "champion (rate-even)"
    assert any("cluster 1" in reason for reason in verdict.decision.reasons)


def test_a_floor_champion_is_named_as_todays_floor_and_a_learned_model_replaces_it(race):
    _, rate, _ = race
    served_floor = NaiveModel(28, THROUGH - dt.timedelta(days=30))  # judged a month ago: same predictions today
    verdict = gate(race, {"deep": RateModel("good", noisy(rate, 0.1, 15))}, incumbent=served_floor)
    assert verdict.incumbent == "naive_28d"
    assert verdict.decision.champion == "deep" and verdict.decision.replaced


def test_the_floor_replaces_a_champion_it_beats_when_no_candidate_passes(race):
    _, rate, _ = race
    verdict = gate(
        race, {"xgboost": RateModel("bad", noisy(rate, 2.0, 16))}, incumbent=RateModel("worse", noisy(rate, 2.5, 17))
    )
    assert verdict.decision.champion in {"naive_7d", "naive_28d"} and verdict.decision.replaced


def test_the_champion_keeps_serving_when_neither_candidates_nor_the_floor_pass(race):
    _, rate, _ = race
    verdict = gate(
        race, {"xgboost": RateModel("bad", noisy(rate, 2.0, 18))}, incumbent=RateModel("fine", noisy(rate, 0.2, 19))
    )
    assert verdict.decision.champion == "champion (rate-fine)" and not verdict.decision.replaced
    assert verdict.decision.reasons[-1] == "champion (rate-fine) keeps serving"


def test_the_store_lets_the_judged_model_stand_for_a_refit_that_saw_the_holdout(tmp_path):
    store = ModelStore(Warehouse(str(tmp_path)), "champion_model")
    assert store.incumbent_for(THROUGH) == (None, "there is no champion yet")
    judged, refit = NaiveModel(7, THROUGH - dt.timedelta(days=7)), NaiveModel(7, THROUGH)
    store.save(refit, judged=judged)
    assert store.current() == refit
    # A holdout after the refit's data: the refit itself is judged.
    stands_for, note = store.incumbent_for(THROUGH + dt.timedelta(days=1))
    assert stands_for == refit and "is judged on the holdout" in note
    # A holdout the refit trained on: the model the gate judged before the refit stands for it.
    stands_for, note = store.incumbent_for(THROUGH - dt.timedelta(days=3))
    assert stands_for == judged and judged.version in note
