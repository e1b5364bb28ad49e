"""Alert sensors: every failed run, and every failed check, becomes an alert posted to `BIDS_ALERT_WEBHOOK`.
`alert_sensors(settings)` builds them for a deployment (its webhook, and its UI's address for the run links).

A failed run gets one run-failure alert; each failed check gets one check alert, whether its run failed (a blocking
check at ERROR stops the run) or succeeded (WARN checks). Sending never raises: a lost alert is logged. A run whose
checks failed is tagged `daily_bids/failed_checks`, so the Runs page shows it even when the run is green.
"""

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from daily_bids.monitoring.alerts import Alert, run_url, send_alert
from daily_bids.settings import Settings


def _partition(run: dg.DagsterRun) -> str | None:
    """The run's partition, or its range (`first...last`) for a single-run backfill."""
    if run.tags.get("dagster/partition"):
        return run.tags["dagster/partition"]
    if run.tags.get(ASSET_PARTITION_RANGE_START_TAG):
        return f"{run.tags[ASSET_PARTITION_RANGE_START_TAG]}...{run.tags[ASSET_PARTITION_RANGE_END_TAG]}"
    return None


def _root_cause(error) -> str:
    """The innermost error's message: Dagster wraps the user's exception in its own."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


# The run tag that names the checks a run saw fail: the Runs page shows it on a run that is otherwise green.
FAILED_CHECKS_TAG = "daily_bids/failed_checks"
_TAG_LENGTH = 500  # the Runs page shows the start; the run's page lists every check


def _failed_checks(instance: dg.DagsterInstance, run_id: str) -> list:
    """The check evaluations of a run that did not pass."""
    return [
        entry.dagster_event.asset_check_evaluation_data
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        if not entry.dagster_event.asset_check_evaluation_data.passed
    ]


def tag_failed_checks(instance: dg.DagsterInstance, run_id: str) -> None:
    """Tag the run with the checks that failed in it (`asset.check (SEVERITY)`), so they show on the Runs page;
    nothing when none failed. Idempotent: the tag is rewritten with every failed check so far."""
    failed = _failed_checks(instance, run_id)
    if not failed:
        return
    names = sorted({f"{e.asset_key.to_user_string()}.{e.check_name} ({e.severity.value})" for e in failed})
    text = f"{len(names)}: " + ", ".join(names)
    instance.add_run_tags(
        run_id, {FAILED_CHECKS_TAG: text if len(text) <= _TAG_LENGTH else text[: _TAG_LENGTH - 1] + "…"}
    )


@dg.success_hook(name="tag_failed_checks_on_success")
def _tag_after_a_step(context: dg.HookContext) -> None:
    tag_failed_checks(context.instance, context.run_id)


@dg.failure_hook(name="tag_failed_checks_on_failure")
def _tag_after_a_failed_step(context: dg.HookContext) -> None:
    tag_failed_checks(context.instance, context.run_id)


# On the jobs of the project: a run started anywhere (the schedule, the UI, `python -m daily_bids run`) is tagged as
# its checks fail. Runs of other selections (a freshness check, an asset materialized from its page) are tagged by
# the alert sensors.
FAILED_CHECK_HOOKS = {_tag_after_a_step, _tag_after_a_failed_step}


def _send(context, alert: Alert, settings: Settings) -> None:
    send_alert(alert, settings.alert_webhook, context.log.warning)


def _alert_failed_checks(context: dg.RunStatusSensorContext, settings: Settings) -> int:
    run = context.dagster_run
    failed = _failed_checks(context.instance, run.run_id)
    if failed:
        tag_failed_checks(context.instance, run.run_id)
    for evaluation in failed:
        _send(
            context,
            Alert(
                kind="check_failure",
                job=run.job_name,
                run_id=run.run_id,
                run_url=run_url(settings.ui_url, run.run_id),
                message=evaluation.description or f"check {evaluation.check_name} failed",
                assets=[evaluation.asset_key.to_user_string()],
                partition=evaluation.partition or _partition(run),
                check=evaluation.check_name,
                severity=evaluation.severity.value,
            ),
            settings,
        )
    return len(failed)


def alert_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    """The run-failure and check-failure alert sensors of a deployment."""

    @dg.run_failure_sensor(
        name="run_failure_alert_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts an alert for every failed run (and for each check that failed in it) to "
        "BIDS_ALERT_WEBHOOK; logs it when no webhook is set.",
    )
    def run_failure_alert_sensor(context: dg.RunFailureSensorContext):
        run = context.dagster_run
        # The run's own message only lists the failed steps; each step's error says what went wrong.
        step_errors = [
            f"{event.step_key}: {_root_cause(event.step_failure_data.error)}"
            for event in context.get_step_failure_events()
            if event.step_failure_data.error
        ]
        _send(
            context,
            Alert(
                kind="run_failure",
                job=run.job_name,
                run_id=run.run_id,
                run_url=run_url(settings.ui_url, run.run_id),
                message=" | ".join([context.failure_event.message or "run failed", *step_errors])[:2000],
                assets=sorted(
                    {
                        entry.dagster_event.asset_key.to_user_string()
                        for entry in context.instance.all_logs(
                            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
                        )
                    }
                ),
                partition=_partition(run),
            ),
            settings,
        )
        _alert_failed_checks(context, settings)

    @dg.run_status_sensor(
        name="check_failure_alert_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts an alert for every check that failed in a run that succeeded (WARN checks) "
        "to BIDS_ALERT_WEBHOOK; logs it when no webhook is set.",
    )
    def check_failure_alert_sensor(context: dg.RunStatusSensorContext):
        _alert_failed_checks(context, settings)

    return [run_failure_alert_sensor, check_failure_alert_sensor]
