"""An emulator of the Google Ads API on loopback, for tests that drive Google's own `google-ads` client library.

Google's service cannot be reached from here, so this serves the calls the platform makes, over gRPC with TLS:
`GoogleAdsService.SearchStream` (GAQL over `keyword_view` and `customer`),
`AdGroupCriterionService.MutateAdGroupCriteria` (bid updates), and for large accounts `BatchJobService`
(`MutateBatchJob`, `AddBatchJobOperations`, `RunBatchJob`, `ListBatchJobResults`) with the
`google.longrunning.Operations/GetOperation` the client polls a running job with. The method paths and message classes
come from the `google-ads` package itself (its GAPIC transports), so the emulator speaks exactly the client's wire
format. google-ads ships no `*_pb2_grpc` servicers (it is generated with proto-plus), hence the small recording channel
below.

A batch job runs as Google documents it: operations are added while it is pending (each request carrying the sequence
token the previous one returned), `RunBatchJob` starts it, and it finishes only after `batch_job_polls` polls of its
long-running operation, which is then done with neither a response nor an error. Each operation is checked as a
synchronous update is (`_check_operation`) when the job runs, the valid ones are applied, and every operation has a
result with its `operation_index` and, when refused, a google.rpc.Status holding a GoogleAdsFailure.

It behaves like Google where the platform depends on it: credentials in the call metadata are checked (developer token,
OAuth bearer token, and a manager's `login-customer-id` for a client account), errors carry a `GoogleAdsFailure` in the
trailing metadata (so the client raises `GoogleAdsException`), attributes such as `cpc_bid_micros` are today's values
on every day's row, a bid must be a whole number of the currency's billable unit, a removed criterion cannot be
updated, and a request is atomic unless `partial_failure` is set.

Faults are injected per call: a status on the next call(s) of any method (`fail_next`), a stream cut after N rows
(`cut_next_stream`), a reply lost after the call took effect (`lose_next_reply`), or operations of the next batch job
refused with Google's transient internal error (`refuse_in_next_batch_job`).

The client trusts the emulator through gRPC's `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` (see `client_environment`): the
client library builds its channel with gRPC's default roots, and has no option for others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import http.server
import inspect
import ipaddress
import json
import random
import re
import ssl
import tempfile
import threading
import urllib.parse
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent import futures
from importlib import import_module
from pathlib import Path

import grpc
import pandas as pd
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from google.longrunning import operations_pb2

DEVELOPER_TOKEN = "emulator-developer-token"
ACCESS_TOKEN = "emulator-access-token"
REFRESH_TOKEN = "never-sent-refresh-token"
SERVICE_ACCOUNT_EMAIL = "daily-bids@daily-bids-emulator.iam.gserviceaccount.com"
SERVICE_ACCOUNT_KEY_ID = "emulator-key-1"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
CLIENT_SECRET = "never-sent-client-secret"
# A currency's billable unit in micros, as the emulated Google states it: bids must be whole multiples of it (JPY has
# no cents). A table of its own on purpose: the product's (daily_bids/currency.py) is checked against it.
BILLABLE_UNIT_MICROS = {"JPY": 1_000_000, "KRW": 1_000_000, "USD": 10_000, "EUR": 10_000}


def api_version() -> str:
    """The API version the installed client library calls by default (e.g. "v26")."""
    from google.ads.googleads.client import GoogleAdsClient

    return inspect.signature(GoogleAdsClient.get_service).parameters["version"].default


# ---------------------------------------------------------------------------------------------------------------------
# The account


@dataclasses.dataclass
class Criterion:
    """A keyword in one ad group: `customers/{c}/adGroupCriteria/{ad_group_id}~{criterion_id}`."""

    campaign_id: int
    campaign_name: str
    ad_group_id: int
    ad_group_name: str
    criterion_id: int
    text: str
    match_type: str  # KeywordMatchType: EXACT, PHRASE, BROAD
    status: str  # AdGroupCriterionStatus: ENABLED, PAUSED, REMOVED
    cpc_bid_micros: int


@dataclasses.dataclass(frozen=True)
class KeywordDay:
    """One criterion's metrics on one day (the account's time zone). Days without impressions have no row."""

    date: dt.date
    ad_group_id: int
    criterion_id: int
    impressions: int
    clicks: int
    cost_micros: int
    conversions: float
    conversions_value: float
    search_impression_share: float | None  # absent when Google does not state it


@dataclasses.dataclass(frozen=True)
class BidChange:
    resource_name: str
    old_cpc_bid_micros: int
    new_cpc_bid_micros: int
    request_id: str


@dataclasses.dataclass
class BatchJob:
    """A batch job: operations are added while it is PENDING, it runs once, and its results are read when DONE."""

    resource_name: str  # customers/{customer_id}/batchJobs/{id}
    status: str = "PENDING"  # BatchJobStatus: PENDING, RUNNING, DONE
    operations: list = dataclasses.field(default_factory=list)  # MutateOperation protobufs, in the order added
    sequence_token: str = ""  # what the next AddBatchJobOperations must carry; empty before the first
    operation_name: str | None = None  # its long-running operation, once run
    polls_left: int = 0  # GetOperation calls before a running job is done
    refused: frozenset[int] = frozenset()  # operation indexes refused with a transient internal error
    results: list = dataclasses.field(default_factory=list)  # BatchJobResult protobufs, by operation index


@dataclasses.dataclass
class Account:
    customer_id: str
    manager_customer_id: str | None  # when set, calls must log in through it (login-customer-id)
    currency_code: str
    time_zone: str
    criteria: dict[tuple[int, int], Criterion]  # by (ad_group_id, criterion_id)
    days: list[KeywordDay]
    bid_changes: list[BidChange] = dataclasses.field(default_factory=list)  # applied updates, in order
    batch_jobs: dict[str, BatchJob] = dataclasses.field(default_factory=dict)  # by resource name

    def resource_name(self, ad_group_id: int, criterion_id: int) -> str:
        return f"customers/{self.customer_id}/adGroupCriteria/{ad_group_id}~{criterion_id}"

    def rows_on(self, days: set[dt.date]) -> list[tuple[Criterion, KeywordDay]]:
        return [(self.criteria[(d.ad_group_id, d.criterion_id)], d) for d in self.days if d.date in days]


SAMPLE_DAYS = (dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3))
SHARED_CRITERION_ID = 700001  # "running shoes" (exact) in two ad groups: one criterion ID, two keywords
REMOVED_KEYWORD = (22002, 700009)
PAUSED_KEYWORD = (33001, 700010)


def sample_account(seed: int = 29) -> Account:
    """A client account under a manager, in yen and New York time: three campaigns, five ad groups, one criterion ID
    in two ad groups, a removed keyword (traffic on the first day only) and a paused one (no traffic after day one)."""
    yen = 1_000_000
    layout = [
        # campaign, ad group, criterion, text, match type, status, bid in yen
        ((111, "Brand"), (11001, "Brand - core"), 700100, "acme shoes", "EXACT", "ENABLED", 120),
        ((111, "Brand"), (11001, "Brand - core"), 700101, "acme", "PHRASE", "ENABLED", 95),
        ((222, "Generic"), (22001, "Shoes"), SHARED_CRITERION_ID, "running shoes", "EXACT", "ENABLED", 80),
        ((222, "Generic"), (22001, "Shoes"), 700002, "trail shoes", "BROAD", "ENABLED", 60),
        ((222, "Generic"), (22002, "Running"), SHARED_CRITERION_ID, "running shoes", "EXACT", "ENABLED", 70),
        ((222, "Generic"), (22002, "Running"), 700009, "cheap running shoes", "PHRASE", "REMOVED", 40),
        ((333, "Competitors"), (33001, "Rivals"), 700010, "rival shoes", "BROAD", "PAUSED", 55),
        ((333, "Competitors"), (33001, "Rivals"), 700011, "rival sneakers", "PHRASE", "ENABLED", 45),
        ((333, "Competitors"), (33002, "Rivals - exact"), 700012, "rival trainers", "EXACT", "ENABLED", 50),
    ]
    criteria = {
        (ad_group[0], criterion_id): Criterion(
            campaign[0], campaign[1], ad_group[0], ad_group[1], criterion_id, text, match, status, bid * yen
        )
        for campaign, ad_group, criterion_id, text, match, status, bid in layout
    }
    rng = random.Random(seed)
    days: list[KeywordDay] = []
    for day_index, date in enumerate(SAMPLE_DAYS):
        for key, criterion in criteria.items():
            stopped = key in (REMOVED_KEYWORD, PAUSED_KEYWORD) and day_index > 0
            impressions = 0 if stopped else rng.randint(0, 900)
            if impressions == 0:
                continue
            clicks = rng.randint(0, impressions // 10)
            # Each click costs a whole number of yen, at most the bid.
            cost_micros = sum(rng.randint(1, criterion.cpc_bid_micros // yen) for _ in range(clicks)) * yen
            conversions = rng.randint(0, clicks) / 2  # data-driven attribution gives fractions
            share = rng.choice([None, 0.0999, round(rng.uniform(0.1, 0.9), 4)])
            value = round(conversions * rng.uniform(800, 4000), 2)
            days.append(KeywordDay(date, *key, impressions, clicks, cost_micros, conversions, value, share))
    return Account("1234567890", "9876543210", "JPY", "America/New_York", criteria, days)


def simulated_account(last_day: dt.date, days: int, keywords: int = 300, seed: int = 7) -> Account:
    """An account in yen and New York time whose history is the simulator's market (its amounts × 100, in whole yen),
    with Google's identities: four criterion IDs each shared by two ad groups, two keywords removed and two paused
    a week before `last_day` (no traffic since), and bids in whole yen. Its days end on `last_day`."""
    from daily_bids.simulator.market import AdMarketSimulator

    yen = 1_000_000
    simulator = AdMarketSimulator(seed=seed, keywords=keywords)
    dimensions = simulator.keyword_dimensions.astype(str).to_dict("records")
    manual = simulator.manual_bids()
    by_keyword = {}
    for row in dimensions:
        keyword_id = int(row["keyword_id"])
        by_keyword[keyword_id] = Criterion(
            int(row["campaign_id"]),
            row["campaign"],
            int(row["ad_group_id"]),
            row["ad_group"],
            keyword_id,
            row["keyword"],
            row["match_type"].upper(),
            "ENABLED",
            max(1, round(float(manual[keyword_id]) * 100)) * yen,
        )
    ordered = sorted(by_keyword)
    # The last four keywords take the criterion ID (and text) of a keyword in another ad group: one keyword each.
    for own, other in zip(ordered[-4:], ordered[:40:10], strict=True):
        criterion, twin = by_keyword[own], by_keyword[other]
        if criterion.ad_group_id != twin.ad_group_id:
            criterion.criterion_id, criterion.text, criterion.match_type = twin.criterion_id, twin.text, twin.match_type
    stopped = {ordered[1]: "REMOVED", ordered[2]: "REMOVED", ordered[3]: "PAUSED", ordered[4]: "PAUSED"}
    stop_day = last_day - dt.timedelta(days=7)
    history: list[KeywordDay] = []
    for offset in range(days - 1, -1, -1):
        day = last_day - dt.timedelta(days=offset)
        report = simulator.report(day)
        for row in report.itertuples(index=False):
            if row.keyword_id in stopped and day > stop_day:
                continue
            criterion = by_keyword[int(row.keyword_id)]
            share = None if pd.isna(row.search_impression_share) else float(row.search_impression_share)
            history.append(
                KeywordDay(
                    day,
                    criterion.ad_group_id,
                    criterion.criterion_id,
                    int(row.impressions),
                    int(row.clicks),
                    round(float(row.cost) * 100) * yen,
                    float(row.conversions),
                    round(float(row.conversion_value) * 100, 2),
                    share,
                )
            )
    for keyword_id, status in stopped.items():
        by_keyword[keyword_id].status = status
    criteria = {(c.ad_group_id, c.criterion_id): c for c in by_keyword.values()}
    return Account("1234567890", "9876543210", "JPY", "America/New_York", criteria, history)


# ---------------------------------------------------------------------------------------------------------------------
# GAQL: just enough for `SELECT fields FROM resource [WHERE segments.date = 'd' | BETWEEN 'd1' AND 'd2']`


class QueryProblem(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code  # a QueryErrorEnum name


@dataclasses.dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    resource: str
    days: frozenset[dt.date] | None  # None: no date filter
    currency_code: str | None = None  # the one filter on currency_constant


_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<resource>\w+)(?:\s+WHERE\s+(?P<where>.+?))?\s*$", re.I | re.S
)
_DATE_EQUALS = re.compile(r"^segments\.date\s*=\s*'(\d{4}-\d{2}-\d{2})'$", re.I)
_DATE_BETWEEN = re.compile(r"^segments\.date\s+BETWEEN\s+'(\d{4}-\d{2}-\d{2})'\s+AND\s+'(\d{4}-\d{2}-\d{2})'$", re.I)


# What each keyword_view field reads, from (account, criterion, day).
_KEYWORD_VIEW_VALUES = {
    "segments.date": lambda account, criterion, day: day.date.isoformat(),
    "keyword_view.resource_name": lambda account, criterion, day: (
        f"customers/{account.customer_id}/keywordViews/{criterion.ad_group_id}~{criterion.criterion_id}"
    ),
    "campaign.id": lambda account, criterion, day: criterion.campaign_id,
    "campaign.name": lambda account, criterion, day: criterion.campaign_name,
    "ad_group.id": lambda account, criterion, day: criterion.ad_group_id,
    "ad_group.name": lambda account, criterion, day: criterion.ad_group_name,
    "ad_group_criterion.resource_name": lambda account, criterion, day: account.resource_name(
        criterion.ad_group_id, criterion.criterion_id
    ),
    "ad_group_criterion.criterion_id": lambda account, criterion, day: criterion.criterion_id,
    "ad_group_criterion.keyword.text": lambda account, criterion, day: criterion.text,
    "ad_group_criterion.keyword.match_type": lambda account, criterion, day: criterion.match_type,
    "ad_group_criterion.status": lambda account, criterion, day: criterion.status,
    # An attribute, not a metric: today's bid on every day's row, as Google reports it.
    "ad_group_criterion.cpc_bid_micros": lambda account, criterion, day: criterion.cpc_bid_micros,
    "metrics.impressions": lambda account, criterion, day: day.impressions,
    "metrics.clicks": lambda account, criterion, day: day.clicks,
    "metrics.cost_micros": lambda account, criterion, day: day.cost_micros,
    "metrics.conversions": lambda account, criterion, day: day.conversions,
    "metrics.conversions_value": lambda account, criterion, day: day.conversions_value,
    "metrics.search_impression_share": lambda account, criterion, day: day.search_impression_share,
}
# What each ad_group_criterion field reads, from (account, criterion): the keyword as it is now.
_CRITERION_VALUES = {
    "ad_group.id": lambda account, criterion: criterion.ad_group_id,
    "ad_group_criterion.criterion_id": lambda account, criterion: criterion.criterion_id,
    "ad_group_criterion.status": lambda account, criterion: criterion.status,
    "ad_group_criterion.cpc_bid_micros": lambda account, criterion: criterion.cpc_bid_micros,
    "ad_group_criterion.resource_name": lambda account, criterion: account.resource_name(
        criterion.ad_group_id, criterion.criterion_id
    ),
}
# The only filter the emulator takes on ad_group_criterion: its criteria are all positive keywords.
_KEYWORDS_ONLY = re.compile(
    r"^ad_group_criterion\.type\s*=\s*'KEYWORD'\s+AND\s+ad_group_criterion\.negative\s*=\s*FALSE$", re.I
)
# The account's totals by day (`FROM customer` segmented by date): the emulator serves impressions.
_CUSTOMER_DAY_FIELDS = {"segments.date", "metrics.impressions"}
# Google's currency constants: `FROM currency_constant WHERE currency_constant.code = 'XXX'`.
_CURRENCY_VALUES = {
    "currency_constant.code": lambda code: code,
    "currency_constant.billable_unit_micros": lambda code: BILLABLE_UNIT_MICROS[code],
}
_CURRENCY_CODE = re.compile(r"^currency_constant\.code\s*=\s*'([A-Z]{3})'$")
_CUSTOMER_VALUES = {
    "customer.id": lambda account: int(account.customer_id),
    "customer.resource_name": lambda account: f"customers/{account.customer_id}",
    "customer.currency_code": lambda account: account.currency_code,
    "customer.time_zone": lambda account: account.time_zone,
    "customer.manager": lambda account: False,
}
# The metrics a summary row adds up (a share is not additive, so Google leaves it out of a sum).
_ADDITIVE_METRICS = ("impressions", "clicks", "cost_micros", "conversions", "conversions_value")


def parse_query(text: str) -> Query:
    match = _QUERY.match(text)
    if match is None:
        raise QueryProblem("QUERY_ERROR", f"the emulator cannot parse this query: {text!r}")
    fields = tuple(f.strip() for f in match["fields"].split(","))
    resource = match["resource"].lower()
    known = {
        "keyword_view": _KEYWORD_VIEW_VALUES,
        "customer": _CUSTOMER_VALUES,
        "ad_group_criterion": _CRITERION_VALUES,
        "currency_constant": _CURRENCY_VALUES,
    }.get(resource)
    if known is None:
        raise QueryProblem("BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", f"the emulator does not serve FROM {resource}")
    day_fields = _CUSTOMER_DAY_FIELDS if resource == "customer" else set()
    unknown = [f for f in fields if f not in known and f not in day_fields]
    if unknown:
        raise QueryProblem("UNRECOGNIZED_FIELD", f"unrecognized field(s) for {resource}: {unknown}")
    days = None
    if match["where"]:
        condition = match["where"].strip()
        if resource == "ad_group_criterion" and _KEYWORDS_ONLY.match(condition):
            return Query(fields, resource, None)
        if resource == "currency_constant" and (code := _CURRENCY_CODE.match(condition)):
            return Query(fields, resource, None, code[1])
        if equals := _DATE_EQUALS.match(condition):
            days = frozenset({dt.date.fromisoformat(equals[1])})
        elif between := _DATE_BETWEEN.match(condition):
            first, last = dt.date.fromisoformat(between[1]), dt.date.fromisoformat(between[2])
            days = frozenset(first + dt.timedelta(n) for n in range((last - first).days + 1))
        else:
            raise QueryProblem("QUERY_ERROR", f"the emulator only filters on segments.date: {condition!r}")
    if resource == "customer" and "segments.date" in fields and not set(fields) <= _CUSTOMER_DAY_FIELDS:
        raise QueryProblem(
            "QUERY_ERROR", f"the emulator serves customer by day only with {sorted(_CUSTOMER_DAY_FIELDS)}"
        )
    if "segments.date" in fields and days is None:
        raise QueryProblem("EXPECTED_FILTERS_ON_DATE_RANGE", "segments.date is selected without a finite date range")
    if resource == "keyword_view" and ("segments.date" not in fields or days is None):
        # Without segments.date Google sums over the range; the emulator only serves rows by day.
        raise QueryProblem("QUERY_ERROR", "the emulator serves keyword_view by day: select and filter segments.date")
    return Query(fields, resource, days)


# ---------------------------------------------------------------------------------------------------------------------
# The package's own service definitions


class _RecordingChannel(grpc.Channel):
    """Stands in for a channel while a GAPIC transport builds its stubs: records each method's path and messages."""

    def __init__(self):
        self.methods: dict[str, tuple[type, type]] = {}

    def _record(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        # proto-plus's `serialize`/`deserialize` are bound to the message class.
        self.methods[method] = (request_serializer.__self__, response_deserializer.__self__)

        def never_called(*args, **kwargs):
            raise RuntimeError(f"{method} was only recorded, not served")

        return never_called

    unary_unary = unary_stream = stream_unary = stream_stream = _record

    def subscribe(self, callback, try_to_connect=False):
        pass

    def unsubscribe(self, callback):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@functools.cache
def service_methods(service: str, version: str) -> dict[str, tuple[str, type, type]]:
    """`{"SearchStream": (path, request proto class, response proto class)}` from the package's transport for
    `service` (e.g. "GoogleAdsService")."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", service).lower()
    module = import_module(f"google.ads.googleads.{version}.services.services.{snake}.transports.grpc")
    transport = getattr(module, f"{service}GrpcTransport")(channel=_RecordingChannel())
    recorder = _RecordingChannel()
    # The transport wraps its channel in a logging interceptor that defers stub creation; build the stubs again
    # straight on the recorder.
    transport._logged_channel = recorder
    transport._stubs = {}
    for name, member in inspect.getmembers(type(transport)):
        # The operations client (long-running operations) is google.longrunning's own service, not this one's.
        if isinstance(member, property) and name not in ("grpc_channel", "kind", "host", "operations_client"):
            getattr(transport, name)
    return {
        path.rsplit("/", 1)[1]: (path, _protobuf_class(request), _protobuf_class(response))
        for path, (request, response) in recorder.methods.items()
    }


def _protobuf_class(message_class: type) -> type:
    """The protobuf class of a proto-plus class; a protobuf class (e.g. google.longrunning's Operation) as it is."""
    return message_class.pb() if hasattr(message_class, "pb") else message_class


# ---------------------------------------------------------------------------------------------------------------------
# TLS from a test CA


@dataclasses.dataclass(frozen=True)
class TestCertificates:
    ca_path: Path
    server_key_pem: bytes
    server_chain_pem: bytes


_CERTIFICATE_DIRECTORY: tempfile.TemporaryDirectory | None = None


@functools.cache
def process_certificates() -> TestCertificates:
    """One test CA per process: gRPC reads its default roots once per process, so every emulator of a process must be
    signed by the CA it read. Removed when the process exits."""
    global _CERTIFICATE_DIRECTORY
    _CERTIFICATE_DIRECTORY = tempfile.TemporaryDirectory(prefix="google-ads-emulator-")
    return make_certificates(Path(_CERTIFICATE_DIRECTORY.name))


def make_certificates(directory: Path) -> TestCertificates:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Daily Bids test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # certificate and CRL signing only
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_path = directory / "test-ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(pem))
    key_pem = server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return TestCertificates(ca_path, key_pem, server_cert.public_bytes(pem) + ca_cert.public_bytes(pem))


@dataclasses.dataclass(frozen=True)
class _KeyPair:
    private_pem: str
    public_pem: str


def _service_account_key() -> _KeyPair:
    """The service account's RSA key (Google signs its JWT grants with RS256)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.Encoding.PEM
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _KeyPair(private.decode(), public.decode())


_SERVICE_ACCOUNT_KEY = _service_account_key()


# ---------------------------------------------------------------------------------------------------------------------
# The server


@dataclasses.dataclass(frozen=True)
class Fault:
    method: str | None  # "SearchStream", "MutateAdGroupCriteria", "RunBatchJob", ...; None: whichever comes next
    code: grpc.StatusCode | None  # the status the call ends with; None: a stream that ends cleanly but early
    after_rows: int | None = None  # a stream cut: rows sent before it
    after_applying: bool = False  # a mutate that is applied, and then its reply is lost


@dataclasses.dataclass(frozen=True)
class Call:
    method: str
    metadata: dict[str, str]
    request: object  # the request protobuf


@dataclasses.dataclass(frozen=True)
class _OperationProblem:
    error: tuple[str, str, str]  # (error_code field, enum value name, message)
    location: list[tuple[str, int | None]]  # field path elements: (field name, index)


@dataclasses.dataclass(frozen=True)
class _BidUpdate:
    criterion: Criterion
    cpc_bid_micros: int


class _Abort(Exception):
    """Ends a call with a status and, when Google would send one, a GoogleAdsFailure."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        errors: list[tuple[str, str, str]] = (),
        locations: list[list[tuple[str, int | None]]] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.errors = errors  # (error_code oneof field, enum value name, message)
        self.locations = locations  # each error's field path, when it has one


class GoogleAdsEmulator:
    """Start with `with GoogleAdsEmulator() as emulator:`; point the client at `emulator.endpoint` (see
    `client_environment` for the CA)."""

    def __init__(
        self,
        account: Account | None = None,
        rows_per_response: int = 10_000,
        batch_job_polls: int = 2,
        results_per_page: int = 1_000,
    ):
        self.account = account or sample_account()
        self.version = api_version()
        self.rows_per_response = rows_per_response
        self.batch_job_polls = batch_job_polls  # a running job is done at its Nth poll
        self.results_per_page = results_per_page  # the most ListBatchJobResults returns at once
        self._batch_job_ids = 0
        self._refuse_in_next_job: frozenset[int] = frozenset()
        self.calls: list[Call] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.certificates = process_certificates()
        self._types = import_module(f"google.ads.googleads.{self.version}.errors.types.errors")
        self._server: grpc.Server | None = None
        self._token_server: http.server.ThreadingHTTPServer | None = None
        self.port: int | None = None
        self.tokens_granted = 0

    # -- lifecycle

    @property
    def endpoint(self) -> str:
        return f"localhost:{self.port}"

    def client_environment(self) -> dict[str, str]:
        """The environment a client process needs to trust the emulator: the google-ads client builds its channel
        with gRPC's default roots and has no option for others, and gRPC takes its default roots from here."""
        return {
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(self.certificates.ca_path),
            "REQUESTS_CA_BUNDLE": str(self.certificates.ca_path),  # the OAuth token endpoint, through requests
        }

    def check_trusted(self, timeout_seconds: float = 5.0) -> None:
        """Raises unless a TLS channel with gRPC's default roots (as the client builds it) reaches the emulator.

        gRPC loads its default roots once per process: a process that opened a TLS channel before
        `client_environment()` was set trusts only the system's CAs, and every call would fail as UNAVAILABLE."""
        with grpc.secure_channel(self.endpoint, grpc.ssl_channel_credentials()) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=timeout_seconds)
            except grpc.FutureTimeoutError:
                raise RuntimeError(
                    f"no TLS connection to the emulator at {self.endpoint} with gRPC's default roots: set "
                    f"{self.client_environment()} before the process opens its first TLS gRPC channel"
                ) from None

    @property
    def token_uri(self) -> str:
        return f"https://localhost:{self._token_server.server_address[1]}/token"

    def write_client_config(self, directory: Path) -> Path:
        """A `google-ads.yaml` as a user writes one for a service account, and the account's JSON key beside it.

        The key's `token_uri` is this emulator's OAuth token endpoint, which checks the signed JWT the client sends
        (Google's own grant, RFC 7523) and answers with the access token the API side accepts."""
        key_path = directory / "service-account.json"
        key_path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "daily-bids-emulator",
                    "private_key_id": SERVICE_ACCOUNT_KEY_ID,
                    "private_key": _SERVICE_ACCOUNT_KEY.private_pem,
                    "client_email": SERVICE_ACCOUNT_EMAIL,
                    "client_id": "100000000000000000001",
                    "token_uri": self.token_uri,
                }
            )
        )
        config_path = directory / "google-ads.yaml"
        config_path.write_text(
            f"developer_token: {DEVELOPER_TOKEN}\n"
            f"json_key_file_path: {key_path}\n"
            f"endpoint: {self.endpoint}\n"
            "use_proto_plus: False\n"
        )
        return config_path

    def _start_token_server(self) -> None:
        emulator = self

        class TokenEndpoint(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = urllib.parse.parse_qs(body)
                status, reply = emulator._grant(form)
                payload = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("localhost", 0), TokenEndpoint)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as directory:
            chain, key = Path(directory) / "chain.pem", Path(directory) / "key.pem"
            chain.write_bytes(self.certificates.server_chain_pem)
            key.write_bytes(self.certificates.server_key_pem)
            context.load_cert_chain(chain, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._token_server = server

    def _grant(self, form: dict[str, list[str]]) -> tuple[int, dict]:
        """Google's token endpoint for a service account: a JWT signed by the account's key, for this audience."""
        from google.auth import exceptions, jwt

        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type"}
        try:
            # The audience is Google's token endpoint whatever the key's token_uri: google-auth signs it so.
            claims = jwt.decode(
                form["assertion"][0], certs=_SERVICE_ACCOUNT_KEY.public_pem, audience=GOOGLE_TOKEN_AUDIENCE
            )
        except (exceptions.GoogleAuthError, ValueError, KeyError) as error:
            return 400, {"error": "invalid_grant", "error_description": str(error)}
        if claims.get("iss") != SERVICE_ACCOUNT_EMAIL:
            return 400, {"error": "invalid_grant", "error_description": "unknown service account"}
        with self._lock:
            self.tokens_granted += 1
        return 200, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}

    def start(self) -> GoogleAdsEmulator:
        self._start_token_server()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handlers = {
            "GoogleAdsService": {"SearchStream": (grpc.unary_stream_rpc_method_handler, self._search_stream)},
            "AdGroupCriterionService": {
                "MutateAdGroupCriteria": (grpc.unary_unary_rpc_method_handler, self._mutate_ad_group_criteria)
            },
            "BatchJobService": {
                "MutateBatchJob": (grpc.unary_unary_rpc_method_handler, self._mutate_batch_job),
                "AddBatchJobOperations": (grpc.unary_unary_rpc_method_handler, self._add_batch_job_operations),
                "RunBatchJob": (grpc.unary_unary_rpc_method_handler, self._run_batch_job),
                "ListBatchJobResults": (grpc.unary_unary_rpc_method_handler, self._list_batch_job_results),
            },
        }
        for service, methods in handlers.items():
            definitions = service_methods(service, self.version)
            rpc_handlers = {}
            for name, (make_handler, behaviour) in methods.items():
                path, request_type, _response_type = definitions[name]
                rpc_handlers[name] = make_handler(
                    behaviour,
                    request_deserializer=request_type.FromString,
                    response_serializer=lambda message: message.SerializeToString(),
                )
            service_name = path.split("/")[1]
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service_name, rpc_handlers),))
        # The client polls a running batch job through google.longrunning's own service, on the same channel.
        get_operation = grpc.unary_unary_rpc_method_handler(
            self._get_operation,
            request_deserializer=operations_pb2.GetOperationRequest.FromString,
            response_serializer=lambda message: message.SerializeToString(),
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("google.longrunning.Operations", {"GetOperation": get_operation}),)
        )
        credentials = grpc.ssl_server_credentials(
            [(self.certificates.server_key_pem, self.certificates.server_chain_pem)]
        )
        self.port = server.add_secure_port("localhost:0", credentials)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._token_server is not None:
            self._token_server.shutdown()
            self._token_server.server_close()
            self._token_server = None
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    def __enter__(self) -> GoogleAdsEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- fault injection

    def fail_next(self, code: grpc.StatusCode, times: int = 1, method: str | None = None, after_calls: int = 0) -> None:
        """The next `times` calls (of `method`, or of any) end with `code` before doing anything; with
        `after_calls`, only once that many calls have gone through."""
        with self._lock:
            self._faults.extend(Fault(method, None) for _ in range(after_calls))  # passes: calls left alone
            self._faults.extend(Fault(method, code) for _ in range(times))

    def cut_next_stream(self, after_rows: int, code: grpc.StatusCode | None = grpc.StatusCode.INTERNAL) -> None:
        """The next SearchStream sends `after_rows` rows, then ends with `code` (a reset connection reads as INTERNAL
        or UNAVAILABLE), or with None ends cleanly, as if the day had no more rows."""
        with self._lock:
            self._faults.append(Fault("SearchStream", code, after_rows))

    def lose_next_reply(
        self, code: grpc.StatusCode = grpc.StatusCode.DEADLINE_EXCEEDED, method: str = "MutateAdGroupCriteria"
    ) -> None:
        """The next `method` (MutateAdGroupCriteria or AddBatchJobOperations) takes effect, then ends with `code`: the
        client never learns it did."""
        with self._lock:
            self._faults.append(Fault(method, code, after_applying=True))

    def refuse_in_next_batch_job(self, operation_indexes) -> None:
        """The next batch job run refuses these operations (by index) with Google's transient internal error and
        applies the rest: a job that fails some operations for no fault of theirs."""
        with self._lock:
            self._refuse_in_next_job = frozenset(operation_indexes)

    def _take_fault(self, method: str, stream_rows: int | None = None, after_applying: bool = False) -> Fault | None:
        """The first pending fault for this call. A stream cut waits for a stream longer than its cut."""
        with self._lock:
            for fault in self._faults:
                if fault.after_applying != after_applying:
                    continue
                if fault.after_rows is None and stream_rows is None and fault.method in (None, method):
                    self._faults.remove(fault)
                    return fault
                if fault.after_rows is not None and stream_rows is not None and stream_rows > fault.after_rows:
                    self._faults.remove(fault)
                    return fault
        return None

    # -- common checks

    def _begin(
        self, method: str, request, context: grpc.ServicerContext, request_id: str, customer_id: str | None = None
    ) -> None:
        """Records the call, then refuses it as Google would (credentials, customer) or with an injected status.
        `customer_id`: the customer of a call that names it in a resource name rather than a `customer_id` field."""
        metadata = {key: value for key, value in context.invocation_metadata() if not key.endswith("-bin")}
        with self._lock:
            self.calls.append(Call(method, metadata, request))
        context.set_trailing_metadata((("request-id", request_id),))
        if metadata.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            raise _Abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "Request is missing required authentication credential.",
                [("authentication_error", "OAUTH_TOKEN_INVALID", "The OAuth access token is missing or invalid.")],
            )
        if metadata.get("developer-token") != DEVELOPER_TOKEN:
            raise _Abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "The developer token is missing or invalid.",
                [("authentication_error", "DEVELOPER_TOKEN_INVALID", "The developer token is not valid.")],
            )
        customer_id = request.customer_id if customer_id is None else customer_id
        if customer_id != self.account.customer_id:
            raise _Abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "The caller does not have permission",
                [
                    (
                        "authorization_error",
                        "USER_PERMISSION_DENIED",
                        f"User doesn't have permission to access customer {customer_id}.",
                    )
                ],
            )
        login = metadata.get("login-customer-id")
        manager = self.account.manager_customer_id
        if manager is not None and login != manager:
            raise _Abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "The caller does not have permission",
                [
                    (
                        "authorization_error",
                        "USER_PERMISSION_DENIED",
                        "User doesn't have permission to access customer. Note: If you're accessing a client "
                        "customer, the manager's customer id must be set in the 'login-customer-id' header.",
                    )
                ],
            )
        fault = self._take_fault(method)
        if fault is not None and fault.code is not None:
            errors = []
            if fault.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                errors = [("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED", "Too many requests. Retry in 1 second.")]
            raise _Abort(fault.code, f"injected fault: {fault.code.name}", errors)

    def _abort(self, context: grpc.ServicerContext, abort: _Abort, request_id: str) -> None:
        metadata = [("request-id", request_id)]
        if abort.errors:
            failure = self._failure(abort.errors, request_id, abort.locations)
            metadata.append((f"google.ads.googleads.{self.version}.errors.googleadsfailure-bin", failure))
        context.set_trailing_metadata(tuple(metadata))
        context.abort(abort.code, str(abort))

    def _failure(self, errors, request_id: str, locations: list[list[tuple[str, int | None]]] | None = None) -> bytes:
        """A serialized GoogleAdsFailure: `errors` as (error_code field, enum name, message)."""
        failure = self._types.GoogleAdsFailure.pb()(request_id=request_id)
        for index, (field, name, message) in enumerate(errors):
            error = failure.errors.add(message=message)
            enum_field = error.error_code.DESCRIPTOR.fields_by_name[field]
            setattr(error.error_code, field, enum_field.enum_type.values_by_name[name].number)
            for element_name, element_index in (locations or [[]] * len(errors))[index]:
                element = error.location.field_path_elements.add(field_name=element_name)
                if element_index is not None:
                    element.index = element_index
        return failure.SerializeToString()

    # -- GoogleAdsService.SearchStream

    def _search_stream(self, request, context: grpc.ServicerContext) -> Iterator:
        request_id = _new_request_id()
        try:
            self._begin("SearchStream", request, context, request_id)
            try:
                query = parse_query(request.query)
            except QueryProblem as problem:
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT, str(problem), [("query_error", problem.code, str(problem))]
                )
            rows = self._rows(query)
            summary_setting = _enum_name(request, "summary_row_setting")
            summary = self._summary(query, rows) if summary_setting.startswith("SUMMARY_ROW") else None
            if summary_setting == "SUMMARY_ROW_ONLY":
                rows = []
        except _Abort as abort:
            self._abort(context, abort, request_id)
            return
        _path, _request_type, response_type = service_methods("GoogleAdsService", self.version)["SearchStream"]
        fault = self._take_fault("SearchStream", stream_rows=len(rows))
        cut_at = fault.after_rows if fault is not None else None
        sent = 0
        batches = [rows[i : i + self.rows_per_response] for i in range(0, len(rows), self.rows_per_response)] or [[]]
        for number, batch in enumerate(batches):
            if cut_at is not None and sent + len(batch) > cut_at:
                batch = batch[: cut_at - sent]
                if batch:
                    yield response_type(results=batch, request_id=request_id)
                if fault.code is not None:
                    context.abort(fault.code, f"stream cut after {cut_at} rows")
                return
            response = response_type(results=batch, request_id=request_id)
            response.field_mask.paths.extend(query.fields)
            if summary is not None and number == len(batches) - 1:
                response.summary_row.CopyFrom(summary)
            sent += len(batch)
            yield response

    def _row_type(self):
        return import_module(f"google.ads.googleads.{self.version}.services.types.google_ads_service").GoogleAdsRow.pb()

    def _rows(self, query: Query) -> list:
        row_type = self._row_type()
        if query.resource == "customer" and query.days is not None:
            totals: dict[dt.date, int] = {}
            for day in self.account.days:
                if day.date in query.days:
                    totals[day.date] = totals.get(day.date, 0) + day.impressions
            rows = []
            for date, impressions in sorted(totals.items()):
                row = row_type()
                _set_field(row, "segments.date", date.isoformat())
                if "metrics.impressions" in query.fields:
                    row.metrics.impressions = impressions
                rows.append(row)
            return rows
        if query.resource == "customer":
            row = row_type()
            for field in query.fields:
                _set_field(row, field, _CUSTOMER_VALUES[field](self.account))
            return [row]
        if query.resource == "currency_constant":
            if query.currency_code not in BILLABLE_UNIT_MICROS:
                return []
            row = row_type()
            for field in query.fields:
                _set_field(row, field, _CURRENCY_VALUES[field](query.currency_code))
            return [row]
        if query.resource == "ad_group_criterion":
            rows = []
            for criterion in self.account.criteria.values():
                row = row_type()
                for field in query.fields:
                    _set_field(row, field, _CRITERION_VALUES[field](self.account, criterion))
                rows.append(row)
            return rows
        rows = []
        for criterion, day in self.account.rows_on(query.days):
            row = row_type()
            for field in query.fields:
                value = _KEYWORD_VIEW_VALUES[field](self.account, criterion, day)
                if value is not None:
                    _set_field(row, field, value)
            rows.append(row)
        return rows

    def _summary(self, query: Query, rows: list):
        summary = self._row_type()()
        for metric in _ADDITIVE_METRICS:
            if f"metrics.{metric}" in query.fields:
                setattr(summary.metrics, metric, sum(getattr(row.metrics, metric) for row in rows))
        return summary

    # -- AdGroupCriterionService.MutateAdGroupCriteria

    def _mutate_ad_group_criteria(self, request, context: grpc.ServicerContext):
        request_id = _new_request_id()
        try:
            self._begin("MutateAdGroupCriteria", request, context, request_id)
            _path, _request_type, response_type = service_methods("AdGroupCriterionService", self.version)[
                "MutateAdGroupCriteria"
            ]
            checked = [self._check_operation(index, op) for index, op in enumerate(request.operations)]
            failed = [outcome for outcome in checked if isinstance(outcome, _OperationProblem)]
            if failed and not request.partial_failure:
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "Request contains an invalid argument.",
                    [problem.error for problem in failed],
                    [problem.location for problem in failed],
                )
        except _Abort as abort:
            # An atomic request that fails applies nothing; its errors point at their operations.
            self._abort(context, abort, request_id)
            return None
        response = response_type()
        if failed:
            self._partial_failure(response, failed, request_id)
        if request.validate_only:
            return response
        with_resource = _enum_name(request, "response_content_type") == "MUTABLE_RESOURCE"
        with self._lock:
            for outcome in checked:
                result = response.results.add()
                if isinstance(outcome, _OperationProblem):
                    continue  # a failed operation's result is empty, as Google returns it
                criterion, new_bid = outcome.criterion, outcome.cpc_bid_micros
                resource_name = self.account.resource_name(criterion.ad_group_id, criterion.criterion_id)
                self.account.bid_changes.append(BidChange(resource_name, criterion.cpc_bid_micros, new_bid, request_id))
                criterion.cpc_bid_micros = new_bid
                result.resource_name = resource_name
                if with_resource:
                    result.ad_group_criterion.resource_name = resource_name
                    result.ad_group_criterion.criterion_id = criterion.criterion_id
                    result.ad_group_criterion.cpc_bid_micros = new_bid
                    _set_field(result, "ad_group_criterion.status", criterion.status)
        lost = self._take_fault("MutateAdGroupCriteria", after_applying=True)
        if lost is not None:
            context.abort(lost.code, f"injected fault after applying: {lost.code.name}")
        return response

    def _partial_failure(self, response, failed, request_id: str) -> None:
        """Google's partial failure: a google.rpc.Status whose details hold one GoogleAdsFailure for all failed
        operations, each error located at its operation's index."""
        self._failure_status(response.partial_failure_error, failed, request_id)
        response.partial_failure_error.message = "Multiple errors in 'details'. First error: " + failed[0].error[2]

    def _failure_status(self, status, failed, request_id: str) -> None:
        """Fills a google.rpc.Status with INVALID_ARGUMENT and one GoogleAdsFailure holding `failed`'s errors."""
        failure = self._types.GoogleAdsFailure.pb().FromString(
            self._failure([problem.error for problem in failed], request_id, [problem.location for problem in failed])
        )
        status.code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
        status.message = failed[0].error[2]
        status.details.add().Pack(failure)

    # -- BatchJobService and the long-running operation of a running job

    def _batch_job(self, resource_name: str) -> BatchJob:
        """The account's batch job of that name (call with the lock held)."""
        job = self.account.batch_jobs.get(resource_name)
        if job is None:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Request contains an invalid argument.",
                [("mutate_error", "RESOURCE_NOT_FOUND", f"Resource was not found: {resource_name!r}.")],
            )
        return job

    def _batch_job_error(self, name: str, message: str) -> _Abort:
        return _Abort(grpc.StatusCode.INVALID_ARGUMENT, message, [("batch_job_error", name, message)])

    def _mutate_batch_job(self, request, context: grpc.ServicerContext):
        request_id = _new_request_id()
        try:
            self._begin("MutateBatchJob", request, context, request_id)
            kind = request.operation.WhichOneof("operation")
            with self._lock:
                if kind == "create":
                    self._batch_job_ids += 1
                    resource_name = f"customers/{self.account.customer_id}/batchJobs/{self._batch_job_ids}"
                    self.account.batch_jobs[resource_name] = BatchJob(resource_name)
                elif kind == "remove":
                    resource_name = request.operation.remove
                    if self._batch_job(resource_name).status != "PENDING":
                        raise self._batch_job_error("CAN_ONLY_REMOVE_PENDING_JOB", "Only a pending job can be removed.")
                    del self.account.batch_jobs[resource_name]
                else:
                    raise _Abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "Request contains an invalid argument.",
                        [("mutate_error", "MUTATE_NOT_ALLOWED", "A batch job operation creates or removes a job.")],
                    )
        except _Abort as abort:
            self._abort(context, abort, request_id)
            return None
        _path, _request_type, response_type = service_methods("BatchJobService", self.version)["MutateBatchJob"]
        response = response_type()
        response.result.resource_name = resource_name
        return response

    def _add_batch_job_operations(self, request, context: grpc.ServicerContext):
        request_id = _new_request_id()
        try:
            self._begin("AddBatchJobOperations", request, context, request_id, _customer_of(request.resource_name))
            if not request.mutate_operations:
                raise self._batch_job_error("EMPTY_OPERATIONS", "The request has no operations.")
            with self._lock:
                job = self._batch_job(request.resource_name)
                if job.status != "PENDING":
                    raise self._batch_job_error(
                        "CANNOT_MODIFY_JOB_AFTER_JOB_STARTS_RUNNING", "The job cannot be modified once it runs."
                    )
                if request.sequence_token != job.sequence_token:
                    raise self._batch_job_error(
                        "INVALID_SEQUENCE_TOKEN", "The sequence token is not the one the last request returned."
                    )
                job.operations.extend(request.mutate_operations)
                job.sequence_token = uuid.uuid4().hex
                total, token = len(job.operations), job.sequence_token
        except _Abort as abort:
            self._abort(context, abort, request_id)
            return None
        lost = self._take_fault("AddBatchJobOperations", after_applying=True)
        if lost is not None:
            context.abort(lost.code, f"injected fault after adding: {lost.code.name}")
        _path, _request_type, response_type = service_methods("BatchJobService", self.version)["AddBatchJobOperations"]
        return response_type(total_operations=total, next_sequence_token=token)

    def _run_batch_job(self, request, context: grpc.ServicerContext):
        request_id = _new_request_id()
        try:
            self._begin("RunBatchJob", request, context, request_id, _customer_of(request.resource_name))
            with self._lock:
                job = self._batch_job(request.resource_name)
                if job.status != "PENDING":
                    raise self._batch_job_error(
                        "CANNOT_MODIFY_JOB_AFTER_JOB_STARTS_RUNNING", "The job has already been run."
                    )
                if not job.operations:
                    raise self._batch_job_error("EMPTY_OPERATIONS", "The job has no operations.")
                job.status = "RUNNING"
                job.operation_name = f"customers/{self.account.customer_id}/operations/{uuid.uuid4().hex[:16]}"
                job.polls_left = self.batch_job_polls
                job.refused, self._refuse_in_next_job = self._refuse_in_next_job, frozenset()
                return self._operation_of(job)
        except _Abort as abort:
            self._abort(context, abort, request_id)
            return None

    def _get_operation(self, request, context: grpc.ServicerContext):
        """google.longrunning.Operations/GetOperation: a running job is done at its `batch_job_polls`th poll."""
        request_id = _new_request_id()
        try:
            self._begin("GetOperation", request, context, request_id, _customer_of(request.name))
            with self._lock:
                job = next(
                    (job for job in self.account.batch_jobs.values() if job.operation_name == request.name), None
                )
                if job is None:
                    raise _Abort(grpc.StatusCode.NOT_FOUND, f"Operation {request.name!r} was not found.")
                if job.status == "RUNNING":
                    job.polls_left -= 1
                    if job.polls_left <= 0:
                        self._execute(job)
                return self._operation_of(job)
        except _Abort as abort:
            self._abort(context, abort, request_id)
            return None

    def _operation_of(self, job: BatchJob):
        """The job's long-running operation: done, when done, with neither a response nor an error (Google's
        RunBatchJob documentation: the results are read with ListBatchJobResults)."""
        batch_job = import_module(f"google.ads.googleads.{self.version}.resources.types.batch_job").BatchJob
        metadata = batch_job.BatchJobMetadata.pb()(
            operation_count=len(job.operations), executed_operation_count=len(job.results)
        )
        operation = operations_pb2.Operation(name=job.operation_name, done=job.status == "DONE")
        operation.metadata.Pack(metadata)
        return operation

    def _execute(self, job: BatchJob) -> None:
        """Runs a job (with the lock held): each operation checked as a synchronous update is, the valid ones applied,
        and a result for every one. Bid changes name the job in place of a request ID."""
        batch_job_service = import_module(f"google.ads.googleads.{self.version}.services.types.batch_job_service")
        for index, mutate in enumerate(job.operations):
            result = batch_job_service.BatchJobResult.pb()(operation_index=index)
            outcome = self._check_operation(index, mutate.ad_group_criterion_operation)
            if index in job.refused and not isinstance(outcome, _OperationProblem):
                outcome = _OperationProblem(
                    ("internal_error", "TRANSIENT_ERROR", "An internal error has occurred. Retry the operation."),
                    [("operations", index)],
                )
            if isinstance(outcome, _OperationProblem):
                self._failure_status(result.status, [outcome], job.resource_name)
            else:
                criterion, new_bid = outcome.criterion, outcome.cpc_bid_micros
                resource_name = self.account.resource_name(criterion.ad_group_id, criterion.criterion_id)
                self.account.bid_changes.append(
                    BidChange(resource_name, criterion.cpc_bid_micros, new_bid, job.resource_name)
                )
                criterion.cpc_bid_micros = new_bid
                result.mutate_operation_response.ad_group_criterion_result.resource_name = resource_name
            job.results.append(result)
        job.status = "DONE"

    def _list_batch_job_results(self, request, context: grpc.ServicerContext):
        request_id = _new_request_id()
        try:
            self._begin("ListBatchJobResults", request, context, request_id, _customer_of(request.resource_name))
            if request.page_size < 0:
                raise self._batch_job_error("INVALID_PAGE_SIZE", "The page size is negative.")
            if request.page_token and not request.page_token.isdigit():
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "Request contains an invalid argument.",
                    [("request_error", "INVALID_PAGE_TOKEN", "The page token is not valid.")],
                )
            with self._lock:
                job = self._batch_job(request.resource_name)
                if job.status != "DONE":
                    raise self._batch_job_error("RESULTS_NOT_READY", "The job has not finished.")
                start = int(request.page_token or 0)
                end = start + min(request.page_size or self.results_per_page, self.results_per_page)
                page, more = job.results[start:end], end < len(job.results)
        except _Abort as abort:
            self._abort(context, abort, request_id)
            return None
        _path, _request_type, response_type = service_methods("BatchJobService", self.version)["ListBatchJobResults"]
        return response_type(results=page, next_page_token=str(end) if more else "")

    def _check_operation(self, index: int, operation):
        """The update an operation asks for, or why Google would refuse it."""

        def problem(field: str, name: str, message: str, *path: str):
            return _OperationProblem((field, name, message), [("operations", index), *((p, None) for p in path)])

        if operation.WhichOneof("operation") != "update":
            return problem("mutate_error", "MUTATE_NOT_ALLOWED", "The emulator only updates criteria.")
        mask = list(operation.update_mask.paths)
        if not mask:
            return problem("field_mask_error", "FIELD_MASK_MISSING", "The field mask is missing.", "update_mask")
        if mask != ["cpc_bid_micros"]:
            return problem(
                "mutate_error",
                "MUTATE_NOT_ALLOWED",
                f"The emulator only updates cpc_bid_micros, not {mask}.",
                "update_mask",
            )
        match = re.fullmatch(r"customers/(\d+)/adGroupCriteria/(\d+)~(\d+)", operation.update.resource_name)
        key = (int(match[2]), int(match[3])) if match and match[1] == self.account.customer_id else None
        criterion = self.account.criteria.get(key) if key else None
        if criterion is None:
            return problem(
                "mutate_error",
                "RESOURCE_NOT_FOUND",
                f"Resource was not found: {operation.update.resource_name!r}.",
                "update",
                "resource_name",
            )
        if criterion.status == "REMOVED":
            return problem(
                "context_error",
                "OPERATION_NOT_PERMITTED_FOR_REMOVED_RESOURCE",
                "The operation is not allowed for removed resources.",
                "update",
            )
        bid = operation.update.cpc_bid_micros
        unit = BILLABLE_UNIT_MICROS[self.account.currency_code]
        if bid < unit:
            return problem("bidding_error", "BID_TOO_SMALL", "Bid is below the minimum.", "update", "cpc_bid_micros")
        if bid % unit:
            return problem(
                "bidding_error",
                "BID_TOO_MANY_FRACTIONAL_DIGITS",
                f"Bid is not a multiple of the billable unit of {self.account.currency_code}.",
                "update",
                "cpc_bid_micros",
            )
        return _BidUpdate(criterion, bid)


def emulator_client(
    emulator: GoogleAdsEmulator,
    *,
    login_customer_id: str | None = None,
    use_proto_plus: bool = False,
    developer_token: str = DEVELOPER_TOKEN,
):
    """Google's own `GoogleAdsClient`, pointed at the emulator, with OAuth credentials that carry an unexpired
    access token and a token URI on a closed loopback port: nothing is ever refreshed from, or sent to, Google."""
    from google.ads.googleads.client import GoogleAdsClient
    from google.oauth2.credentials import Credentials

    credentials = Credentials(
        token=ACCESS_TOKEN,
        expiry=dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1),  # google-auth wants naive UTC
        refresh_token=REFRESH_TOKEN,
        client_id="emulator-client.apps.googleusercontent.com",
        client_secret=CLIENT_SECRET,
        token_uri="https://127.0.0.1:9/token",  # a closed port: a refresh would fail here, never reach Google
    )
    return GoogleAdsClient(
        credentials=credentials,
        developer_token=developer_token,
        endpoint=emulator.endpoint,
        login_customer_id=login_customer_id,
        use_proto_plus=use_proto_plus,
    )


def _set_field(message, path: str, value) -> None:
    """Sets a dotted field on a protobuf message; enum values are given by name, as GAQL spells them."""
    *parents, leaf = path.split(".")
    for name in parents:
        message = getattr(message, name)
    field = message.DESCRIPTOR.fields_by_name[leaf]
    if field.enum_type is not None and isinstance(value, str):
        value = field.enum_type.values_by_name[value].number
    setattr(message, leaf, value)


def _enum_name(message, field: str) -> str:
    return message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[getattr(message, field)].name


def _customer_of(resource_name: str) -> str:
    """The customer ID a resource name starts with (customers/{customer_id}/...), or "" for none."""
    match = re.match(r"customers/(\d+)/", resource_name)
    return match[1] if match else ""


def _new_request_id() -> str:
    return uuid.uuid4().hex[:22]
