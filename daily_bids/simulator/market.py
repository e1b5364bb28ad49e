"""An ad-market simulator: the embedded stand-in for the ad platform.

Each keyword has latent daily search volume, click-through rate, conversion rate and order value. Volume follows a
weekly and a yearly season per campaign theme and drifts slowly. The bid in force decides the share of auctions won:
a higher bid wins more impressions and a better position (more clicks), and pays a cost per click at or below the bid.
How the price follows the bid is the market's auction shape (`daily_bids.simulator.auctions`): a share of your own bid,
or a generalized second-price auction against competing bids.

The simulator knows each keyword's truth: its value per click (conversion rate × order value) and its expected clicks
and cost per click at any bid (`expected_outcomes`), so the platform's bids can be judged against the best bids below
the true value (`oracle_bids`), not only against its own estimates.

Everything is a pure function of (seed, day, bids in force), so a day's report can be produced for any day, in any
order, and the same inputs always give the same report. Latent parameters depend on the seed and the keyword alone,
so an account of 10,000 keywords starts with the same 2,000 keywords as an account of 2,000.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from daily_bids.schema import MATCH_TYPES, conform_report
from daily_bids.simulator.auctions import MARKETS, AuctionOutcome, second_price, share_of_bid

# Day zero of the simulated market; fixed so that reports do not depend on deployment settings.
EPOCH = dt.date(2024, 1, 1)
MIN_KEYWORDS, MAX_KEYWORDS = 300, 10_000_000
KEYWORDS_PER_AD_GROUP = 20
# The lowest bid a second-price auction accepts, and the lowest bid the oracle considers (the platform's min_bid).
RESERVE_PRICE = 0.05
_LATENT_BLOCK = 50_000
AD_GROUPS_PER_CAMPAIGN = 10

THEMES = ("Hiking", "Camping", "Climbing", "Cycling", "Running", "Skiing", "Fishing", "Kayaking")
# Weekly shape of search volume per theme (Monday first): outdoor searches peak towards the weekend.
_WEEKLY = np.array(
    [
        [0.90, 0.92, 0.95, 1.00, 1.10, 1.15, 0.98],
        [0.85, 0.88, 0.92, 1.02, 1.18, 1.20, 0.95],
        [0.95, 0.95, 0.97, 1.00, 1.05, 1.08, 1.00],
        [0.92, 0.94, 0.96, 1.00, 1.06, 1.14, 0.98],
        [1.05, 1.00, 1.00, 0.98, 0.95, 1.02, 1.00],
        [0.88, 0.88, 0.90, 0.98, 1.15, 1.25, 0.96],
        [0.90, 0.90, 0.92, 1.00, 1.10, 1.20, 0.98],
        [0.88, 0.90, 0.92, 1.00, 1.12, 1.20, 0.98],
    ]
)
# Day of year on which each theme's season peaks (skiing in winter, kayaking in summer...).
_PEAK_DAY_OF_YEAR = np.array([200, 190, 220, 180, 120, 30, 160, 195])
_ADJECTIVES = ("best", "cheap", "lightweight", "waterproof", "womens", "mens", "kids", "ultralight", "warm", "used")
_PRODUCTS = ("boots", "jacket", "tent", "backpack", "shoes", "gloves", "helmet", "rope", "socks", "poles", "bag", "map")
_MODIFIERS = ("sale", "online", "review", "2-pack", "outlet", "near me", "shop", "deals", "brand", "size guide")


@dataclass(frozen=True)
class MarketParameters:
    seed: int
    keywords: int

    def __post_init__(self):
        if not MIN_KEYWORDS <= self.keywords <= MAX_KEYWORDS:
            raise ValueError(
                f"simulated account size must be {MIN_KEYWORDS} to {MAX_KEYWORDS} keywords, got {self.keywords}"
            )


class AdMarketSimulator:
    """Generates daily keyword reports for one simulated account.

    `demand_shocks` multiplies the search volume of every keyword from a day on (the latest shock at or before a day
    applies): a what-if for a market that changes under the models, e.g. {2025-03-01: 3.0} triples demand from that
    day, and a factor of 0 gives a day without any report rows.
    """

    def __init__(
        self,
        seed: int = 7,
        keywords: int = 2000,
        demand_shocks: dict[dt.date, float] | None = None,
        market: str = "share_of_bid",
    ):
        self.params = MarketParameters(seed=seed, keywords=keywords)
        if market not in MARKETS:
            raise ValueError(f"unknown market {market!r}: the simulator's auction shapes are {list(MARKETS)}")
        self.market = market
        self.demand_shocks = dict(sorted((demand_shocks or {}).items()))
        if any(factor < 0 for factor in self.demand_shocks.values()):
            raise ValueError(f"demand shock factors must be 0 or more, got {self.demand_shocks}")

    def demand_factor(self, day: dt.date) -> float:
        return next((factor for start, factor in reversed(self.demand_shocks.items()) if start <= day), 1.0)

    @cached_property
    def latent(self) -> dict[str, np.ndarray]:
        """Per-keyword latent parameters; a function of (seed, keyword) only."""
        n = self.params.keywords
        index = np.arange(n)
        # One independent stream per block of keywords, each drawn whole, so that a keyword's parameters do not
        # depend on the account size.
        parts = [self._latent_block(start) for start in range(0, n, _LATENT_BLOCK)]
        latent = {name: np.concatenate([p[name] for p in parts])[:n] for name in parts[0]}
        latent["keyword_id"] = 100_001 + index
        latent["ad_group_index"] = index // KEYWORDS_PER_AD_GROUP
        latent["campaign_index"] = latent["ad_group_index"] // AD_GROUPS_PER_CAMPAIGN
        latent["theme"] = latent["campaign_index"] % len(THEMES)
        return latent

    def _latent_block(self, start: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.params.seed, 1, start])
        size = _LATENT_BLOCK
        match = rng.choice(len(MATCH_TYPES), size=size, p=[0.3, 0.3, 0.4])
        # Broad match sees more searches with weaker intent.
        volume_factor = np.array([0.6, 1.0, 1.8])[match]
        intent_factor = np.array([1.3, 1.0, 0.7])[match]
        ctr = np.clip(rng.beta(2.0, 40.0, size) * intent_factor, 0.002, 0.5)
        conversion_rate = np.clip(rng.beta(2.0, 60.0, size) * intent_factor, 0.001, 0.5)
        order_value = rng.lognormal(np.log(80.0), 0.6, size)
        value_per_click = conversion_rate * order_value
        # A keyword launched later than the epoch has no history before its launch: the cold-start case.
        launched_late = rng.random(size) < 0.08
        launch_day = np.where(launched_late, rng.integers(0, 900, size), -100_000)
        # The second-price market's competition, from a stream of its own: the draws above stay as they were.
        competition = np.random.default_rng([self.params.seed, 3, start])
        return {
            # Ad quality (relevance, expected click-through) that multiplies the bid into an ad rank.
            "quality": competition.lognormal(0.0, 0.3, size),
            # The median best competing ad rank, and its spread from auction to auction: competitors value the
            # keyword's clicks about as the advertiser does, some more, some less.
            "competitor_rank": value_per_click * competition.lognormal(np.log(0.7), 0.5, size),
            "competitor_spread": competition.uniform(0.2, 0.8, size),
            "match_type": match,
            "base_volume": rng.lognormal(np.log(30.0), 1.3, size) * volume_factor,
            "ctr": ctr,
            "conversion_rate": conversion_rate,
            "order_value": order_value,
            # The bid at which the keyword wins about 63% of its auctions.
            "price_scale": value_per_click * rng.lognormal(np.log(0.5), 0.35, size),
            # The advertiser's manual bids before the platform: sometimes above the value of a click.
            "manual_bid": np.round(np.clip(value_per_click * rng.lognormal(np.log(0.8), 0.5, size), 0.05, 25.0), 2),
            "drift_amplitude": rng.uniform(0.0, 0.35, size),
            "drift_period": rng.uniform(90.0, 420.0, size),
            "drift_phase": rng.uniform(0.0, 2 * np.pi, size),
            "text_index": rng.integers(0, len(_ADJECTIVES) * len(_PRODUCTS) * len(_MODIFIERS), size),
            "launch_day": launch_day,
        }

    @cached_property
    def keyword_dimensions(self) -> pd.DataFrame:
        """keyword_id, keyword, campaign, ad_group, their IDs and match_type of every keyword (categorical to stay
        compact)."""
        lat = self.latent
        texts = [f"{a} {p} {m}" for a in _ADJECTIVES for p in _PRODUCTS for m in _MODIFIERS]
        # Keywords of one ad group take consecutive texts, so (ad group, keyword, match type) is unique.
        position_in_group = np.arange(len(lat["keyword_id"])) % KEYWORDS_PER_AD_GROUP
        group_text_offset = lat["text_index"][lat["ad_group_index"] * KEYWORDS_PER_AD_GROUP]
        text_codes = (group_text_offset + position_in_group) % len(texts)
        keyword_names = [f"{theme.lower()} {text}" for theme in THEMES for text in texts]
        campaign_codes, campaign_names = _names("{theme} {number:03d}", lat["campaign_index"], lat["theme"])
        ad_group_codes, ad_group_names = _names("{theme} group {number:05d}", lat["ad_group_index"], lat["theme"])
        return pd.DataFrame(
            {
                "keyword_id": lat["keyword_id"],
                "keyword": pd.Categorical.from_codes(lat["theme"] * len(texts) + text_codes, keyword_names),
                "campaign": pd.Categorical.from_codes(campaign_codes, campaign_names),
                "ad_group": pd.Categorical.from_codes(ad_group_codes, ad_group_names),
                "campaign_id": _ids(lat["campaign_index"]),
                "ad_group_id": _ids(lat["ad_group_index"]),
                "match_type": pd.Categorical.from_codes(lat["match_type"], list(MATCH_TYPES)),
            }
        )

    def manual_bids(self) -> pd.Series:
        """The advertiser's own bids, in force wherever the platform has not published one."""
        return pd.Series(self.latent["manual_bid"], index=self.latent["keyword_id"], name="bid")

    def reports_with_varied_bids(self, start: dt.date, days: int, varied_days: int) -> dict[dt.date, pd.DataFrame]:
        """`days` reports from `start`: at the manual bids, then for the last `varied_days` at bids the advertiser
        moved by up to ±20% each week (seeded), the variation a bid landscape can learn from."""
        manual = self.manual_bids()
        reports = {}
        for number in range(days):
            bids = manual
            if number >= days - varied_days:
                week = (number - (days - varied_days)) // 7
                bids = (manual * np.random.default_rng([self.params.seed, week]).uniform(0.8, 1.2, len(manual))).round(
                    2
                )
            reports[start + dt.timedelta(days=number)] = self.report(start + dt.timedelta(days=number), bids)
        return reports

    def searches(self, day: dt.date) -> np.ndarray:
        """Each keyword's expected searches on `day`: its volume through the seasons, its drift, its launch and any
        demand shock."""
        lat = self.latent
        t = (day - EPOCH).days
        theme = lat["theme"]
        day_of_year = day.timetuple().tm_yday
        yearly = 1.0 + 0.45 * np.cos(2 * np.pi * (day_of_year - _PEAK_DAY_OF_YEAR[theme]) / 365.25)
        weekly = _WEEKLY[theme, day.weekday()]
        drift = np.exp(lat["drift_amplitude"] * np.sin(2 * np.pi * t / lat["drift_period"] + lat["drift_phase"]))
        return lat["base_volume"] * yearly * weekly * drift * (lat["launch_day"] <= t) * self.demand_factor(day)

    def auction_outcome(self, bid: np.ndarray, keywords: np.ndarray | slice = slice(None)) -> AuctionOutcome:
        """The auction in expectation at `bid` for the `keywords` (positions in the account, or all of them), in
        this market's shape."""
        lat = self.latent
        if self.market == "second_price":
            return second_price(
                bid,
                lat["quality"][keywords],
                lat["competitor_rank"][keywords],
                lat["competitor_spread"][keywords],
                RESERVE_PRICE,
            )
        return share_of_bid(bid, lat["price_scale"][keywords])

    @property
    def true_value_per_click(self) -> np.ndarray:
        """What a click on each keyword really earns in expectation: its conversion rate × its order value."""
        return self.latent["conversion_rate"] * self.latent["order_value"]

    def expected_outcomes(self, day: dt.date, bids_in_force: pd.Series) -> pd.DataFrame:
        """The truth of `day` at `bids_in_force` (keyword_id → bid, every keyword of the account), in expectation:
        each keyword's clicks, cost per click, spend and profit at its true value per click."""
        bid = bids_in_force.reindex(self.latent["keyword_id"]).to_numpy(dtype="float64")
        if np.isnan(bid).any():
            raise ValueError("expected outcomes need a bid for every keyword of the account")
        clicks, cost_per_click = self._expected_clicks_and_price(day, bid)
        value = self.true_value_per_click
        return pd.DataFrame(
            {
                "keyword_id": self.latent["keyword_id"],
                "bid": bid,
                "true_value_per_click": value,
                "expected_clicks": clicks,
                "expected_cost_per_click": cost_per_click,
                "expected_spend": clicks * cost_per_click,
                "expected_profit": clicks * (value - cost_per_click),
            }
        )

    def oracle_bids(self, day: dt.date, min_bid: float = RESERVE_PRICE, candidates: int = 400) -> pd.Series:
        """The best bid of each keyword on `day` below its true value per click, with the true curves: the bid of
        highest expected profit among whole-cent bids from `min_bid` up to the last cent below the value (on a
        geometric grid of `candidates` bids). A keyword whose click is worth no more than `min_bid` is not worth
        bidding on: its oracle bid is 0, which wins no auction."""
        value = self.true_value_per_click
        top = np.floor(value * 100.0 - 1e-9) / 100.0  # the last whole cent strictly below the value
        worth_bidding = top >= min_bid
        grid = np.geomspace(1.0, 1.0 / 1e3, candidates)[None, :]  # from the top cent down to 1/1000 of it
        bids = np.floor(np.maximum(top[:, None] * grid, min_bid) * 100.0) / 100.0
        searches = self.searches(day)
        profits = np.empty_like(bids)
        for column in range(candidates):  # a column at a time: memory stays at a few vectors per keyword
            clicks, price = self._expected_clicks_and_price(day, bids[:, column], searches)
            profits[:, column] = clicks * (value - price)
        best = bids[np.arange(len(bids)), np.argmax(profits, axis=1)]
        return pd.Series(np.where(worth_bidding, best, 0.0), index=self.latent["keyword_id"], name="bid")

    def _expected_clicks_and_price(
        self, day: dt.date, bid: np.ndarray, searches: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        outcome = self.auction_outcome(bid)
        searches = self.searches(day) if searches is None else searches
        click_rate = np.clip(self.latent["ctr"] * outcome.position_factor, 0.0, 0.9)
        return searches * outcome.share * click_rate, bid * outcome.price_fraction

    def report(self, day: dt.date, bids_in_force: pd.Series | None = None) -> pd.DataFrame:
        """The keyword report of `day`. `bids_in_force` maps keyword_id to the max CPC in force that day."""
        return next(self.report_pieces(day, bids_in_force))

    def report_pieces(
        self, day: dt.date, bids_in_force: pd.Series | None = None, rows: int | None = None
    ) -> Iterator[pd.DataFrame]:
        """`report` in pieces of `rows` rows (in one piece by default), in keyword order: a large account's report
        made a piece at a time, since its text columns cost more than every number the day draws."""
        shown, numbers = self._reported_numbers(day, bids_in_force)
        step = max(1, len(shown) if rows is None else rows)
        for start in range(0, max(len(shown), 1), step):  # an empty day is one empty piece
            piece = slice(start, start + step)
            report = self.keyword_dimensions.take(shown[piece])
            report.insert(0, "date", np.full(len(report), np.datetime64(day, "ns")))
            yield conform_report(report.assign(**{name: values[piece] for name, values in numbers.items()}))

    def _reported_numbers(
        self, day: dt.date, bids_in_force: pd.Series | None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The keywords with a row in the day's report (those with impressions) and their numbers. Apart from
        `report_pieces`, so that the day's draws are let go before its pieces are made."""
        lat = self.latent
        bid = self.manual_bids()
        if bids_in_force is not None and len(bids_in_force):
            unknown = bids_in_force.index.difference(bid.index)
            if len(unknown):
                raise ValueError(f"bids for keywords the account does not have: {list(unknown[:5])}")
            bid.loc[bids_in_force.index] = bids_in_force.to_numpy(dtype="float64")
        bid = bid.to_numpy(dtype="float64")

        t = (day - EPOCH).days
        rng = np.random.default_rng([self.params.seed, 2, t + 1_000_000])
        searches = self.searches(day)

        outcome = self.auction_outcome(bid)
        impressions = rng.poisson(searches * outcome.share)
        click_rate = np.clip(lat["ctr"] * outcome.position_factor, 0.0, 0.9)
        clicks = rng.binomial(impressions, click_rate)
        mean_price_fraction = outcome.price_fraction
        price_fraction = np.clip(
            mean_price_fraction + rng.normal(0.0, 0.03, bid.size), np.minimum(0.3, mean_price_fraction), 1.0
        )
        cost = np.floor(clicks * bid * price_fraction * 100.0) / 100.0
        conversions = rng.binomial(clicks, lat["conversion_rate"])
        value_shape = np.maximum(conversions, 1) * 4.0
        conversion_value = np.where(conversions > 0, np.round(rng.gamma(value_shape, lat["order_value"] / 4.0), 2), 0.0)

        # Like real reports, a keyword with no impressions has no row that day.
        shown = np.flatnonzero(impressions > 0)
        numbers = {
            "impressions": impressions[shown],
            "clicks": clicks[shown],
            "cost": cost[shown],
            "conversions": conversions[shown],
            "conversion_value": conversion_value[shown],
            "max_cpc": np.round(bid[shown], 2),
            # Impressions won over the auctions the keyword was eligible for, as the ad platform estimates it.
            "search_impression_share": np.round(np.minimum(impressions[shown] / searches[shown], 1.0), 4),
        }
        return shown, numbers


def _ids(indices: np.ndarray) -> pd.Categorical:
    """Platform IDs (as text, like a report's) for campaign or ad-group indices: the index plus one."""
    unique, codes = np.unique(indices, return_inverse=True)
    return pd.Categorical.from_codes(codes, [str(int(u) + 1) for u in unique])


def _names(pattern: str, indices: np.ndarray, themes: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Category codes and names for campaign or ad-group indices, named after their theme."""
    unique, first, codes = np.unique(indices, return_index=True, return_inverse=True)
    names = [pattern.format(theme=THEMES[themes[i]], number=int(u) + 1) for u, i in zip(unique, first)]
    return codes, names
