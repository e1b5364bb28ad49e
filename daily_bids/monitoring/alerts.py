"""Alerts: a JSON message per failed run or failed check, POSTed to a webhook with retries, and never a failure.

The message names what failed (job, asset, partition, check, severity) and links to the run in the UI, so whoever
gets it can act on it without searching. Slack, Teams and most incident tools accept such a POST through an
incoming-webhook URL.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

# HTTP answers worth another try: the receiver is overloaded, restarting, or rate-limiting.
RETRYABLE_STATUSES = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Alert:
    kind: str  # "run_failure" or "check_failure"
    job: str
    run_id: str
    run_url: str
    message: str
    assets: list[str] = field(default_factory=list)
    partition: str | None = None
    check: str | None = None
    severity: str | None = None
    sent_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def to_json(self) -> bytes:
        return json.dumps({"text": self.summary(), **asdict(self)}).encode()

    def summary(self) -> str:
        """One line for chat tools that show only `text`."""
        what = f"check {self.check} on {', '.join(self.assets)}" if self.check else f"run of {self.job}"
        where = f" partition {self.partition}" if self.partition else ""
        return f"Daily Bids: {what}{where} failed ({self.severity or 'run failure'}): {self.message} — {self.run_url}"


def run_url(ui_url: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/runs/{run_id}"


def send_alert(
    alert: Alert,
    webhook_url: str,
    log: Callable[[str], None],
    *,
    attempts: int = 4,
    first_backoff_seconds: float = 1.0,
    timeout_seconds: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """POST `alert` to `webhook_url`; retries connection errors, time-outs and 408/429/5xx answers with exponential
    backoff. Returns whether it was delivered. Never raises for network or HTTP trouble: a lost alert is logged,
    and the pipeline goes on. With no webhook, the alert is only logged."""
    log(alert.summary())
    if not webhook_url:
        return False
    request = urllib.request.Request(
        webhook_url, data=alert.to_json(), method="POST", headers={"Content-Type": "application/json"}
    )
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout_seconds) as answer:
                answer.read()
            return True
        except urllib.error.HTTPError as error:  # an answer, but not a 2xx
            problem, retryable = f"HTTP {error.code}", error.code in RETRYABLE_STATUSES
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:  # no answer at all
            problem, retryable = f"{type(error).__name__}: {getattr(error, 'reason', error)}", True
        if not retryable or attempt == attempts:
            log(f"alert not delivered to the webhook after {attempt} attempt(s): {problem}")
            return False
        (sleep or time.sleep)(first_backoff_seconds * 2 ** (attempt - 1))
    return False
