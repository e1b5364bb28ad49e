"""The Google Ads API through Google's own client library, against the emulator on loopback (TLS, a test CA).

The client is the real `GoogleAdsClient`: its endpoint is the emulator's, gRPC trusts the test CA through
`GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`, and its OAuth credentials carry an unexpired access token (with a token URI on a
closed loopback port), so nothing is ever refreshed from, or sent to, Google.
"""

from decimal import Decimal

import grpc
import pandas as pd
import pytest

from daily_bids.google_ads.reports import GoogleAdsReportError, RetryPolicy, micros_to_units, read_keyword_report
from support.google_ads_emulator import (
    CLIENT_SECRET,
    DEVELOPER_TOKEN,
    PAUSED_KEYWORD,
    REFRESH_TOKEN,
    REMOVED_KEYWORD,
    SAMPLE_DAYS,
    SHARED_CRITERION_ID,
    GoogleAdsEmulator,
    emulator_client,
)

CUSTOMER = "123-456-7890"  # as the UI shows it; the reader sends the digits
MANAGER = "9876543210"
TWO_DAYS = list(SAMPLE_DAYS[:2])
# Fast retries: the faults are injected, so there is nothing to wait for.
QUICK = RetryPolicy(attempts=3, first_backoff_seconds=0.01, timeout_seconds=20)


@pytest.fixture
def emulator(monkeypatch):
    with GoogleAdsEmulator(rows_per_response=4) as running:  # small batches, so a stream is several messages
        for name, value in running.client_environment().items():
            monkeypatch.setenv(name, value)
        running.check_trusted()
        yield running


def google_ads_client(emulator, developer_token=DEVELOPER_TOKEN, login_customer_id=MANAGER, use_proto_plus=False):
    return emulator_client(
        emulator, login_customer_id=login_customer_id, use_proto_plus=use_proto_plus, developer_token=developer_token
    )


def expected_rows(account, days) -> list[tuple]:
    """The account's own data for `days`, in the reader's terms, built from the emulator's records, not its replies."""
    rows = []
    for criterion, day in account.rows_on(set(days)):
        rows.append(
            (
                pd.Timestamp(day.date),
                str(criterion.ad_group_id),
                criterion.criterion_id,
                str(criterion.campaign_id),
                criterion.campaign_name,
                criterion.ad_group_name,
                criterion.text,
                criterion.match_type.title(),
                criterion.status,
                criterion.cpc_bid_micros,
                day.impressions,
                day.clicks,
                day.cost_micros,
                day.conversions,
                day.conversions_value,
                day.search_impression_share,
            )
        )
    return sorted(rows)


def decimal_of(number) -> Decimal:
    """A float as the shortest decimal that reads back as it (what `float(Decimal)` of a micros amount gives)."""
    return Decimal(repr(float(number)))


def read_rows(frame: pd.DataFrame) -> list[tuple]:
    columns = [
        "date",
        "ad_group_id",
        "keyword_id",
        "campaign_id",
        "campaign",
        "ad_group",
        "keyword",
        "match_type",
        "status",
        "cpc_bid_micros",
        "impressions",
        "clicks",
        "cost_micros",
        "conversions",
        "conversion_value",
        "search_impression_share",
    ]
    plain = frame[columns].astype(object).where(frame[columns].notna(), None)
    return sorted(tuple(row) for row in plain.itertuples(index=False))


def test_two_days_are_read_exactly(emulator):
    client = google_ads_client(emulator, login_customer_id=None)
    frame = read_keyword_report(client, CUSTOMER, TWO_DAYS, login_customer_id=MANAGER, retry=QUICK)

    assert read_rows(frame) == expected_rows(emulator.account, TWO_DAYS)
    assert frame.attrs == {
        "customer_id": "1234567890",
        "currency_code": "JPY",
        "time_zone": "America/New_York",
        "billable_unit_micros": 1_000_000,
    }
    # Money in the account currency is the micros over a million, exactly, row by row and in total.
    for micros, cost, bid_micros, max_cpc in frame[["cost_micros", "cost", "cpc_bid_micros", "max_cpc"]].itertuples(
        index=False
    ):
        assert decimal_of(cost) == Decimal(int(micros)) / 1_000_000
        assert decimal_of(max_cpc) == Decimal(int(bid_micros)) / 1_000_000
    account_micros = sum(d.cost_micros for d in emulator.account.days if d.date in TWO_DAYS)
    assert sum(decimal_of(c) for c in frame["cost"]) == Decimal(account_micros) / 1_000_000
    # Yen costs are whole units; the conversion itself is exact to the micro at any size.
    assert micros_to_units(123_456_789_012_345_678) == Decimal("123456789012.345678")
    # The landing zone's spelling of the match type, and the contract's dtypes for its columns.
    assert set(frame["match_type"]) <= {"Exact", "Phrase", "Broad"}
    assert frame["date"].dtype == "datetime64[ns]" and frame["keyword_id"].dtype == "int64"

    # Two consecutive days are one stream; the manager was logged in through; the refresh token never left.
    searches = [call for call in emulator.calls if call.method == "SearchStream"]
    keyword_queries = [c.request.query for c in searches if "keyword_view" in c.request.query]
    assert len(keyword_queries) == 1
    assert keyword_queries[0].endswith("FROM keyword_view WHERE segments.date BETWEEN '2026-03-01' AND '2026-03-02'")
    assert {c.metadata["login-customer-id"] for c in searches} == {MANAGER}
    assert all(c.metadata["developer-token"] == DEVELOPER_TOKEN for c in searches)
    sent = " ".join(value for call in emulator.calls for value in call.metadata.values())
    assert REFRESH_TOKEN not in sent and CLIENT_SECRET not in sent


def test_days_apart_are_separate_streams_with_either_message_flavour(emulator):
    apart = [SAMPLE_DAYS[0], SAMPLE_DAYS[2]]
    frame = read_keyword_report(google_ads_client(emulator, use_proto_plus=True), CUSTOMER, apart, retry=QUICK)

    assert read_rows(frame) == expected_rows(emulator.account, apart)
    queries = [c.request.query for c in emulator.calls if "keyword_view" in c.request.query]
    assert [q.split("WHERE ")[1] for q in queries] == ["segments.date = '2026-03-01'", "segments.date = '2026-03-03'"]


def test_a_criterion_in_two_ad_groups_is_two_keywords(emulator):
    frame = read_keyword_report(google_ads_client(emulator), CUSTOMER, TWO_DAYS, retry=QUICK)

    shared = frame[frame["keyword_id"] == SHARED_CRITERION_ID]
    assert set(shared["ad_group_id"]) == {"22001", "22002"}
    assert set(shared["ad_group"]) == {"Shoes", "Running"}
    for date, day in shared.groupby("date"):
        # Each ad group's own traffic and bid, not one row for both.
        expected = {
            (str(d.ad_group_id), d.impressions, d.cost_micros)
            for d in emulator.account.days
            if d.criterion_id == SHARED_CRITERION_ID and pd.Timestamp(d.date) == date
        }
        assert set(zip(day["ad_group_id"], day["impressions"], day["cost_micros"], strict=True)) == expected
    assert not frame.duplicated(["date", "ad_group_id", "keyword_id"]).any()
    assert frame.duplicated(["date", "keyword_id"]).any()  # the criterion ID alone is not a key


def test_removed_and_paused_keywords_come_with_their_status(emulator):
    frame = read_keyword_report(google_ads_client(emulator), CUSTOMER, SAMPLE_DAYS, retry=QUICK)

    for (ad_group_id, criterion_id), status in [(REMOVED_KEYWORD, "REMOVED"), (PAUSED_KEYWORD, "PAUSED")]:
        rows = frame[(frame["ad_group_id"] == str(ad_group_id)) & (frame["keyword_id"] == criterion_id)]
        # Traffic before the change is kept, under the status Google states now.
        assert list(rows["status"]) == [status]
        assert list(rows["date"]) == [pd.Timestamp(SAMPLE_DAYS[0])]
    others = frame[~frame["keyword_id"].isin([REMOVED_KEYWORD[1], PAUSED_KEYWORD[1]])]
    assert set(others["status"]) == {"ENABLED"}


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_a_transient_failure_is_read_again(emulator, code):
    client = google_ads_client(emulator)
    emulator.fail_next(code, method="SearchStream")

    frame = read_keyword_report(client, CUSTOMER, TWO_DAYS, retry=QUICK)

    assert read_rows(frame) == expected_rows(emulator.account, TWO_DAYS)
    # The settings twice (the first refused), the currency's billable unit, then the report.
    assert len([c for c in emulator.calls if c.method == "SearchStream"]) == 4


def test_quota_exhaustion_that_persists_raises_a_clear_error(emulator):
    emulator.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, times=QUICK.attempts, method="SearchStream")

    with pytest.raises(GoogleAdsReportError, match=r"customer 1234567890: .* after 3 attempt\(s\): RESOURCE_EXHAUSTED"):
        read_keyword_report(google_ads_client(emulator), CUSTOMER, TWO_DAYS, retry=QUICK)


@pytest.mark.parametrize("end", [grpc.StatusCode.INTERNAL, None], ids=["reset", "ended-early"])
def test_a_cut_stream_never_returns_a_partial_day(emulator, end):
    client = google_ads_client(emulator)
    rows_on_day = len(emulator.account.rows_on({SAMPLE_DAYS[0]}))
    for _ in range(QUICK.attempts):
        emulator.cut_next_stream(after_rows=5, code=end)  # mid-stream: rows_per_response is 4

    expected = r"reading the keyword report of 2026-03-01 failed .*INTERNAL" if end else "without Google's summary row"
    with pytest.raises(GoogleAdsReportError, match=expected):
        read_keyword_report(client, CUSTOMER, [SAMPLE_DAYS[0]], retry=QUICK)
    assert rows_on_day > 5

    # One cut is read again from the start: the whole day, each row once.
    emulator.cut_next_stream(after_rows=5, code=end)
    frame = read_keyword_report(client, CUSTOMER, [SAMPLE_DAYS[0]], retry=QUICK)
    assert read_rows(frame) == expected_rows(emulator.account, [SAMPLE_DAYS[0]])


def test_calls_without_googles_credentials_are_refused(emulator):
    with pytest.raises(GoogleAdsReportError, match="PERMISSION_DENIED: .*'login-customer-id' header"):
        read_keyword_report(google_ads_client(emulator, login_customer_id=None), CUSTOMER, TWO_DAYS, retry=QUICK)
    with pytest.raises(GoogleAdsReportError, match=r"\(not retryable\): UNAUTHENTICATED: The developer token"):
        read_keyword_report(google_ads_client(emulator, developer_token="wrong"), CUSTOMER, TWO_DAYS, retry=QUICK)
    assert all(call.metadata.get("developer-token") in (DEVELOPER_TOKEN, "wrong") for call in emulator.calls)


# ---------------------------------------------------------------------------------------------------------------------
# Bid updates, straight through the client (the publisher built on them: tests/e2e/test_google_ads_publish.py)


def bid_update(client, resource_name: str, cpc_bid_micros: int):
    operation = client.get_type("AdGroupCriterionOperation")
    operation.update.resource_name = resource_name
    operation.update.cpc_bid_micros = cpc_bid_micros
    operation.update_mask.paths.append("cpc_bid_micros")
    return operation


def mutate(client, operations, *, partial_failure: bool, validate_only: bool = False):
    service = client.get_service("AdGroupCriterionService")
    request = client.get_type("MutateAdGroupCriteriaRequest")
    request.customer_id = "1234567890"
    request.operations.extend(operations)
    request.partial_failure = partial_failure
    request.validate_only = validate_only
    return service.mutate_ad_group_criteria(request=request)


def failure_of(client, response) -> list[tuple[int, str, str]]:
    """(operation index, error field, error name) of each error in a response's partial failure."""
    errors = []
    for detail in response.partial_failure_error.details:
        failure = client.get_type("GoogleAdsFailure")
        assert detail.Unpack(failure)
        for error in failure.errors:
            field = error.error_code.WhichOneof("error_code")
            value = getattr(error.error_code, field)
            name = error.error_code.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[value].name
            errors.append((error.location.field_path_elements[0].index, field, name))
    return errors


def bids(account) -> dict[tuple[int, int], int]:
    return {key: criterion.cpc_bid_micros for key, criterion in account.criteria.items()}


def test_bid_updates_apply_what_is_valid_and_name_what_is_not(emulator):
    client = google_ads_client(emulator)
    account = emulator.account
    yen = 1_000_000
    before = bids(account)
    operations = [
        bid_update(client, account.resource_name(11001, 700100), 130 * yen),
        bid_update(client, account.resource_name(22002, SHARED_CRITERION_ID), 75 * yen),
        bid_update(client, account.resource_name(22001, SHARED_CRITERION_ID), 80 * yen + 500_000),  # half a yen
        bid_update(client, account.resource_name(*REMOVED_KEYWORD), 50 * yen),
        bid_update(client, account.resource_name(22001, 999999), 50 * yen),
    ]

    response = mutate(client, operations, partial_failure=True)

    assert [r.resource_name for r in response.results] == [operations[0].update.resource_name] + [
        operations[1].update.resource_name
    ] + ["", "", ""]
    assert failure_of(client, response) == [
        (2, "bidding_error", "BID_TOO_MANY_FRACTIONAL_DIGITS"),
        (3, "context_error", "OPERATION_NOT_PERMITTED_FOR_REMOVED_RESOURCE"),
        (4, "mutate_error", "RESOURCE_NOT_FOUND"),
    ]
    changed = {key: bid for key, bid in bids(account).items() if bid != before[key]}
    assert changed == {(11001, 700100): 130 * yen, (22002, SHARED_CRITERION_ID): 75 * yen}  # the other ad group kept
    assert [(c.old_cpc_bid_micros, c.new_cpc_bid_micros) for c in account.bid_changes] == [
        (before[(11001, 700100)], 130 * yen),
        (before[(22002, SHARED_CRITERION_ID)], 75 * yen),
    ]
    # The report states the new bids: GAQL attributes are current values, on every day's row.
    frame = read_keyword_report(client, CUSTOMER, [SAMPLE_DAYS[0]], retry=QUICK)
    keyed = frame.set_index(["ad_group_id", "keyword_id"])["cpc_bid_micros"]
    assert keyed[("11001", 700100)] == 130 * yen and keyed[("22001", SHARED_CRITERION_ID)] == before[(22001, 700001)]


def test_a_dry_run_or_a_failed_atomic_request_changes_nothing(emulator):
    from google.ads.googleads.errors import GoogleAdsException
    from google.api_core.exceptions import ResourceExhausted

    client = google_ads_client(emulator)
    account = emulator.account
    before = bids(account)
    valid = bid_update(client, account.resource_name(11001, 700100), 140_000_000)
    invalid = bid_update(client, account.resource_name(*REMOVED_KEYWORD), 50_000_000)

    mutate(client, [valid], partial_failure=True, validate_only=True)
    with pytest.raises(GoogleAdsException) as refused:
        mutate(client, [valid, invalid], partial_failure=False)
    emulator.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, method="MutateAdGroupCriteria")
    with pytest.raises(ResourceExhausted, match="RESOURCE_EXHAUSTED"):
        mutate(client, [valid], partial_failure=True)

    assert bids(account) == before and account.bid_changes == []
    assert refused.value.error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [e.location.field_path_elements[0].index for e in refused.value.failure.errors] == [1]
