"""Bids published to a Google Ads account through `AdGroupCriterionService.MutateAdGroupCriteria`, and rolled back.

A publication sends only the bids that differ from the account's own, read just before (so a re-run sends nothing).
Each request carries up to `BATCH_OPERATIONS` updates of `cpc_bid_micros`, with partial failure on, so one refused
keyword does not hold back the others. A request Google refuses for a passing reason (`RESOURCE_EXHAUSTED`,
`UNAVAILABLE`, `DEADLINE_EXCEEDED`) is sent again after a backoff; an update sets an absolute bid, so sending it twice
is harmless.

What happened is read back from the account, not assumed: after sending, each keyword's bid is read again, and the
ledger says `applied` only where the account holds the new bid. A request whose reply was lost (a deadline passed after
Google applied it) is therefore recorded as applied, and one that failed as failed, with Google's error.

A publication with more pending changes than `batch_job_threshold` goes through `BatchJobService` instead (see
`batch_jobs`), and is read back from the account the same way.

In a dry run (`validate_only`) Google checks every update and applies none: the ledger says `validated` or `failed`.
BatchJobService has no `validate_only`, so a dry run is always sent as synchronous requests, however many changes:
they are the only way Google checks an update without applying it, and they apply nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from daily_bids.google_ads.batch_jobs import send_batch_job
from daily_bids.google_ads.reports import (
    MICROS_PER_UNIT,
    GoogleAdsCallError,
    RetryPolicy,
    as_protobuf,
    call_with_retries,
    client_for,
    enum_name,
    plain_customer_id,
    read_stream,
)
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse

# Google accepts up to 10,000 operations in one mutate request; smaller requests keep a retried one cheap.
BATCH_OPERATIONS = 2_000
# Above this many changes, a publication is one batch job rather than 25 or more synchronous requests.
BATCH_JOB_THRESHOLD = 50_000
# The keywords of an account, with their bids now. Negative keywords have no bid.
CRITERIA_QUERY = (
    "SELECT ad_group.id, ad_group_criterion.criterion_id, ad_group_criterion.status, "
    "ad_group_criterion.cpc_bid_micros FROM ad_group_criterion "
    "WHERE ad_group_criterion.type = 'KEYWORD' AND ad_group_criterion.negative = FALSE"
)

# The ledger of a publication or a rollback: one row per keyword whose bid was to change.
LEDGER_COLUMNS: dict[str, str] = {
    "action": "string",  # publish or rollback
    "keyword_id": "int64",
    "ad_group_id": "string",
    "criterion_id": "string",
    "resource_name": "string",
    "previous_bid_micros": "Int64",  # the account's bid before; null where the keyword used its ad group's
    "bid_micros": "Int64",  # the bid sent; null where none could be sent
    "outcome": "string",  # applied, validated (a dry run Google accepted), failed, or not_sent
    "error": "string",  # Google's error code and message, or why nothing was sent
    "request_id": "string",
    "sent_at": "datetime64[us, UTC]",
    "run_id": "string",
}
APPLIED, VALIDATED, FAILED, NOT_SENT = "applied", "validated", "failed", "not_sent"


class GoogleAdsPublishError(RuntimeError):
    """A publication or rollback that could not be carried out; nothing unknown to the ledger was changed."""


@dataclasses.dataclass(frozen=True)
class Publication:
    """Where and how bids go: the account, the manager to log in through, and whether Google applies them."""

    customer_id: str
    billable_unit_micros: int
    validate_only: bool = True
    login_customer_id: str | None = None
    retry: RetryPolicy = RetryPolicy()
    batch_operations: int = BATCH_OPERATIONS
    batch_job_threshold: int = BATCH_JOB_THRESHOLD  # more pending changes than this go through BatchJobService


def bid_micros(bids: pd.Series, billable_unit_micros: int) -> np.ndarray:
    """Bids in account currency as micros, rounded down to the currency's billable unit (never above the bid).

    A bid is a float of at most six decimals (a micro), so rounding it to the nearest micro gives its exact amount
    (0.29 × 1e6 is 290000.00000000006); the floor to the unit is then in whole numbers."""
    micros = np.round(bids.to_numpy(dtype="float64") * MICROS_PER_UNIT).astype("int64")
    return micros // billable_unit_micros * billable_unit_micros


def read_account_bids(client, publication: Publication) -> pd.DataFrame:
    """Every keyword of the account now: `ad_group_id`, `criterion_id`, `status` and `cpc_bid_micros`."""
    customer_id = plain_customer_id(publication.customer_id)
    rows, _summary = read_stream(
        client_for(client, publication.login_customer_id),
        customer_id,
        CRITERIA_QUERY,
        "the account's keyword bids",
        publication.retry,
        False,
    )
    records = [
        (
            str(row.ad_group.id),
            str(row.ad_group_criterion.criterion_id),
            enum_name(row.ad_group_criterion, "status"),
            row.ad_group_criterion.cpc_bid_micros if row.ad_group_criterion.HasField("cpc_bid_micros") else None,
        )
        for row in rows
    ]
    frame = pd.DataFrame.from_records(records, columns=["ad_group_id", "criterion_id", "status", "cpc_bid_micros"])
    return frame.astype(
        {"ad_group_id": "string", "criterion_id": "string", "status": "string", "cpc_bid_micros": "Int64"}
    )


def plan_changes(bids: pd.DataFrame, account: pd.DataFrame, publication: Publication) -> pd.DataFrame:
    """The ledger rows of a publication before anything is sent: one per bid that differs from the account's.

    `bids` has `keyword_id`, `ad_group_id`, `criterion_id` and `bid` (account currency). A bid for a keyword the
    account no longer has, or has removed, is `not_sent` with the reason; a bid equal to the account's is left out."""
    missing = [column for column in ("keyword_id", "ad_group_id", "criterion_id", "bid") if column not in bids]
    if missing:
        raise GoogleAdsPublishError(f"the bids lack {missing}: the Google Ads API addresses a keyword by both IDs")
    wanted = pd.DataFrame(
        {
            "keyword_id": bids["keyword_id"].to_numpy(dtype="int64"),
            "ad_group_id": bids["ad_group_id"].astype("string").to_numpy(),
            "criterion_id": bids["criterion_id"].astype("string").to_numpy(),
            "bid_micros": bid_micros(bids["bid"], publication.billable_unit_micros),
        }
    )
    joined = wanted.merge(account, on=["ad_group_id", "criterion_id"], how="left", indicator=True)
    customer_id = plain_customer_id(publication.customer_id)
    joined["resource_name"] = (
        f"customers/{customer_id}/adGroupCriteria/" + joined["ad_group_id"] + "~" + joined["criterion_id"]
    )
    gone = joined["_merge"].eq("left_only").to_numpy()
    removed = joined["status"].eq("REMOVED").fillna(False).to_numpy()
    unchanged = joined["cpc_bid_micros"].eq(joined["bid_micros"]).fillna(False).to_numpy()
    changes = joined[~unchanged | gone | removed].copy()
    reason = np.where(
        changes["_merge"].eq("left_only"),
        "the account has no such keyword (deleted since the report?)",
        np.where(changes["status"].eq("REMOVED").fillna(False), "the keyword was removed since the report", None),
    )
    return _ledger(
        changes.assign(
            action="publish",
            previous_bid_micros=changes["cpc_bid_micros"],
            outcome=np.where(pd.isna(reason), None, NOT_SENT),
            error=reason,
        )
    )


def send_changes(
    client, ledger: pd.DataFrame, publication: Publication, run_id: str, log: Callable[[str], None]
) -> pd.DataFrame:
    """Sends the ledger's pending rows (those without an outcome yet) and records each one's outcome."""
    ledger = ledger.assign(run_id=run_id)
    pending = np.flatnonzero(ledger["outcome"].isna().to_numpy())
    if not len(pending):
        return _ledger(ledger)
    scoped = client_for(client, publication.login_customer_id)
    if not publication.validate_only and len(pending) > publication.batch_job_threshold:
        errors, job = send_batch_job(
            scoped,
            publication.customer_id,
            ledger.iloc[pending],
            retry=publication.retry,
            batch_operations=publication.batch_operations,
            log=log,
        )
        ledger.loc[ledger.index[pending], "request_id"] = job  # the batch job's resource name
        ledger.loc[ledger.index[pending], "sent_at"] = pd.Timestamp.now(tz="UTC").as_unit("us")
        for position, error in errors.items():
            ledger.loc[ledger.index[pending[position]], ["outcome", "error"]] = [FAILED, error]
        return verify(client, ledger, publication, pending)
    batches = [
        pending[start : start + publication.batch_operations]
        for start in range(0, len(pending), publication.batch_operations)
    ]
    for number, rows in enumerate(batches, start=1):
        errors, request_id = _mutate(scoped, publication, ledger.iloc[rows])
        ledger.loc[ledger.index[rows], "request_id"] = request_id
        ledger.loc[ledger.index[rows], "sent_at"] = pd.Timestamp.now(tz="UTC").as_unit("us")
        for position, error in errors.items():
            ledger.loc[ledger.index[rows[position]], ["outcome", "error"]] = [FAILED, error]
        log(
            f"{'validated' if publication.validate_only else 'sent'} batch {number}/{len(batches)}: "
            f"{len(rows) - len(errors):,} accepted, {len(errors):,} refused"
        )
    if publication.validate_only:
        ledger.loc[ledger.index[pending], "outcome"] = ledger["outcome"].iloc[pending].fillna(VALIDATED).to_numpy()
        return _ledger(ledger)
    return verify(client, ledger, publication, pending)


def verify(client, ledger: pd.DataFrame, publication: Publication, sent: np.ndarray) -> pd.DataFrame:
    """Each sent row's outcome as the account now shows it: applied only where the account holds the new bid."""
    account = read_account_bids(client, publication).set_index(["ad_group_id", "criterion_id"])["cpc_bid_micros"]
    rows = ledger.iloc[sent]
    now = account.reindex(pd.MultiIndex.from_arrays([rows["ad_group_id"], rows["criterion_id"]])).to_numpy()
    held = pd.array(now, dtype="Int64") == pd.array(rows["bid_micros"].to_numpy(), dtype="Int64")
    held = np.asarray(held.fillna(False), dtype=bool)
    outcome = np.where(held, APPLIED, FAILED)
    error = rows["error"].to_numpy(dtype=object).copy()
    unexplained = ~held & pd.isna(error)
    error[unexplained] = "not applied: the account does not hold the new bid after the request"
    error[held] = None
    ledger.loc[ledger.index[sent], "outcome"] = outcome
    ledger.loc[ledger.index[sent], "error"] = error
    return _ledger(ledger)


def live_changes(ledger: pd.DataFrame) -> bool:
    """Whether a day's ledger has applied publications that no applied rollback has undone since."""
    applied = ledger[ledger["outcome"].eq(APPLIED)]
    last_action = applied.drop_duplicates(["ad_group_id", "criterion_id"], keep="last")["action"]
    return bool(last_action.eq("publish").any())


def live_publication_days(store: Warehouse) -> list[dt.date]:
    """The days whose publication still has changes in force (applied and not rolled back), oldest first."""
    return [
        day for day in store.list_partitions(tables.GOOGLE_ADS_BID_CHANGES) if live_changes(read_ledger(store, day))
    ]


def plan_rollback(ledger: pd.DataFrame, account: pd.DataFrame) -> pd.DataFrame:
    """The ledger rows that restore the bids a day's publication replaced: its applied changes not rolled back yet,
    where the account still holds the bid set. A keyword changed since (by a person, or a later publication) is
    `not_sent`, with its bid now. For a keyword published twice in a day (a re-run), the first bid it replaced."""
    applied = ledger[ledger["outcome"].eq(APPLIED)]
    current = applied.drop_duplicates(["ad_group_id", "criterion_id"], keep="last")
    to_undo = current[current["action"].eq("publish")][["ad_group_id", "criterion_id", "bid_micros"]]
    first = applied[applied["action"].eq("publish")].drop_duplicates(["ad_group_id", "criterion_id"], keep="first")
    applied = first.drop(columns=["bid_micros"]).merge(to_undo, on=["ad_group_id", "criterion_id"])
    joined = applied.drop(columns=["outcome", "error", "request_id", "sent_at", "run_id"]).merge(
        account[["ad_group_id", "criterion_id", "cpc_bid_micros"]], on=["ad_group_id", "criterion_id"], how="left"
    )
    still_ours = joined["cpc_bid_micros"].eq(joined["bid_micros"]).fillna(False).to_numpy()
    restorable = joined["previous_bid_micros"].notna().to_numpy()
    reason = np.where(
        ~still_ours,
        "changed since the publication: the account's bid is now "
        + joined["cpc_bid_micros"].astype("string").fillna("absent"),
        np.where(restorable, None, "the keyword used its ad group's bid before; set it in the account"),
    )
    return _ledger(
        pd.DataFrame(
            {
                "action": "rollback",
                "keyword_id": joined["keyword_id"],
                "ad_group_id": joined["ad_group_id"],
                "criterion_id": joined["criterion_id"],
                "resource_name": joined["resource_name"],
                "previous_bid_micros": joined["cpc_bid_micros"],
                "bid_micros": joined["previous_bid_micros"],
                "outcome": np.where(pd.isna(reason), None, NOT_SENT),
                "error": reason,
            }
        )
    )


def _mutate(client, publication: Publication, rows: pd.DataFrame) -> tuple[dict[int, str], str | None]:
    """One MutateAdGroupCriteria request for `rows`: the refused operations' errors by position, and the request ID.
    A request that fails whole fails every operation in it, after the retries its status allows."""
    service = client.get_service("AdGroupCriterionService")
    request = as_protobuf(client.get_type("MutateAdGroupCriteriaRequest"))
    request.customer_id = plain_customer_id(publication.customer_id)
    request.partial_failure = True
    request.validate_only = publication.validate_only
    for resource_name, micros in zip(rows["resource_name"], rows["bid_micros"], strict=True):
        operation = request.operations.add()
        operation.update.resource_name = resource_name
        operation.update.cpc_bid_micros = int(micros)
        operation.update_mask.paths.append("cpc_bid_micros")
    retry = publication.retry
    try:
        response = call_with_retries(
            "MutateAdGroupCriteria",
            retry,
            lambda: service.mutate_ad_group_criteria(request=request, timeout=retry.timeout_seconds),
        )
    except GoogleAdsCallError as failure:  # refused whole: every operation in it failed
        return dict.fromkeys(range(len(rows)), failure.reason), failure.request_id
    return _partial_failures(client, as_protobuf(response)), None


def _partial_failures(client, response) -> dict[int, str]:
    """The refused operations of a partial-failure reply, by their index in the request."""
    errors: dict[int, str] = {}
    if not response.HasField("partial_failure_error"):
        return errors
    failure_type = type(as_protobuf(client.get_type("GoogleAdsFailure")))
    for detail in response.partial_failure_error.details:
        failure = failure_type.FromString(detail.value)
        for error in failure.errors:
            code = error.error_code.WhichOneof("error_code")
            name = enum_name(error.error_code, code) if code else "UNKNOWN"
            index = next((e.index for e in error.location.field_path_elements if e.field_name == "operations"), None)
            if index is not None:
                errors[int(index)] = f"{name}: {error.message}"
    return errors


def _ledger(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.reindex(columns=list(LEDGER_COLUMNS))
    for column, dtype in LEDGER_COLUMNS.items():
        if dtype.startswith("datetime64"):
            out[column] = pd.to_datetime(out[column], utc=True).astype(dtype)
        else:
            out[column] = out[column].astype(dtype)
    return out.reset_index(drop=True)


def append_to_ledger(store: Warehouse, day: dt.date, ledger: pd.DataFrame) -> None:
    """Adds `ledger` to the day's ledger: a day published twice (a re-run, a rollback) keeps every row it had."""
    if store.partition_exists(tables.GOOGLE_ADS_BID_CHANGES, day):
        ledger = pd.concat([read_ledger(store, day), ledger], ignore_index=True)
    store.write_partition(tables.GOOGLE_ADS_BID_CHANGES, day, _ledger(ledger))


def read_ledger(store: Warehouse, day: dt.date) -> pd.DataFrame:
    """Every change sent for the bids of `day`, in the order sent; empty where none was."""
    if not store.partition_exists(tables.GOOGLE_ADS_BID_CHANGES, day):
        return _ledger(pd.DataFrame(columns=list(LEDGER_COLUMNS)))
    return _ledger(store.read_partitions(tables.GOOGLE_ADS_BID_CHANGES, [day]))


def ledger_summary(ledger: pd.DataFrame) -> dict[str, int]:
    """Rows by outcome, for a step's metadata and the CLI."""
    return {str(outcome): int(count) for outcome, count in ledger["outcome"].value_counts().items()}
