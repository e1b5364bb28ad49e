"""A day's keyword report read from the Google Ads API: GAQL over `keyword_view`, streamed with `SearchStream`.

The frame uses the landing zone's column names (`daily_bids.schema`) wherever a column exists there, so the API and a
UI export describe a keyword the same way. It also keeps what only the API states exactly:

- `keyword_id` is the criterion ID. It is not unique in an account: the same text and match type has the same ID in
  every ad group that holds it, so one keyword is (`ad_group_id`, `keyword_id`), and both columns are kept.
- `status` is Google's ENABLED, PAUSED or REMOVED. Removed keywords are returned, not filtered: they still had traffic.
- `cost_micros` and `cpc_bid_micros` are Google's integers; `cost` and `max_cpc` are the same amounts in the account
  currency, converted with decimals (a micro is a millionth of a unit, in every currency).
- `max_cpc` is the bid Google holds now, not the bid in force that day: GAQL attributes are current values even when
  the rows are segmented by date.

Days are the account's days: `segments.date` is in the account's time zone, returned with its currency in
`frame.attrs` (see `read_account_settings`).

Each run of consecutive days is one stream. A stream is read whole or not at all: it must end with Google's summary
row, and its rows must add up to it. A stream that fails or is cut is read again from the start, for statuses Google
documents as transient, and otherwise (or when the attempts run out) raises `GoogleAdsReportError`.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from daily_bids.schema import numeric, report_dtypes

MICROS_PER_UNIT = 1_000_000

KEYWORD_VIEW_FIELDS: tuple[str, ...] = (
    "segments.date",
    "campaign.id",
    "campaign.name",
    "ad_group.id",
    "ad_group.name",
    "ad_group_criterion.criterion_id",
    "ad_group_criterion.keyword.text",
    "ad_group_criterion.keyword.match_type",
    "ad_group_criterion.status",
    "ad_group_criterion.cpc_bid_micros",
    "metrics.impressions",
    "metrics.clicks",
    "metrics.cost_micros",
    "metrics.conversions",
    "metrics.conversions_value",
    "metrics.search_impression_share",
)
CUSTOMER_QUERY = "SELECT customer.id, customer.currency_code, customer.time_zone FROM customer"

# Statuses Google's API documentation says to retry with backoff. INTERNAL is also how gRPC reports a connection that
# was reset mid-stream.
RETRYABLE_STATUSES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL"})
# The integer metrics a summary row must equal the sum of (floats such as conversions would need a tolerance).
CHECKED_TOTALS = ("impressions", "clicks", "cost_micros")

# The frame's columns: the landing zone's, then the API's own.
REPORT_COLUMNS: tuple[str, ...] = (
    "date",
    "keyword_id",
    "keyword",
    "campaign",
    "ad_group",
    "campaign_id",
    "ad_group_id",
    "match_type",
    "impressions",
    "clicks",
    "cost",
    "conversions",
    "conversion_value",
    "max_cpc",
    "search_impression_share",
    "status",
    "cost_micros",
    "cpc_bid_micros",
)
_API_DTYPES = {
    # Attribution models give fractional conversions; the landing zone's integer type would lose them.
    "conversions": "Float64",
    "status": "string",
    "cost_micros": "int64",
    "cpc_bid_micros": "Int64",  # a keyword bidding by its ad group's default has none
}
# KeywordMatchType names as the landing zone spells them (Ads Editor's spelling).
_MATCH_TYPES = {"EXACT": "Exact", "PHRASE": "Phrase", "BROAD": "Broad"}


class GoogleAdsReportError(RuntimeError):
    """A report that could not be read whole; the message names the customer, the days and Google's status."""


@dataclasses.dataclass(frozen=True)
class AccountSettings:
    customer_id: str
    currency_code: str
    time_zone: str
    billable_unit_micros: int  # Google's own: every bid must be a whole multiple of it


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_backoff_seconds: float = 2.0  # doubled after each failed attempt
    timeout_seconds: float = 900.0  # one stream; a large account's day takes minutes


def micros_to_units(micros: int) -> Decimal:
    """An amount in micros in the account currency's units, exactly."""
    return Decimal(int(micros)).scaleb(-6)


def keyword_view_query(first_day: dt.date, last_day: dt.date | None = None) -> str:
    """The GAQL for the keyword report of `first_day` through `last_day` (inclusive), in the account's days."""
    last_day = last_day or first_day
    if last_day < first_day:
        raise ValueError(f"the report's last day {last_day} is before its first day {first_day}")
    if first_day == last_day:
        condition = f"segments.date = '{first_day.isoformat()}'"
    else:
        condition = f"segments.date BETWEEN '{first_day.isoformat()}' AND '{last_day.isoformat()}'"
    return f"SELECT {', '.join(KEYWORD_VIEW_FIELDS)} FROM keyword_view WHERE {condition}"


def consecutive_runs(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Days grouped into runs of consecutive days, each as (first, last): one stream per run."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][1] + dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def read_account_settings(
    client, customer_id: str, *, login_customer_id: str | None = None, retry: RetryPolicy = RetryPolicy()
) -> AccountSettings:
    """The account's currency, its billable unit as Google states it, and its time zone (what its days are)."""
    customer_id = plain_customer_id(customer_id)
    rows, _summary = read_stream(
        client_for(client, login_customer_id), customer_id, CUSTOMER_QUERY, "the account settings", retry, False
    )
    if len(rows) != 1:
        raise GoogleAdsReportError(f"customer {customer_id}: expected one customer row, got {len(rows)}")
    currency_code = rows[0].customer.currency_code
    query = (
        "SELECT currency_constant.code, currency_constant.billable_unit_micros FROM currency_constant "
        f"WHERE currency_constant.code = '{currency_code}'"
    )
    units, _summary = read_stream(
        client_for(client, login_customer_id), customer_id, query, f"the billable unit of {currency_code}", retry, False
    )
    if len(units) != 1:
        raise GoogleAdsReportError(f"customer {customer_id}: Google states no billable unit for {currency_code}")
    return AccountSettings(
        customer_id, currency_code, rows[0].customer.time_zone, units[0].currency_constant.billable_unit_micros
    )


def read_active_days(
    client,
    customer_id: str,
    first_day: dt.date,
    last_day: dt.date,
    *,
    login_customer_id: str | None = None,
    retry: RetryPolicy = RetryPolicy(),
) -> list[dt.date]:
    """The days from `first_day` to `last_day` on which the account had impressions: where its history starts, and
    any gap in it. One small query (a row per day), however large the account."""
    customer_id = plain_customer_id(customer_id)
    query = (
        "SELECT segments.date, metrics.impressions FROM customer "
        f"WHERE segments.date BETWEEN '{first_day.isoformat()}' AND '{last_day.isoformat()}'"
    )
    rows, _summary = read_stream(
        client_for(client, login_customer_id), customer_id, query, "the account's days with traffic", retry, False
    )
    return sorted(dt.date.fromisoformat(row.segments.date) for row in rows if row.metrics.impressions > 0)


# A day's totals, for finding restated days: what Google states now against what the warehouse holds.
# Each stored report column a day's totals are taken from, and Google's metric it is compared with.
REPORT_TOTAL_COLUMNS = {
    "clicks": "clicks",
    "cost": "cost_micros",
    "conversions": "conversions",
    "conversion_value": "conversions_value",
}
RESTATED_METRICS = tuple(REPORT_TOTAL_COLUMNS.values())


def read_day_totals(
    client,
    customer_id: str,
    days: Iterable[dt.date],
    *,
    login_customer_id: str | None = None,
    retry: RetryPolicy = RetryPolicy(),
) -> pd.DataFrame:
    """Each day's keyword report totals as Google states them now (its summary row alone: one small reply per day,
    however large the account): `date` and `RESTATED_METRICS`."""
    customer_id = plain_customer_id(customer_id)
    client = client_for(client, login_customer_id)
    fields = ", ".join(["segments.date", *(f"metrics.{metric}" for metric in RESTATED_METRICS)])
    records = []
    for day in sorted(set(days)):
        query = f"SELECT {fields} FROM keyword_view WHERE segments.date = '{day.isoformat()}'"
        _rows, summary = read_stream(client, customer_id, query, f"the totals of {day}", retry, "SUMMARY_ROW_ONLY")
        records.append({"date": day, **{metric: getattr(summary.metrics, metric) for metric in RESTATED_METRICS}})
    return pd.DataFrame.from_records(records, columns=["date", *RESTATED_METRICS])


def day_totals(report: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    """A stored report's totals by day, in the terms Google states them (`RESTATED_METRICS`, cost in micros); a day
    without rows has zeros."""
    values = {
        metric: numeric(report[column]) * (MICROS_PER_UNIT if metric == "cost_micros" else 1)
        for column, metric in REPORT_TOTAL_COLUMNS.items()
    }
    sums = pd.DataFrame(values).assign(date=report["date"].dt.date.to_numpy()).groupby("date").sum()
    return sums.reindex(days, fill_value=0.0).rename_axis("date").reset_index()


def restated_days(stored: pd.DataFrame, stated: pd.DataFrame) -> list[dt.date]:
    """The days whose totals Google states differently from those stored (both frames: `date` and
    `RESTATED_METRICS`). Integer metrics must match exactly, conversions and their value to a millionth."""
    joined = stated.merge(stored, on="date", suffixes=("_stated", "_stored"))
    changed = np.zeros(len(joined), dtype=bool)
    for metric in RESTATED_METRICS:
        now, before = joined[f"{metric}_stated"].to_numpy("float64"), joined[f"{metric}_stored"].to_numpy("float64")
        changed |= ~np.isclose(now, before, rtol=1e-6, atol=1e-6)
    return sorted(joined.loc[changed, "date"])


def read_keyword_report(
    client,
    customer_id: str,
    days: Iterable[dt.date],
    *,
    login_customer_id: str | None = None,
    retry: RetryPolicy = RetryPolicy(),
) -> pd.DataFrame:
    """The keyword report of `days` for `customer_id`, through a `google.ads.googleads.client.GoogleAdsClient`.

    `login_customer_id` is the manager account to log in through, when it differs from the client's own setting.
    The frame's `attrs` hold the account's `customer_id`, `currency_code` and `time_zone`.
    """
    customer_id = plain_customer_id(customer_id)
    client = client_for(client, login_customer_id)
    settings = read_account_settings(client, customer_id, retry=retry)
    records: list[dict[str, Any]] = []
    for first_day, last_day in consecutive_runs(days):
        what = f"the keyword report of {first_day}" + ("" if first_day == last_day else f" to {last_day}")
        rows, summary = read_stream(client, customer_id, keyword_view_query(first_day, last_day), what, retry, True)
        _check_totals(customer_id, what, rows, summary)
        records.extend(_record(row) for row in rows)
    frame = _frame(records)
    frame.attrs = dataclasses.asdict(settings)
    return frame


def plain_customer_id(customer_id: str | int) -> str:
    """Google shows customer IDs as 123-456-7890; the API takes the digits."""
    return str(customer_id).replace("-", "").strip()


def client_for(client, login_customer_id: str | None):
    """The client, logging in through `login_customer_id` when one is given (the caller's client is left as it is)."""
    if login_customer_id is None or plain_customer_id(login_customer_id) == client.login_customer_id:
        return client
    scoped = copy.copy(client)
    scoped.login_customer_id = plain_customer_id(login_customer_id)
    return scoped


def read_stream(client, customer_id: str, query: str, what: str, retry: RetryPolicy, with_summary: bool | str):
    """All rows of one SearchStream (protobuf `GoogleAdsRow`s) and its summary row, retried whole when transient.
    `with_summary`: True for the rows and Google's summary row, "SUMMARY_ROW_ONLY" for the summary row alone."""
    import grpc
    from google.ads.googleads.errors import GoogleAdsException
    from google.api_core.exceptions import GoogleAPICallError

    service = client.get_service("GoogleAdsService")
    request = client.get_type("SearchGoogleAdsStreamRequest")
    request.customer_id = customer_id
    request.query = query
    if with_summary:
        setting = "SUMMARY_ROW_ONLY" if with_summary == "SUMMARY_ROW_ONLY" else "SUMMARY_ROW_WITH_RESULTS"
        request.summary_row_setting = getattr(client.enums.SummaryRowSettingEnum, setting)

    for attempt in range(1, retry.attempts + 1):
        rows: list = []
        summary = None
        try:
            for response in service.search_stream(request=request, timeout=retry.timeout_seconds):
                response = as_protobuf(response)
                rows.extend(response.results)
                if response.HasField("summary_row"):
                    summary = response.summary_row
        except (GoogleAdsException, GoogleAPICallError, grpc.RpcError) as error:
            status, message = status_of(error)
            if status in RETRYABLE_STATUSES and attempt < retry.attempts:
                time.sleep(retry.first_backoff_seconds * 2 ** (attempt - 1))
                continue
            tried = f"after {attempt} attempt(s)" if status in RETRYABLE_STATUSES else "(not retryable)"
            raise GoogleAdsReportError(
                f"customer {customer_id}: reading {what} failed {tried}: {status}: {message}. "
                f"The {len(rows)} row(s) received before the failure were discarded."
            ) from error
        if with_summary and summary is None:
            if attempt < retry.attempts:
                time.sleep(retry.first_backoff_seconds * 2 ** (attempt - 1))
                continue
            raise GoogleAdsReportError(
                f"customer {customer_id}: {what} ended without Google's summary row after {len(rows)} row(s), "
                f"{attempt} time(s): the stream was cut, so nothing of it is returned."
            )
        return rows, summary
    raise AssertionError("unreachable: the last attempt returns or raises")


class GoogleAdsCallError(RuntimeError):
    """A call that failed for good, or after the retries its status allows; the message names Google's status."""

    def __init__(self, what: str, tried: str, reason: str, request_id: str | None = None):
        super().__init__(f"{what} failed {tried}: {reason}")
        self.reason = reason  # Google's status and message, e.g. "RESOURCE_EXHAUSTED: Too many requests"
        self.request_id = request_id


def call_with_retries(what: str, retry: RetryPolicy, send: Callable):
    """`send()`, sent again after a doubling backoff while Google refuses it for a passing reason
    (`RETRYABLE_STATUSES`); otherwise, or when the attempts run out, `GoogleAdsCallError`."""
    import grpc
    from google.ads.googleads.errors import GoogleAdsException
    from google.api_core.exceptions import GoogleAPICallError

    for attempt in range(1, retry.attempts + 1):
        try:
            return send()
        except (GoogleAdsException, GoogleAPICallError, grpc.RpcError) as error:
            status, message = status_of(error)
            if status in RETRYABLE_STATUSES and attempt < retry.attempts:
                time.sleep(retry.first_backoff_seconds * 2 ** (attempt - 1))
                continue
            tried = f"after {attempt} attempt(s)" if status in RETRYABLE_STATUSES else "(not retryable)"
            raise GoogleAdsCallError(what, tried, f"{status}: {message}", getattr(error, "request_id", None)) from error
    raise AssertionError("unreachable: the last attempt returns or raises")


def status_of(error) -> tuple[str, str]:
    """The gRPC status name and Google's message of an error from any layer of the client library."""
    from google.ads.googleads.errors import GoogleAdsException

    if isinstance(error, GoogleAdsException):
        messages = "; ".join(e.message for e in error.failure.errors) or error.error.details()
        return error.error.code().name, f"{messages} (request ID {error.request_id})"
    code = getattr(error, "grpc_status_code", None)  # google.api_core.exceptions.GoogleAPICallError
    if code is None and callable(getattr(error, "code", None)):  # a bare grpc.RpcError
        code = error.code()
    return (code.name if code is not None else "UNKNOWN"), str(getattr(error, "message", "") or error)


def as_protobuf(message):
    """Responses are protobuf messages, or proto-plus wrappers when the client sets `use_proto_plus`."""
    import proto

    return type(message).pb(message) if isinstance(message, proto.Message) else message


def _check_totals(customer_id: str, what: str, rows: list, summary) -> None:
    for metric in CHECKED_TOTALS:
        received = sum(getattr(row.metrics, metric) for row in rows)
        stated = getattr(summary.metrics, metric)
        if received != stated:
            raise GoogleAdsReportError(
                f"customer {customer_id}: {what} is incomplete: its rows' {metric} add up to {received}, "
                f"but Google's summary row states {stated}."
            )


def enum_name(message, field: str) -> str:
    return message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[getattr(message, field)].name


def _record(row) -> dict[str, Any]:
    criterion, metrics = row.ad_group_criterion, row.metrics
    match_type = enum_name(criterion.keyword, "match_type")
    cpc_bid_micros = criterion.cpc_bid_micros if criterion.HasField("cpc_bid_micros") else None
    return {
        "date": row.segments.date,
        "keyword_id": criterion.criterion_id,
        "keyword": criterion.keyword.text,
        "campaign": row.campaign.name,
        "ad_group": row.ad_group.name,
        "campaign_id": str(row.campaign.id),
        "ad_group_id": str(row.ad_group.id),
        "match_type": _MATCH_TYPES.get(match_type),
        "impressions": metrics.impressions,
        "clicks": metrics.clicks,
        "cost": float(micros_to_units(metrics.cost_micros)),
        "conversions": metrics.conversions,
        "conversion_value": metrics.conversions_value,
        "max_cpc": None if cpc_bid_micros is None else float(micros_to_units(cpc_bid_micros)),
        # Google leaves the share out when it does not state it; its "< 10%" arrives as 0.0999.
        "search_impression_share": (
            metrics.search_impression_share if metrics.HasField("search_impression_share") else None
        ),
        "status": enum_name(criterion, "status"),
        "cost_micros": metrics.cost_micros,
        "cpc_bid_micros": cpc_bid_micros,
    }


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    dtypes = {**report_dtypes(), **_API_DTYPES}
    frame = pd.DataFrame.from_records(records, columns=list(REPORT_COLUMNS))
    frame["date"] = pd.to_datetime(frame["date"], format="%Y-%m-%d")
    frame = frame.astype({column: dtypes[column] for column in REPORT_COLUMNS})
    return frame.sort_values(["date", "campaign_id", "ad_group_id", "keyword_id"], ignore_index=True)
