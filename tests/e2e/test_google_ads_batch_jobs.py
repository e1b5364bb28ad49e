"""Publishing a large account's bids through `BatchJobService`, with Google's own client library and the emulator.

The threshold is lowered so the sample account's handful of keywords counts as large. As in
test_google_ads_publish.py, the truth each test checks against is the emulator's account, never the publisher's own
account of what it did.
"""

import grpc
import pandas as pd
import pytest

from daily_bids.google_ads.batch_jobs import send_batch_job
from daily_bids.google_ads.bids import (
    APPLIED,
    FAILED,
    NOT_SENT,
    VALIDATED,
    Publication,
    plan_changes,
    read_account_bids,
    send_changes,
)
from daily_bids.google_ads.reports import RetryPolicy, client_for
from support.google_ads_emulator import REMOVED_KEYWORD, GoogleAdsEmulator, emulator_client

CUSTOMER = "123-456-7890"
MANAGER = "9876543210"
YEN = 1_000_000
QUICK = RetryPolicy(attempts=3, first_backoff_seconds=0.01, timeout_seconds=20)
BATCH_JOB_CALLS = {"MutateBatchJob", "AddBatchJobOperations", "RunBatchJob", "GetOperation", "ListBatchJobResults"}


@pytest.fixture
def emulator(monkeypatch):
    # Three results to a page, so that reading a job's results takes several pages.
    with GoogleAdsEmulator(results_per_page=3) as running:
        for name, value in running.client_environment().items():
            monkeypatch.setenv(name, value)
        running.check_trusted()
        yield running


def publication(validate_only=False) -> Publication:
    """Three operations to an AddBatchJobOperations request, and a batch job for more than two changes."""
    return Publication(
        customer_id=CUSTOMER,
        billable_unit_micros=YEN,
        validate_only=validate_only,
        login_customer_id=MANAGER,
        retry=QUICK,
        batch_operations=3,
        batch_job_threshold=2,
    )


def bids_for(account, change) -> pd.DataFrame:
    """A bid for every keyword the account bids on (not removed), moved by `change(bid in yen)`."""
    rows = [
        (number, str(key[0]), str(key[1]), change(criterion.cpc_bid_micros / YEN))
        for number, (key, criterion) in enumerate(sorted(account.criteria.items()), start=1)
        if criterion.status != "REMOVED"
    ]
    return pd.DataFrame(rows, columns=["keyword_id", "ad_group_id", "criterion_id", "bid"])


def account_bids(account) -> dict[tuple[str, str], int]:
    return {(str(a), str(c)): criterion.cpc_bid_micros for (a, c), criterion in account.criteria.items()}


def plan(emulator, bids, use_proto_plus=False, **kwargs):
    client = emulator_client(emulator, use_proto_plus=use_proto_plus)
    target = publication(**kwargs)
    return client, target, plan_changes(bids, read_account_bids(client, target), target)


def publish(emulator, bids, use_proto_plus=False, **kwargs):
    client, target, planned = plan(emulator, bids, use_proto_plus, **kwargs)
    return send_changes(client, planned, target, "run-1", lambda message: None)


def calls(emulator, method):
    return [call for call in emulator.calls if call.method == method]


def assert_ledger_is_the_account(emulator, ledger):
    """Applied rows hold their new bid in the account; every other sent row still holds its bid before."""
    now = account_bids(emulator.account)
    for a, c, old, new, outcome in ledger[
        ["ad_group_id", "criterion_id", "previous_bid_micros", "bid_micros", "outcome"]
    ].itertuples(index=False):
        assert now[(a, c)] == (new if outcome == APPLIED else old), (a, c, outcome)


@pytest.mark.parametrize("use_proto_plus", [False, True])
def test_a_large_publication_goes_through_one_batch_job(emulator, use_proto_plus):
    before = account_bids(emulator.account)
    bids = bids_for(emulator.account, lambda yen: yen + 6)
    ledger = publish(emulator, bids, use_proto_plus=use_proto_plus)

    assert len(ledger) == len(bids) > 6 and set(ledger["outcome"]) == {APPLIED}
    assert_ledger_is_the_account(emulator, ledger)
    assert {key for key, bid in account_bids(emulator.account).items() if bid != before[key]} == set(
        zip(ledger["ad_group_id"], ledger["criterion_id"], strict=True)
    )
    # Google's flow: one job created, its operations added in requests of three, run, polled until done (the emulator
    # finishes a job at its second poll), its results read page by page; bids are read with SearchStream only.
    methods = {call.method for call in emulator.calls}
    assert methods == {"SearchStream"} | BATCH_JOB_CALLS
    assert len(calls(emulator, "MutateBatchJob")) == 1 and len(calls(emulator, "RunBatchJob")) == 1
    adds = calls(emulator, "AddBatchJobOperations")
    assert [len(call.request.mutate_operations) for call in adds] == [3] * (len(bids) // 3) + (
        [len(bids) % 3] if len(bids) % 3 else []
    )
    assert adds[0].request.sequence_token == "" and all(call.request.sequence_token for call in adds[1:])
    assert len(calls(emulator, "GetOperation")) == 2
    assert len(calls(emulator, "ListBatchJobResults")) == -(-len(bids) // 3)
    assert all(call.metadata["login-customer-id"] == MANAGER for call in emulator.calls)
    # Every change came from the job, which the ledger names.
    (job,) = emulator.account.batch_jobs
    assert set(ledger["request_id"]) == {job}
    assert [change.request_id for change in emulator.account.bid_changes] == [job] * len(bids)
    assert [change.resource_name for change in emulator.account.bid_changes] == list(ledger["resource_name"])

    # A re-run sends nothing: every bid already equals the account's.
    sent = len(emulator.calls)
    assert publish(emulator, bids).empty
    assert [call.method for call in emulator.calls[sent:]] == ["SearchStream"]


def test_refused_operations_are_named_per_keyword_with_googles_error(emulator):
    bids = bids_for(emulator.account, lambda yen: yen + 5)
    bids.loc[0, "bid"] = 0.4  # below Google's minimum once rounded down to whole yen
    gone = pd.DataFrame([[998, str(REMOVED_KEYWORD[0]), str(REMOVED_KEYWORD[1]), 50.0]], columns=bids.columns)
    client, target, planned = plan(emulator, pd.concat([bids, gone], ignore_index=True))
    # Between the plan and the job's run, a keyword is removed in the account; and the job refuses another operation
    # with Google's transient internal error.
    removed = planned[planned["outcome"].isna()].iloc[1]
    emulator.account.criteria[(int(removed["ad_group_id"]), int(removed["criterion_id"]))].status = "REMOVED"
    transient = planned[planned["outcome"].isna()].iloc[2]
    emulator.refuse_in_next_batch_job({2})
    ledger = send_changes(client, planned, target, "run-1", lambda message: None)

    by_keyword = ledger.set_index("keyword_id")
    assert by_keyword.loc[1, "outcome"] == FAILED
    assert by_keyword.loc[1, "error"] == "BID_TOO_SMALL: Bid is below the minimum."
    assert by_keyword.loc[removed["keyword_id"], "outcome"] == FAILED
    assert by_keyword.loc[removed["keyword_id"], "error"].startswith("OPERATION_NOT_PERMITTED_FOR_REMOVED_RESOURCE: ")
    assert by_keyword.loc[transient["keyword_id"], "outcome"] == FAILED
    assert by_keyword.loc[transient["keyword_id"], "error"].startswith("TRANSIENT_ERROR: ")
    assert by_keyword.loc[998, "outcome"] == NOT_SENT  # removed before the plan: never sent
    assert (ledger["outcome"] == APPLIED).sum() == len(bids) - 3
    assert ledger.loc[ledger["outcome"] != APPLIED, "error"].notna().all()
    assert_ledger_is_the_account(emulator, ledger)
    assert not calls(emulator, "MutateAdGroupCriteria")

    # The re-run sends the transient failure again (and the refused ones, which Google refuses again).
    again = publish(emulator, bids)
    assert set(again.loc[again["outcome"] == APPLIED, "keyword_id"]) == {transient["keyword_id"]}


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("AddBatchJobOperations", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("AddBatchJobOperations", grpc.StatusCode.UNAVAILABLE),
        ("MutateBatchJob", grpc.StatusCode.UNAVAILABLE),
        ("RunBatchJob", grpc.StatusCode.DEADLINE_EXCEEDED),
        ("GetOperation", grpc.StatusCode.UNAVAILABLE),
        ("ListBatchJobResults", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
def test_a_passing_refusal_is_sent_again(emulator, method, code):
    # The second call of the method (the first for those called once) is refused twice, then goes through.
    emulator.fail_next(
        code, times=2, method=method, after_calls=0 if method in ("MutateBatchJob", "RunBatchJob") else 1
    )
    bids = bids_for(emulator.account, lambda yen: yen + 3)
    ledger = publish(emulator, bids)
    assert set(ledger["outcome"]) == {APPLIED}
    assert len(emulator.account.bid_changes) == len(bids)
    assert_ledger_is_the_account(emulator, ledger)
    if method == "AddBatchJobOperations":
        # The refused request was sent again with the same sequence token, and nothing was added twice.
        assert len(calls(emulator, method)) == -(-len(bids) // 3) + 2
        (job,) = emulator.account.batch_jobs.values()
        assert len(job.operations) == len(bids)


def test_lost_results_are_known_from_the_account(emulator):
    """The job ran, but its results could not be read: the account's bids say what it applied."""
    emulator.fail_next(grpc.StatusCode.INTERNAL, times=QUICK.attempts, method="ListBatchJobResults")
    bids = bids_for(emulator.account, lambda yen: yen + 2)
    ledger = publish(emulator, bids)
    assert set(ledger["outcome"]) == {APPLIED} and ledger["error"].isna().all()
    assert_ledger_is_the_account(emulator, ledger)


def test_a_job_that_cannot_take_all_its_operations_is_not_run(emulator):
    """An add applied whose reply was lost leaves the next sequence token unknown: the job is removed unrun, every row
    says so, and a re-run sends them all in a new job."""
    emulator.lose_next_reply(grpc.StatusCode.DEADLINE_EXCEEDED, method="AddBatchJobOperations")
    before = account_bids(emulator.account)
    bids = bids_for(emulator.account, lambda yen: yen + 8)
    ledger = publish(emulator, bids)
    assert set(ledger["outcome"]) == {FAILED}
    assert ledger["error"].str.contains("was not run: AddBatchJobOperations failed \\(not retryable\\)").all()
    assert ledger["error"].str.contains("INVALID_SEQUENCE_TOKEN|sequence token").all()
    assert account_bids(emulator.account) == before and not emulator.account.bid_changes
    assert not calls(emulator, "RunBatchJob") and not emulator.account.batch_jobs  # removed

    again = publish(emulator, bids)
    assert set(again["outcome"]) == {APPLIED} and len(again) == len(bids)
    assert_ledger_is_the_account(emulator, again)


def test_a_job_not_done_in_time_says_so_for_every_row(emulator):
    emulator.batch_job_polls = 10_000
    client, target, planned = plan(emulator, bids_for(emulator.account, lambda yen: yen + 1))
    errors, job = send_batch_job(
        client_for(client, MANAGER),
        CUSTOMER,
        planned,
        retry=QUICK,
        batch_operations=3,
        log=lambda message: None,
        timeout_seconds=0.1,
    )
    assert job is not None and sorted(errors) == list(range(len(planned)))
    assert all(error == f"the batch job {job} had not finished after 0.1 s" for error in errors.values())
    assert emulator.account.batch_jobs[job].status == "RUNNING" and not emulator.account.bid_changes
    assert not calls(emulator, "ListBatchJobResults")  # a running job has no results to read


def test_a_dry_run_of_a_large_account_is_validated_synchronously(emulator):
    """BatchJobService has no validate_only: a dry run validates every change with MutateAdGroupCriteria."""
    before = account_bids(emulator.account)
    bids = bids_for(emulator.account, lambda yen: yen + 1)
    ledger = publish(emulator, bids, validate_only=True)
    assert set(ledger["outcome"]) == {VALIDATED} and len(ledger) == len(bids)
    assert account_bids(emulator.account) == before and not emulator.account.bid_changes
    mutates = calls(emulator, "MutateAdGroupCriteria")
    assert mutates and all(call.request.validate_only for call in mutates)
    assert not {call.method for call in emulator.calls} & BATCH_JOB_CALLS
