"""A loopback OSV API (POST /v1/query) answering from an OSV file, so the real pip-audit runs offline.

It matches with the kind's own ``osv.affecting``: pip-audit trusts the service to match versions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from maintd.tasks.security.osv import affecting, read_records


@contextmanager
def osv_api(path: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve ``path`` on 127.0.0.1 (a free port); yields the query URL and the queries received."""
    records = read_records(path)
    queries: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            queries.append(query)
            matches = affecting(records, query["package"]["name"], query["version"])
            body = json.dumps({"vulns": [m.record for m in matches]} if matches else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/query", queries
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
