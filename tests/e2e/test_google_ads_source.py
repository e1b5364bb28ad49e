"""The platform's Google Ads resource against the emulator: its configuration from a `google-ads.yaml`, the account's
days, the raw reports it delivers, the currency it refuses, and restated days found by the restatement sensor."""

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest

from assets.automation import google_ads_restatement_sensor
from daily_bids.google_ads.bids import GoogleAdsPublishError, read_ledger
from daily_bids.google_ads.reports import enum_name
from daily_bids.schema import raw_dtypes
from daily_bids.storage import tables
from resources.ad_platform import GoogleAdsAccount, GoogleAdsConfigError
from resources.warehouse import BoundedS3Resource, WarehouseResource
from support import google_ads_emulator
from support.google_ads_emulator import GoogleAdsEmulator, simulated_account

pytestmark = pytest.mark.e2e
ACCOUNT_YESTERDAY = dt.datetime.now(ZoneInfo("America/New_York")).date() - dt.timedelta(days=1)


@pytest.fixture
def emulator(monkeypatch):
    with GoogleAdsEmulator(simulated_account(ACCOUNT_YESTERDAY, days=6, keywords=300)) as running:
        for name, value in running.client_environment().items():
            monkeypatch.setenv(name, value)
        running.check_trusted()
        yield running


def account_resource(emulator, tmp_path, **fields) -> GoogleAdsAccount:
    return GoogleAdsAccount(
        warehouse=WarehouseResource(uri=str(tmp_path / "warehouse"), s3=BoundedS3Resource()),
        customer_id="123-456-7890",
        login_customer_id="9876543210",
        config_file=str(emulator.write_client_config(tmp_path)),
        **{"currency": "JPY", "time_zone": "America/New_York", **fields},
    )


def test_the_account_delivers_raw_reports_of_its_own_days(emulator, tmp_path):
    source = account_resource(emulator, tmp_path)
    days = source.covered_days()
    assert days == [ACCOUNT_YESTERDAY - dt.timedelta(days=n) for n in range(5, -1, -1)]  # its days with traffic

    raw = source.fetch_reports(days[-2:], lambda message: None)
    assert dict(raw.dtypes.astype(str)) == {name: str(dtype) for name, dtype in raw_dtypes().items()}
    rows = [d for d in emulator.account.days if d.date in set(days[-2:])]
    assert len(raw) == len(rows)
    assert raw["source_file"].unique().tolist() == ["google-ads:customers/1234567890/keywordView"]
    assert raw["source_row"].tolist() == list(range(1, len(raw) + 1))
    assert set(raw["status"].dropna()) <= {"ENABLED", "PAUSED", "REMOVED"}
    assert float(raw["cost"].sum()) == sum(d.cost_micros for d in rows) / 1_000_000
    assert source.identity() == {"source": "google_ads", "customer_id": "1234567890"}


def test_an_account_in_another_currency_or_a_broken_config_is_refused_by_name(emulator, tmp_path, monkeypatch):
    with pytest.raises(GoogleAdsConfigError, match="billed in JPY, but the bids are in USD: set BIDS_CURRENCY=JPY"):
        account_resource(emulator, tmp_path, currency="USD").covered_days()
    with pytest.raises(
        GoogleAdsConfigError, match="days of America/New_York, but the partitions are days of UTC: set "
    ):
        account_resource(emulator, tmp_path, time_zone="UTC").covered_days()
    # Google states each currency's billable unit; a product table that bids in finer steps would have every bid
    # refused, so the account is refused first (a hypothetical unit of 100 yen stands in for a wrong table).
    monkeypatch.setitem(google_ads_emulator.BILLABLE_UNIT_MICROS, "JPY", 100_000_000)
    with pytest.raises(
        GoogleAdsConfigError, match="Google bills JPY in units of 100,000,000 micros, but .* steps of 1,000,000"
    ):
        account_resource(emulator, tmp_path).covered_days()
    monkeypatch.undo()
    missing = GoogleAdsAccount(
        warehouse=WarehouseResource(uri=str(tmp_path / "warehouse"), s3=BoundedS3Resource()),
        customer_id="123-456-7890",
        config_file=str(tmp_path / "nowhere.yaml"),
    )
    with pytest.raises(GoogleAdsConfigError, match="nowhere.yaml \\(BIDS_GOOGLE_ADS_CONFIG\\)"):
        missing.covered_days()


def test_a_restated_day_is_found_and_read_again_with_the_features_after_it(emulator, tmp_path):
    source = account_resource(emulator, tmp_path, restatement_days=4)
    store = source.warehouse.warehouse()
    days = source.covered_days()
    for day in days:
        store.write_partition(tables.RAW_REPORT, day, source.fetch_reports([day], lambda message: None))

    def evaluate():
        with dg.build_sensor_context(resources={"ad_platform": source}) as context:
            return google_ads_restatement_sensor(context)

    skipped = evaluate()
    assert isinstance(skipped, dg.SkipReason) and "4 latest stored days match" in skipped.skip_message

    # Conversions arrive for the third-latest day after it was read; an older day, outside the look-back, changes too.
    for target, extra in ((days[-3], 2.5), (days[0], 1.0)):
        index = next(i for i, d in enumerate(emulator.account.days) if d.date == target and d.clicks >= 3)
        day = emulator.account.days[index]
        emulator.account.days[index] = dataclasses.replace(
            day, conversions=day.conversions + extra, conversions_value=day.conversions_value + 1000.0
        )
    request = evaluate()
    assert isinstance(request, dg.RunRequest)
    assert request.tags["dagster/asset_partition_range_start"] == days[-3].isoformat()
    assert request.tags["dagster/asset_partition_range_end"] == days[-1].isoformat()
    assert request.tags["daily_bids/restated_days"] == days[-3].isoformat()
    # One summary-only query per compared day, whatever the account's size.
    summaries = [
        c
        for c in emulator.calls
        if c.method == "SearchStream" and enum_name(c.request, "summary_row_setting") == "SUMMARY_ROW_ONLY"
    ]
    assert len(summaries) == 2 * 4


def test_other_sources_skip_the_restatement_sensor(tmp_path):
    from resources.ad_platform import SimulatedAdPlatform

    simulator = SimulatedAdPlatform(
        warehouse=WarehouseResource(uri=str(tmp_path / "warehouse"), s3=BoundedS3Resource())
    )
    with dg.build_sensor_context(resources={"ad_platform": simulator}) as context:
        result = google_ads_restatement_sensor(context)
    assert isinstance(result, dg.SkipReason) and "not a Google Ads account" in result.skip_message


def test_publications_roll_back_newest_first(emulator, tmp_path):
    source = account_resource(emulator, tmp_path, validate_only=False)
    account = emulator.account
    original = {key: criterion.cpc_bid_micros for key, criterion in account.criteria.items()}
    enabled = sorted(key for key, criterion in account.criteria.items() if criterion.status == "ENABLED")[:20]

    def bids(factor):
        return pd.DataFrame(
            {
                "keyword_id": range(1, len(enabled) + 1),
                "ad_group_id": [str(a) for a, _ in enabled],
                "criterion_id": [str(c) for _, c in enabled],
                "bid": [original[key] // 1_000_000 * factor for key in enabled],
            }
        )

    first, second = ACCOUNT_YESTERDAY - dt.timedelta(days=1), ACCOUNT_YESTERDAY
    assert "20 applied" in source.publish_bids(first, bids(2), "run-1", lambda message: None)
    after_first = {key: criterion.cpc_bid_micros for key, criterion in account.criteria.items()}
    assert "20 applied" in source.publish_bids(second, bids(3), "run-2", lambda message: None)

    with pytest.raises(GoogleAdsPublishError, match=f"the bids of {second} were published after {first} and are live"):
        source.rollback(first, "rollback-1", lambda message: None)
    source.rollback(None, "rollback-2", lambda message: None)  # latest: the second publication
    assert {key: criterion.cpc_bid_micros for key, criterion in account.criteria.items()} == after_first
    source.rollback(first, "rollback-3", lambda message: None)
    assert {key: criterion.cpc_bid_micros for key, criterion in account.criteria.items()} == original
    with pytest.raises(GoogleAdsPublishError, match="no publication .* is live: nothing to roll back"):
        source.rollback(None, "rollback-4", lambda message: None)
    ledger = read_ledger(source.warehouse.warehouse(), first)
    assert list(ledger["action"].value_counts().sort_index().items()) == [("publish", 20), ("rollback", 20)]
