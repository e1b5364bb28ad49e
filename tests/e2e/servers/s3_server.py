"""moto's S3 API server, for the tests that need a real S3 endpoint over HTTP: in this process's threads, on a free
loopback port."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@contextmanager
def moto_server() -> Iterator[str]:
    """The server, started; yields its endpoint URL (http://127.0.0.1:<port>), stops it afterwards. moto accepts any
    credentials."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its buckets in this process, not in the server: without a reset, a server would start with the
        # objects of the last one (another test's warehouse at the same s3:// path).
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
        yield endpoint
    finally:
        server.stop()
