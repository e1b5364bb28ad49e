"""Alerts against a real HTTP server on 127.0.0.1 that the test starts: delivery, retries, and that a failed alert
never fails anything."""

import socket
import time

import dagster as dg

from assets.alerts import alert_sensors
from daily_bids.monitoring.alerts import Alert, send_alert
from daily_bids.settings import Settings
from support.webhook import Webhook

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2025-01-01")


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there any more


ALERT = Alert(
    kind="check_failure",
    job="daily_bid_job",
    run_id="abc",
    run_url="http://127.0.0.1:3000/runs/abc",
    message="bid >= expected_value_per_click",
    assets=["keyword_bids"],
    partition="2025-02-01",
    check="bids_are_profitable_and_capped",
    severity="ERROR",
)


def test_an_alert_is_retried_through_server_errors_and_delivered():
    logged, waits = [], []
    with Webhook(failures=2) as webhook:
        assert send_alert(ALERT, webhook.url, logged.append, sleep=waits.append, first_backoff_seconds=0.5)
    (body,) = webhook.bodies
    assert body["check"] == "bids_are_profitable_and_capped" and body["partition"] == "2025-02-01"
    assert body["assets"] == ["keyword_bids"] and body["run_url"] == "http://127.0.0.1:3000/runs/abc"
    assert "bids_are_profitable_and_capped" in body["text"]
    assert waits == [0.5, 1.0]  # exponential backoff between the three attempts


def test_an_unreachable_webhook_gives_up_after_bounded_attempts_without_raising():
    logged = []
    started = time.monotonic()
    assert not send_alert(ALERT, _closed_port_url(), logged.append, attempts=3, first_backoff_seconds=0.05)
    assert time.monotonic() - started < 10
    assert "not delivered" in logged[-1] and "after 3 attempt(s)" in logged[-1]


def test_without_a_webhook_the_alert_is_only_logged():
    logged = []
    assert not send_alert(ALERT, "", logged.append)
    assert logged == [ALERT.summary()]


@dg.asset(partitions_def=PARTITIONS)
def fragile_report():
    raise ValueError("the source is down")


@dg.asset(partitions_def=PARTITIONS)
def steady_report():
    return dg.MaterializeResult()


@dg.asset_check(asset=steady_report, partitions_def=PARTITIONS)
def steady_report_volume():
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description="half the usual rows")


def test_sensors_alert_on_a_failed_run_and_a_failed_check():
    instance = dg.DagsterInstance.ephemeral()
    failed = dg.materialize([fragile_report], instance=instance, partition_key="2025-02-01", raise_on_error=False)
    warned = dg.materialize([steady_report, steady_report_volume], instance=instance, partition_key="2025-02-02")
    assert not failed.success and warned.success
    with Webhook() as webhook:
        deployment = Settings(alert_webhook=webhook.url, ui_url="http://127.0.0.1:3000")
        run_failure_alert_sensor, check_failure_alert_sensor = alert_sensors(deployment)
        failure_event = failed.get_run_failure_event()
        run_failure_alert_sensor(
            dg.build_run_status_sensor_context(
                sensor_name="run_failure_alert_sensor",
                dagster_instance=instance,
                dagster_event=failure_event,
                dagster_run=failed.dagster_run,
            ).for_run_failure()
        )
        check_failure_alert_sensor(
            dg.build_run_status_sensor_context(
                sensor_name="check_failure_alert_sensor",
                dagster_instance=instance,
                dagster_event=warned.get_run_success_event(),
                dagster_run=warned.dagster_run,
            )
        )
    run_alert, check_alert = webhook.bodies
    assert run_alert["kind"] == "run_failure" and run_alert["assets"] == ["fragile_report"]
    assert run_alert["partition"] == "2025-02-01" and "the source is down" in run_alert["message"]
    assert run_alert["run_url"] == f"http://127.0.0.1:3000/runs/{failed.run_id}"
    assert check_alert == {
        **check_alert,
        "kind": "check_failure",
        "check": "steady_report_volume",
        "assets": ["steady_report"],
        "partition": "2025-02-02",
        "severity": "WARN",
        "message": "half the usual rows",
    }


def test_a_sensor_with_its_webhook_down_does_not_fail(monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    failed = dg.materialize([fragile_report], instance=instance, partition_key="2025-02-01", raise_on_error=False)
    run_failure_alert_sensor, _ = alert_sensors(Settings(alert_webhook=_closed_port_url()))
    monkeypatch.setattr("daily_bids.monitoring.alerts.time.sleep", lambda seconds: None)  # no real backoff in the test
    run_failure_alert_sensor(
        dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_instance=instance,
            dagster_event=failed.get_run_failure_event(),
            dagster_run=failed.dagster_run,
        ).for_run_failure()
    )
