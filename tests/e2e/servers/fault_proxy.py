"""A fault-injecting HTTP proxy for an S3 API server, on 127.0.0.1, for tests.

Every request is forwarded as it came (method, path and query, headers with Host, so signatures still match, and
the body), unless the fault plan picks it: a share of requests get a 500 InternalError or a 503 SlowDown with an S3
XML error body, or stall (no answer for longer than the clients' timeout, then the connection drops), each kind with
its own share. A fault never reaches the server, so a retried request is the first one it sees. The plan draws from
a seeded generator (the order of concurrent requests still varies, so the share is what repeats, not the list).

`fail_writes` makes every write (PUT, POST) fail with a 500 once a given number of writes have passed, to make a run
fail hard half-way. Counters say what was forwarded and which faults happened.
"""

from __future__ import annotations

import http.client
import random
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

FAULT_KINDS = ("500", "503", "stall")
WRITE_METHODS = ("PUT", "POST")
# Hop-by-hop headers: they describe one connection, not the request, and are not forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "SlowDown", "Please reduce your request rate."),
}


@dataclass(frozen=True)
class WriteFailure:
    """Fail every write once `after` writes have passed since it was set (counted from the first write whose path
    contains `from_path`, when given)."""

    after: int = 0
    from_path: str | None = None


class FaultProxy:
    def __init__(
        self, upstream: str, seed: int = 0, shares: dict[str, float] | None = None, stall_seconds: float = 3.0
    ):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = parsed.hostname, parsed.port
        self.stall_seconds = stall_seconds
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.forwarded: Counter[str] = Counter()  # by method
        self.faults: Counter[str] = Counter()  # by kind: 500, 503, stall, write_failure
        self.writes: list[str] = []  # method and path of every write forwarded, in order
        self.set_faults(shares or {})
        self._write_failure: WriteFailure | None = None
        self._writes_since_armed = 0
        self._triggered = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # stalled handlers give up at once
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def set_faults(self, shares: dict[str, float]) -> None:
        """From now on, fault each kind's share of the requests, e.g. {"500": 0.01, "stall": 0.002}; {} for none."""
        if set(shares) - set(FAULT_KINDS) or not 0 <= sum(shares.values()) <= 1:
            raise ValueError(f"fault shares {shares}: the kinds are {FAULT_KINDS}, and the shares add up to at most 1")
        with self._lock:
            self.shares = dict(shares)

    def fail_writes(self, after: int = 0, from_path: str | None = None) -> None:
        """From now on, every write fails (500) once `after` writes have passed; see `WriteFailure`."""
        with self._lock:
            self._write_failure = WriteFailure(after, from_path)
            self._writes_since_armed, self._triggered = 0, from_path is None

    def allow_writes(self) -> None:
        with self._lock:
            self._write_failure = None

    @property
    def fault_count(self) -> int:
        return sum(self.faults.values())

    def decide(self, method: str, path: str) -> str | None:
        """The fault for this request, or None to forward it; counts it either way."""
        with self._lock:
            failure = self._write_failure
            if failure is not None and method in WRITE_METHODS:
                if not self._triggered and failure.from_path in path:
                    self._triggered = True
                if self._triggered:
                    if self._writes_since_armed >= failure.after:
                        self.faults["write_failure"] += 1
                        return "write_failure"
                    self._writes_since_armed += 1
            draw = self._random.random()
            for kind, share in self.shares.items():
                if draw < share:
                    self.faults[kind] += 1
                    return kind
                draw -= share
            self.forwarded[method] += 1
            if method in WRITE_METHODS:
                self.writes.append(f"{method} {path}")
            return None

    def stall(self) -> None:
        self._stopping.wait(self.stall_seconds)


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect

        def log_message(self, format, *args) -> None:
            pass  # the counters say what happened; per-request lines would flood the test's output

        def _relay(self) -> None:
            body = self._read_body()
            fault = proxy.decide(self.command, self.path)
            if fault == "stall":
                proxy.stall()
                self.close_connection = True  # drop it without an answer
                return
            if fault is not None:
                status, code, message = ERRORS.get(fault, ERRORS["500"])
                self._answer(status, {"Content-Type": "application/xml"}, _s3_error(code, message))
                return
            upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
            try:
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        upstream.putheader(name, value)
                if body or self.command in WRITE_METHODS:
                    upstream.putheader("Content-Length", str(len(body)))
                upstream.endheaders(body or None)
                response = upstream.getresponse()
                content = response.read()
                headers = {name: value for name, value in response.getheaders() if name.lower() not in HOP_BY_HOP}
                self._answer(response.status, headers, content)
            finally:
                upstream.close()

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline().strip():  # trailers, up to the empty line
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # the CRLF after each chunk
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self, status: int, headers: dict[str, str], content: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            # A HEAD answer keeps the object's length and has no body.
            length = headers.get("Content-Length", headers.get("content-length")) if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

    return Handler


def _s3_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>fault-proxy</RequestId></Error>"
    ).encode()
