"""Auction shapes: how a keyword's bid turns into auctions won, a position and a price per click, in expectation.

The simulator plays a day through one of them (`AdMarketSimulator(market=...)`), and the same functions give each
keyword's true curves, which the oracle and the truth measurements of the backtest read. A bid policy is never shown
which shape it bids in: one that is tuned to one shape can be wrong in the other.

- `share_of_bid`: the price paid per click is a share of your own bid (45% to 90%, more as you win more auctions).
  The best bid is a fixed fraction of the value of a click.
- `second_price`: a generalized second-price auction, like Google's. Ads are ranked by bid × quality; a keyword wins
  an auction when its rank beats the best competing rank there (lognormal around its competition level) and the
  reserve price, and pays what keeping its position takes, the competing rank divided by its own quality (at least
  the reserve), whatever its own bid. The best bid is close to the value of a click.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

MARKETS = ("share_of_bid", "second_price")


@dataclass(frozen=True)
class AuctionOutcome:
    """In expectation at a bid: the share of the keyword's auctions won, the click-rate factor of the position won,
    and the mean price paid per click as a share of the bid (never above 1: the price never exceeds the bid)."""

    share: np.ndarray
    position_factor: np.ndarray
    price_fraction: np.ndarray

    @property
    def click_factor(self) -> np.ndarray:
        """Clicks per search, relative to the keyword's click-through rate."""
        return self.share * self.position_factor


def share_of_bid(bid: np.ndarray, price_scale: np.ndarray) -> AuctionOutcome:
    """A higher bid wins more auctions and a higher position, which is clicked more often; the price is a fraction of
    the bid that grows with the share won. `price_scale` is the bid at which the keyword wins 63% of its auctions."""
    share = 1.0 - np.exp(-bid / price_scale)
    return AuctionOutcome(share, 0.6 + 0.8 * share, 0.45 + 0.45 * share)


def second_price(
    bid: np.ndarray, quality: np.ndarray, competitor_rank: np.ndarray, competitor_spread: np.ndarray, reserve: float
) -> AuctionOutcome:
    """The generalized second-price auction in expectation, in closed form. The best competing rank X in an auction is
    lognormal (median `competitor_rank`, log-spread `competitor_spread`); the keyword's rank is bid × quality. It wins
    when X < its rank and its bid reaches `reserve`, and then pays max(X / quality, reserve)."""
    bid = np.asarray(bid, dtype="float64")
    rank = np.maximum(bid * quality, 1e-12)
    mu, sigma = np.log(competitor_rank), competitor_spread
    z = (np.log(rank) - mu) / sigma
    eligible = bid >= reserve
    share = np.where(eligible, ndtr(z), 0.0)
    # E[max(X, r); X < rank] with r the reserve's rank: r·P(X < r) + E[X; r ≤ X < rank] (lognormal partial means).
    reserve_rank = np.minimum(reserve * quality, rank)
    z_reserve = (np.log(reserve_rank) - mu) / sigma
    partial_mean = np.exp(mu + sigma**2 / 2) * (ndtr(z - sigma) - ndtr(z_reserve - sigma))
    paid_rank = reserve_rank * ndtr(z_reserve) + partial_mean
    won = ndtr(z)
    # Where the keyword almost never wins, the ratio of two vanishing numbers is noise: it pays about its own rank.
    reliable = won > 1e-9
    price = np.where(reliable, paid_rank / np.where(reliable, won, 1.0) / quality, bid)
    fraction = np.clip(price / np.maximum(bid, 1e-12), 0.0, 1.0)
    return AuctionOutcome(share, 0.6 + 0.8 * share, fraction)
