"""A handshake-era-only stdio server (raw newline JSON-RPC): initialize and ping work, tools/list fails.

server/discover gets -32601 Method not found, as from any server older than 2026-07-28.
"""

import json
import sys


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    request = json.loads(line)
    if "id" not in request:
        continue  # a notification (notifications/initialized)
    rid, method = request["id"], request["method"]
    if method == "initialize":
        result = {
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "broken-tools", "version": "0.9"},
        }
        send({"jsonrpc": "2.0", "id": rid, "result": result})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": rid, "result": {}})
    elif method == "tools/list":
        sys.stderr.write("tools/list: cannot open the tool registry: database is down\n")
        sys.stderr.flush()
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32603, "message": "database is down"}})
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}})
