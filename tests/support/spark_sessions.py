"""One Spark session at a time in a test process: pytest-xdist runs several Spark modules in one worker, one after the
other, and a JVM holds a single SparkContext.

Teardown stops the context that is live, never a module's own session object: a run under `BIDS_ENGINE=spark` may have
started a newer context since, and stopping a stale session clears pyspark's record of the live one without stopping
it. The next module's session would then fail with "Only one SparkContext should be running in this JVM"."""

from collections.abc import Iterator
from contextlib import contextmanager

from resources.engine import EngineResource


def stop_live_spark() -> None:
    """Stops the process's live SparkContext, whichever module or run started it."""
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()


@contextmanager
def spark_session(master: str) -> Iterator:
    """The platform's session on `master`, as the engine resource builds it. An earlier module's session is stopped
    first, since getOrCreate would hand it back in place of one on `master`."""
    stop_live_spark()
    try:
        yield EngineResource(engine="spark", spark_master=master).spark_session()
    finally:
        stop_live_spark()
