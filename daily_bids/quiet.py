"""Quiet output for the command line: the platform's own lines and its summary, not its libraries' chatter.

`python -m daily_bids` calls `quiet()` first, unless `--verbose` is given:
- Python warnings that libraries raise about themselves are ignored (pyspark warns about pandas 3 when
  great-expectations imports it, although no Spark runs), and MLflow logs warnings and errors only (not its INFO
  lines about creating its tables); a level the user set in MLFLOW_LOGGING_LEVEL wins.
- TensorFlow's C++ runtime writes its logs straight to the process's stderr, before its own log level applies
  (`TF_CPP_MIN_LOG_LEVEL` does not reach them in TensorFlow 2.21), e.g. "NodeDef mentions attribute
  use_unbounded_threadpool" for every Keras `fit`. Those lines, and only those, are dropped from stderr: every
  other line, tracebacks included, passes through unchanged.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import warnings

# (category, message regex) of the third-party warnings that say nothing about this platform's work.
LIBRARY_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    (FutureWarning, r"PySpark does not yet fully support pandas"),
)
# Third-party settings read when each library is imported; a value the user set wins.
LIBRARY_ENVIRONMENT = {"MLFLOW_LOGGING_LEVEL": "WARNING"}
# A line of TensorFlow's C++ log (absl's format: severity and date, time, thread, file:line]) or absl's notice that
# such lines go to stderr.
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] |WARNING: All log messages before absl::InitializeLog\(\))"
)


def quiet() -> None:
    for category, message in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, value in LIBRARY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    _drop_native_log_lines()


def _drop_native_log_lines() -> None:
    """Route file descriptor 2 through a thread that forwards every line but TensorFlow's C++ log lines."""
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not NATIVE_LOG_LINE.match(line):
                    os.write(original, line)

    forwarder = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    forwarder.start()

    def restore() -> None:  # at exit: hand fd 2 back, so the forwarder sees the end of its pipe and drains it
        sys.stderr.flush()
        os.dup2(original, 2)
        forwarder.join(timeout=5)

    atexit.register(restore)
