"""Publishing bids to a Google Ads account and rolling them back, through Google's own client library and the emulator.

The truth each test checks against is the emulator's account (its bids now, and every update it applied), never the
publisher's own account of what it did.
"""

import grpc
import numpy as np
import pandas as pd
import pytest

from daily_bids.google_ads.bids import (
    APPLIED,
    FAILED,
    NOT_SENT,
    VALIDATED,
    Publication,
    bid_micros,
    plan_changes,
    plan_rollback,
    read_account_bids,
    send_changes,
)
from daily_bids.google_ads.reports import RetryPolicy
from support.google_ads_emulator import (
    PAUSED_KEYWORD,
    REMOVED_KEYWORD,
    SHARED_CRITERION_ID,
    GoogleAdsEmulator,
    emulator_client,
)

CUSTOMER = "123-456-7890"
MANAGER = "9876543210"
YEN = 1_000_000
QUICK = RetryPolicy(attempts=3, first_backoff_seconds=0.01, timeout_seconds=20)


@pytest.fixture
def emulator(monkeypatch):
    with GoogleAdsEmulator() as running:
        for name, value in running.client_environment().items():
            monkeypatch.setenv(name, value)
        running.check_trusted()
        yield running


def publication(validate_only=False, batch_operations=3) -> Publication:
    return Publication(
        customer_id=CUSTOMER,
        billable_unit_micros=YEN,
        validate_only=validate_only,
        login_customer_id=MANAGER,
        retry=QUICK,
        batch_operations=batch_operations,
    )


def bids_for(account, change) -> pd.DataFrame:
    """A bid for every keyword the account bids on (not removed), moved by `change(bid in yen)`, as the platform's
    bids table holds them (keyword IDs of its own, the criterion and ad group IDs as text)."""
    rows = [
        (number, str(key[0]), str(key[1]), change(criterion.cpc_bid_micros / YEN))
        for number, (key, criterion) in enumerate(sorted(account.criteria.items()), start=1)
        if criterion.status != "REMOVED"
    ]
    return pd.DataFrame(rows, columns=["keyword_id", "ad_group_id", "criterion_id", "bid"])


def account_bids(account) -> dict[tuple[str, str], int]:
    return {(str(a), str(c)): criterion.cpc_bid_micros for (a, c), criterion in account.criteria.items()}


def publish(emulator, bids, **kwargs):
    client = emulator_client(emulator)
    target = publication(**kwargs)
    planned = plan_changes(bids, read_account_bids(client, target), target)
    return send_changes(client, planned, target, "run-1", lambda message: None)


def test_bids_are_rounded_down_to_the_billable_unit_exactly():
    assert list(bid_micros(pd.Series([0.29, 120.0, 99.99, 1.005]), 10_000)) == [
        290_000,
        120_000_000,
        99_990_000,
        1_000_000,
    ]
    assert list(bid_micros(pd.Series([120.0, 99.99, 0.5]), YEN)) == [120 * YEN, 99 * YEN, 0]


def test_changed_bids_are_applied_and_the_ledger_equals_the_account(emulator):
    before = account_bids(emulator.account)
    bids = bids_for(emulator.account, lambda yen: yen + 7 if yen % 2 else yen)  # odd bids move, even ones stay
    ledger = publish(emulator, bids)

    after = account_bids(emulator.account)
    changed = {key for key in before if before[key] != after[key]}
    assert changed and len(changed) < len(bids)  # some moved, some did not
    # The ledger holds exactly the changes the account applied, with the bids before and after.
    assert set(ledger["outcome"]) == {APPLIED}
    assert {
        (a, c): (old, new)
        for a, c, old, new in ledger[["ad_group_id", "criterion_id", "previous_bid_micros", "bid_micros"]].itertuples(
            index=False
        )
    } == {key: (before[key], after[key]) for key in changed}
    assert [change.resource_name for change in emulator.account.bid_changes] == list(ledger["resource_name"])
    # The shared criterion ID is two keywords: each ad group's bid is its own.
    shared = {key: value for key, value in after.items() if key[1] == str(SHARED_CRITERION_ID)}
    assert len(shared) == 2
    # Only changed bids were sent, in batches of at most three operations, logged in through the manager.
    mutates = [call for call in emulator.calls if call.method == "MutateAdGroupCriteria"]
    assert sum(len(call.request.operations) for call in mutates) == len(changed)
    assert max(len(call.request.operations) for call in mutates) <= 3
    assert all(call.request.partial_failure and call.metadata["login-customer-id"] == MANAGER for call in mutates)

    # A re-run sends nothing: every bid already equals the account's.
    calls = len(emulator.calls)
    assert publish(emulator, bids).empty
    assert [call.method for call in emulator.calls[calls:]] == ["SearchStream"]


def test_a_dry_run_validates_every_change_and_applies_none(emulator):
    before = account_bids(emulator.account)
    bids = bids_for(emulator.account, lambda yen: yen + 1)
    ledger = publish(emulator, bids, validate_only=True)
    assert account_bids(emulator.account) == before and not emulator.account.bid_changes
    assert set(ledger["outcome"]) == {VALIDATED} and len(ledger) == len(bids)
    mutates = [call for call in emulator.calls if call.method == "MutateAdGroupCriteria"]
    assert mutates and all(call.request.validate_only for call in mutates)


def test_refused_and_unknown_keywords_are_named_and_the_rest_applied(emulator):
    bids = bids_for(emulator.account, lambda yen: yen + 5)
    # One bid below Google's minimum (0 yen after rounding down), one for a keyword the account does not have, and
    # one for a keyword removed since the report.
    bids.loc[0, "bid"] = 0.4
    stranger = pd.DataFrame([[999, "55555", "777777", 50.0]], columns=bids.columns)
    removed = pd.DataFrame([[998, str(REMOVED_KEYWORD[0]), str(REMOVED_KEYWORD[1]), 50.0]], columns=bids.columns)
    ledger = publish(emulator, pd.concat([bids, stranger, removed], ignore_index=True))

    by_keyword = ledger.set_index("keyword_id")
    assert by_keyword.loc[1, "outcome"] == FAILED and by_keyword.loc[1, "error"].startswith("BID_TOO_SMALL")
    assert by_keyword.loc[999, "outcome"] == NOT_SENT and "no such keyword" in by_keyword.loc[999, "error"]
    assert by_keyword.loc[998, "outcome"] == NOT_SENT and "removed" in by_keyword.loc[998, "error"]
    applied = ledger[ledger["outcome"].eq(APPLIED)]
    assert len(applied) == len(bids) - 1
    now = account_bids(emulator.account)
    assert all(
        now[(a, c)] == new
        for a, c, new in applied[["ad_group_id", "criterion_id", "bid_micros"]].itertuples(index=False)
    )
    assert by_keyword["error"].notna().sum() == 3  # every row that did not apply says why


@pytest.mark.parametrize("code", [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE])
def test_a_passing_refusal_is_sent_again(emulator, code):
    emulator.fail_next(code, times=2, method="MutateAdGroupCriteria")
    bids = bids_for(emulator.account, lambda yen: yen + 3)
    ledger = publish(emulator, bids, batch_operations=100)
    assert set(ledger["outcome"]) == {APPLIED}
    assert len(emulator.account.bid_changes) == len(bids)


def test_a_lost_reply_is_known_to_the_ledger_as_applied(emulator):
    """Google applied the request and the reply never came: retried (harmless, the bid is absolute) and read back."""
    emulator.lose_next_reply(grpc.StatusCode.DEADLINE_EXCEEDED)
    bids = bids_for(emulator.account, lambda yen: yen + 2)
    ledger = publish(emulator, bids, batch_operations=100)
    assert set(ledger["outcome"]) == {APPLIED}
    now = account_bids(emulator.account)
    assert all(
        now[(a, c)] == new
        for a, c, new in ledger[["ad_group_id", "criterion_id", "bid_micros"]].itertuples(index=False)
    )


def test_a_fault_that_outlasts_the_retries_leaves_the_ledger_true(emulator):
    """The first batch goes through, the second meets a quota that does not clear: the ledger says which is which,
    and a re-run sends only what is missing."""
    bids = bids_for(emulator.account, lambda yen: yen + 4)
    emulator.fail_next(
        grpc.StatusCode.RESOURCE_EXHAUSTED, times=QUICK.attempts, method="MutateAdGroupCriteria", after_calls=1
    )
    ledger = publish(emulator, bids, batch_operations=4)

    outcomes = ledger["outcome"].value_counts().to_dict()
    assert outcomes[APPLIED] >= 4 and outcomes[FAILED] >= 1
    assert ledger.loc[ledger["outcome"].eq(FAILED), "error"].str.startswith("RESOURCE_EXHAUSTED").all()
    now = account_bids(emulator.account)
    for a, c, old, new, outcome in ledger[
        ["ad_group_id", "criterion_id", "previous_bid_micros", "bid_micros", "outcome"]
    ].itertuples(index=False):
        assert now[(a, c)] == (new if outcome == APPLIED else old)
    # The re-run sends exactly the keywords that failed.
    again = publish(emulator, bids, batch_operations=100)
    assert set(again["outcome"]) == {APPLIED}
    assert sorted(again["keyword_id"]) == sorted(ledger.loc[ledger["outcome"].eq(FAILED), "keyword_id"])


def test_a_rollback_restores_the_bids_before_the_publication(emulator):
    before = account_bids(emulator.account)
    bids = bids_for(emulator.account, lambda yen: yen * 2)
    published = publish(emulator, bids)
    # Someone changes one keyword by hand after the publication: the rollback leaves it alone and says so.
    touched = published.iloc[0]
    emulator.account.criteria[(int(touched["ad_group_id"]), int(touched["criterion_id"]))].cpc_bid_micros = 333 * YEN

    client = emulator_client(emulator)
    target = publication()
    rollback = plan_rollback(published, read_account_bids(client, target))
    done = send_changes(client, rollback, target, "run-2", lambda message: None)

    now = account_bids(emulator.account)
    expected = {**before, (touched["ad_group_id"], touched["criterion_id"]): 333 * YEN}
    assert now == expected
    assert set(done["action"]) == {"rollback"}
    kept = done[done["outcome"].eq(NOT_SENT)]
    assert len(kept) == 1 and "now 333000000" in kept["error"].iloc[0]
    assert (done["outcome"].eq(APPLIED)).sum() == len(published) - 1


def test_paused_keywords_keep_their_bid_in_the_account_plan(emulator):
    """The bids table holds no paused keyword (they are not bid); a plan never touches a keyword it has no bid for."""
    bids = bids_for(emulator.account, lambda yen: yen + 9)
    bids = bids[~((bids["ad_group_id"] == str(PAUSED_KEYWORD[0])) & (bids["criterion_id"] == str(PAUSED_KEYWORD[1])))]
    before = emulator.account.criteria[PAUSED_KEYWORD].cpc_bid_micros
    publish(emulator, bids)
    assert emulator.account.criteria[PAUSED_KEYWORD].cpc_bid_micros == before
    assert np.all(bids["keyword_id"].to_numpy() > 0)


def test_a_client_with_proto_plus_messages_publishes_the_same(emulator):
    """A google-ads.yaml may say `use_proto_plus: True`; the requests are built on the protobuf under either."""
    client = emulator_client(emulator, use_proto_plus=True)
    target = publication()
    bids = bids_for(emulator.account, lambda yen: yen + 6)
    ledger = send_changes(client, plan_changes(bids, read_account_bids(client, target), target), target, "run-1", print)
    assert set(ledger["outcome"]) == {APPLIED} and len(emulator.account.bid_changes) == len(bids)
