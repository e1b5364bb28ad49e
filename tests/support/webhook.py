"""A webhook receiver on loopback, for the alert tests."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Webhook:
    """A webhook receiver: records every JSON body, and answers 503 to the first `failures` requests."""

    def __init__(self, failures: int = 0):
        self.bodies: list[dict] = []
        self.failures = failures
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if webhook.failures > 0:
                    webhook.failures -= 1
                    self.send_response(503)
                else:
                    webhook.bodies.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
