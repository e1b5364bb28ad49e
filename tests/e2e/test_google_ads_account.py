"""A Google Ads account runs itself: `python -m daily_bids run` from an empty warehouse to bids applied in the account,
through the Google Ads API (the emulator, on loopback with TLS), with faults on the way; then `bids rollback`.

The user's side is as the README sets it up: a `google-ads.yaml` for a service account, whose key's token endpoint is
the emulator's own (Google's JWT grant), and the `BIDS_GOOGLE_ADS_*` settings. The account is in yen and New York
time, with criterion IDs shared by ad groups, removed and paused keywords. What is checked is the emulator's account.
"""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import grpc
import pandas as pd
import pytest
from test_readme import readme_block, run_block

from daily_bids.google_ads.bids import APPLIED, VALIDATED
from daily_bids.storage import tables
from daily_bids.storage.warehouse import Warehouse
from support.deployment import deployment_env
from support.google_ads_emulator import (
    ACCESS_TOKEN,
    DEVELOPER_TOKEN,
    SERVICE_ACCOUNT_KEY_ID,
    GoogleAdsEmulator,
    simulated_account,
)

pytestmark = pytest.mark.e2e
YEN = 1_000_000
# The account's yesterday, in its own time zone: the latest complete day Google reports.
ACCOUNT_YESTERDAY = dt.datetime.now(ZoneInfo("America/New_York")).date() - dt.timedelta(days=1)


def test_a_run_from_an_empty_warehouse_applies_the_bids_and_a_rollback_restores_them(tmp_path):
    account = simulated_account(ACCOUNT_YESTERDAY, days=25, keywords=300)
    bids_before = {key: criterion.cpc_bid_micros for key, criterion in account.criteria.items()}
    with GoogleAdsEmulator(account) as emulator:
        emulator.write_client_config(tmp_path)  # ~/google-ads.yaml, with HOME in tmp_path
        env = {**deployment_env(tmp_path, **emulator.client_environment()), "HOME": str(tmp_path)}
        # Faults on the way: a report stream refused, a report stream cut mid-way, and the quota at the first
        # publication request. Each is retried; none may leave a trace in the reports or the account.
        emulator.fail_next(grpc.StatusCode.UNAVAILABLE, method="SearchStream", after_calls=2)
        emulator.cut_next_stream(after_rows=1_000)
        emulator.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, times=2, method="MutateAdGroupCriteria")

        # docs/google-ads.md's commands, as written: a dry run, the same bids applied, and a rollback.
        block = readme_block("BIDS_GOOGLE_ADS_CONFIG=~/google-ads.yaml")
        *exports, dry_run, publish, apply, rollback = block.strip().splitlines()
        setup = "\n".join(exports) + "\n"
        assert publish.startswith("export BIDS_GOOGLE_ADS_PUBLISH=apply")
        done = run_block(setup + dry_run, env)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        assert f"bidding from the report of {ACCOUNT_YESTERDAY}" in done.stdout
        assert re.search(r"bids from min to max +[\d,]+ to [\d,]+\n", done.stdout)  # whole yen, no cents
        mutates = [call for call in emulator.calls if call.method == "MutateAdGroupCriteria"]
        assert mutates and all(call.request.validate_only for call in mutates) and not account.bid_changes

        setup += publish + "\n"
        applied_run = run_block(setup + apply, env)
        assert applied_run.returncode == 0, applied_run.stdout[-4000:] + applied_run.stderr[-4000:]

        store = Warehouse(str(tmp_path / "warehouse"))
        # Every day was read exactly: the validated reports hold each (ad group, criterion) day the account has.
        first = min(store.list_partitions(tables.RAW_REPORT))
        days = [d for d in store.list_partitions(tables.RAW_REPORT) if d >= first]
        raw = store.read_partitions(tables.RAW_REPORT, days)
        expected = {
            (pd.Timestamp(d.date), str(d.ad_group_id), d.criterion_id, d.clicks, d.cost_micros)
            for d in account.days
            if d.date in set(days)
        }
        read = {
            (row.date, row.ad_group_id, int(row.keyword_id), int(row.clicks), round(float(row.cost) * YEN))
            for row in raw.itertuples()
        }
        assert read == expected

        # A bid for every enabled keyword the account reported, none for removed or paused ones, each ad group's own.
        bid_day = ACCOUNT_YESTERDAY
        bids = store.read_partitions(tables.BIDS, [bid_day])
        keys = set(zip(bids["ad_group_id"], bids["criterion_id"], strict=True))
        reported = {(str(d.ad_group_id), str(d.criterion_id)) for d in account.days}
        enabled = {(str(a), str(c)) for (a, c), criterion in account.criteria.items() if criterion.status == "ENABLED"}
        assert keys == reported & enabled
        shared = [c for c, count in pd.Series([c for _, c in keys]).value_counts().items() if count > 1]
        assert len(shared) == 4  # each shared criterion ID is bid in both its ad groups
        assert all(criterion.status != "REMOVED" or key not in keys for key, criterion in account.criteria.items())
        assert (bids["bid"] % 1 == 0).all()  # whole yen

        # The account now holds exactly the ledger's applied bids, and every other keyword's bid is untouched.
        changes = store.read_partitions(tables.GOOGLE_ADS_BID_CHANGES, [bid_day])
        assert set(changes["outcome"]) == {VALIDATED, APPLIED}
        ledger = changes[changes["outcome"].eq(APPLIED)]
        # The dry run validated exactly the changes the second run applied.
        assert sorted(changes.loc[changes["outcome"].eq(VALIDATED), "keyword_id"]) == sorted(ledger["keyword_id"])
        applied = {
            (int(a), int(c)): int(new)
            for a, c, new in ledger[["ad_group_id", "criterion_id", "bid_micros"]].itertuples(index=False)
        }
        now = {key: criterion.cpc_bid_micros for key, criterion in account.criteria.items()}
        assert now == {**bids_before, **applied}
        assert len(applied) > len(bids) // 2
        assert {change.resource_name for change in account.bid_changes} == set(ledger["resource_name"])

        # The rollback restores every bid the publication replaced.
        rolled = run_block(setup + rollback, env)
        assert rolled.returncode == 0, rolled.stdout[-3000:] + rolled.stderr[-3000:]
        assert f"{len(applied):,} applied" in rolled.stdout
        assert {key: criterion.cpc_bid_micros for key, criterion in account.criteria.items()} == bids_before

        # The service account's grant was used, and no credential reached the output, the warehouse or Dagster's
        # runs and events.
        assert emulator.tokens_granted >= 1
        secrets = [DEVELOPER_TOKEN, ACCESS_TOKEN, SERVICE_ACCOUNT_KEY_ID, "PRIVATE KEY"]
        for output in (
            done.stdout + done.stderr,
            applied_run.stdout + applied_run.stderr,
            rolled.stdout + rolled.stderr,
        ):
            assert not any(secret in output for secret in secrets)
        stored = [*(tmp_path / "warehouse").rglob("*"), *(tmp_path / "dagster_home").rglob("*")]  # runs, events
        for path in stored:
            if path.is_file():
                content = path.read_bytes()
                assert not any(secret.encode() in content for secret in secrets), path
