import dagster as dg

from daily_bids.bidding.policy import BidPolicy


class BidPolicyResource(dg.ConfigurableResource, BidPolicy):
    """Margin and caps as a resource, so the bids asset and the checks on its output judge by the same numbers.
    Change them in the launchpad's resource config, or in `build_resources`."""
