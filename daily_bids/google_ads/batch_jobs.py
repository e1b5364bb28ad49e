"""Bid changes of a large account sent through `BatchJobService`, the way Google documents batch processing.

A publication with more pending changes than `Publication.batch_job_threshold` is sent here rather than in
synchronous `MutateAdGroupCriteria` requests (see `bids.send_changes`):

1. `MutateBatchJob` creates a job.
2. `AddBatchJobOperations` adds the updates of `cpc_bid_micros`, as `MutateOperation`s holding an
   `ad_group_criterion_operation`, `Publication.batch_operations` to a request. Each request carries the sequence
   token the previous one returned (none for the first), so Google refuses an add sent twice.
3. `RunBatchJob` starts the job and returns a long-running operation.
4. The operation is polled with `GetOperation` (the service's own operations client, on the same channel), the wait
   doubling from `RetryPolicy.first_backoff_seconds` up to `MAX_POLL_SECONDS`, for at most `JOB_TIMEOUT_SECONDS`.
   Not with google-api-core's `operation.result()`: Google's finished batch-job operation holds neither a response nor
   an error (RunBatchJob's reference: "use ListBatchJobResults to get the results"), which `result()` raises as
   "Unexpected state".
5. `ListBatchJobResults`, page by page: a result's `operation_index` is its operation's position in the job, which is
   the ledger row's position among the rows sent. A failed result's `status` is a google.rpc.Status whose details hold
   a GoogleAdsFailure; it is recorded as Google's error code name and message, as a synchronous partial failure is.

Every call refused for a passing reason (`RETRYABLE_STATUSES`) is sent again after a backoff (`Publication.retry`).
What happened is then read back from the account by `bids.verify`, as for synchronous requests: a job whose results
were lost, or that had not finished in time, is still known by the bids the account holds.

A job that cannot take all its operations (an add refused for good, or a reply lost so that the next sequence token is
unknown) is not run: nothing of it is applied, it is removed, and every row says why. A re-run sends them again.

A job still running when the wait ends (`JOB_TIMEOUT_SECONDS`) may apply its updates later: its rows are `failed`
until then, and the next publication finds those bids in the account and does not send them again.

BatchJobService has no `validate_only`, so a dry run never comes here: `bids.send_changes` validates a large account
with synchronous requests, which apply nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from daily_bids.google_ads.reports import (
    GoogleAdsCallError,
    RetryPolicy,
    as_protobuf,
    call_with_retries,
    enum_name,
    plain_customer_id,
)

# How long a running job is waited for; Google's jobs of a million operations can take hours, bid updates minutes.
JOB_TIMEOUT_SECONDS = 3_600.0
# The longest wait between two polls of a running job.
MAX_POLL_SECONDS = 60.0
# Results read in one ListBatchJobResults request (Google's examples use 1,000).
RESULTS_PAGE_SIZE = 1_000


def send_batch_job(
    client,
    customer_id: str,
    rows: pd.DataFrame,
    *,
    retry: RetryPolicy,
    batch_operations: int,
    log: Callable[[str], None],
    timeout_seconds: float = JOB_TIMEOUT_SECONDS,
) -> tuple[dict[int, str], str | None]:
    """Sends one update of `cpc_bid_micros` per row (`resource_name`, `bid_micros`) in one batch job.

    Returns the errors Google gave, by the row's position in `rows` (every row, with the reason, where the job did not
    run or its results could not be read), and the job's resource name (None where none was created). The caller reads
    the outcome back from the account."""
    customer_id = plain_customer_id(customer_id)
    service = client.get_service("BatchJobService")
    everything = range(len(rows))

    try:
        job = _create(client, service, customer_id, retry)
    except GoogleAdsCallError as failure:
        return dict.fromkeys(everything, f"not sent: the batch job could not be created: {failure}"), None

    try:
        _add_operations(client, service, job, rows, retry, batch_operations, log)
        operation = call_with_retries(
            "RunBatchJob", retry, lambda: service.run_batch_job(request=_run_request(client, job))
        )
    except GoogleAdsCallError as failure:
        _remove(client, service, customer_id, job, retry)
        return dict.fromkeys(everything, f"not sent: the batch job {job} was not run: {failure}"), job
    log(f"batch job {job}: running {len(rows):,} operations")

    ended, why = _wait(service, operation.operation.name, retry, timeout_seconds)
    if ended is not None and ended.HasField("error"):
        log(f"batch job {job}: ended with an error: {ended.error.message}")
    if ended is not None:
        try:
            errors, seen = _results(client, service, job, retry)
        except GoogleAdsCallError as failure:
            why = f"ended, but its results could not be read ({failure})"
    if why:
        log(f"batch job {job}: {why}; the account's bids tell what it applied")
        return dict.fromkeys(everything, f"the batch job {job} {why}"), job

    log(f"batch job {job}: {len(seen) - len(errors):,} accepted, {len(errors):,} refused")
    for position in everything:
        if position not in seen:
            errors[position] = f"the batch job {job} returned no result for this operation"
    return errors, job


def _create(client, service, customer_id: str, retry: RetryPolicy) -> str:
    request = as_protobuf(client.get_type("MutateBatchJobRequest"))
    request.customer_id = customer_id
    request.operation.create.SetInParent()  # an empty BatchJob: Google names it
    response = call_with_retries("MutateBatchJob", retry, lambda: service.mutate_batch_job(request=request))
    return as_protobuf(response).result.resource_name


def _add_operations(client, service, job: str, rows: pd.DataFrame, retry, batch_operations: int, log) -> None:
    """All rows' updates, in order, `batch_operations` to a request, each carrying the last sequence token."""
    token = ""
    resource_names, micros = rows["resource_name"].to_numpy(), rows["bid_micros"].to_numpy()
    for start in range(0, len(rows), batch_operations):
        request = as_protobuf(client.get_type("AddBatchJobOperationsRequest"))
        request.resource_name = job
        request.sequence_token = token
        for resource_name, bid in zip(
            resource_names[start : start + batch_operations], micros[start : start + batch_operations], strict=True
        ):
            operation = request.mutate_operations.add().ad_group_criterion_operation
            operation.update.resource_name = resource_name
            operation.update.cpc_bid_micros = int(bid)
            operation.update_mask.paths.append("cpc_bid_micros")
        response = as_protobuf(
            call_with_retries(
                "AddBatchJobOperations",
                retry,
                lambda request=request: service.add_batch_job_operations(request=request),
            )
        )
        token = response.next_sequence_token
    log(f"batch job {job}: {len(rows):,} operations added")


def _run_request(client, job: str):
    request = as_protobuf(client.get_type("RunBatchJobRequest"))
    request.resource_name = job
    return request


def _wait(service, name: str, retry: RetryPolicy, timeout_seconds: float):
    """The job's long-running operation once done, or None and why not (not done in time, or not to be polled)."""
    operations = service.transport.operations_client
    deadline = time.monotonic() + timeout_seconds
    pause = retry.first_backoff_seconds
    while True:
        try:
            operation = call_with_retries(
                "GetOperation",
                retry,
                lambda: operations.get_operation(name, retry=None, timeout=retry.timeout_seconds),
            )
        except GoogleAdsCallError as failure:
            return None, f"could not be followed ({failure})"
        if operation.done:
            return operation, None
        if time.monotonic() + pause > deadline:
            return None, f"had not finished after {timeout_seconds:g} s"
        time.sleep(pause)
        pause = min(pause * 2, MAX_POLL_SECONDS)


def _results(client, service, job: str, retry: RetryPolicy) -> tuple[dict[int, str], set[int]]:
    """The errors of the job's failed operations and the indexes of every result, read page by page."""
    failure_type = type(as_protobuf(client.get_type("GoogleAdsFailure")))
    errors: dict[int, str] = {}
    seen: set[int] = set()
    token = ""
    while True:
        request = as_protobuf(client.get_type("ListBatchJobResultsRequest"))
        request.resource_name = job
        request.page_size = RESULTS_PAGE_SIZE
        request.page_token = token
        # The call returns a pager; its first page is this request's response.
        page = as_protobuf(
            next(
                call_with_retries(
                    "ListBatchJobResults", retry, lambda: service.list_batch_job_results(request=request)
                ).pages
            )
        )
        for result in page.results:
            seen.add(int(result.operation_index))
            if result.HasField("status") and result.status.code != 0:
                errors[int(result.operation_index)] = _status_error(failure_type, result.status)
        token = page.next_page_token
        if not token:
            return errors, seen


def _status_error(failure_type, status) -> str:
    """A failed operation's google.rpc.Status as Google's error code names and messages, as bids.py records them."""
    from google.rpc import code_pb2

    texts = []
    for detail in status.details:
        for error in failure_type.FromString(detail.value).errors:
            code = error.error_code.WhichOneof("error_code")
            texts.append(f"{enum_name(error.error_code, code) if code else 'UNKNOWN'}: {error.message}")
    return "; ".join(texts) or f"{code_pb2.Code.Name(status.code)}: {status.message}"


def _remove(client, service, customer_id: str, job: str, retry: RetryPolicy) -> None:
    """Removes a job that will not be run; a job Google no longer holds as pending is left as it is."""
    request = as_protobuf(client.get_type("MutateBatchJobRequest"))
    request.customer_id = customer_id
    request.operation.remove = job
    try:
        call_with_retries("MutateBatchJob", retry, lambda: service.mutate_batch_job(request=request))
    except GoogleAdsCallError:
        pass
