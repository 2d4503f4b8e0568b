"""A stdio server that answers server/discover with -32022 Unsupported protocol version, listing argv[1].

argv[1]: the versions it "supports", comma-separated. It answers initialize (with the first
handshake-era version of them), ping and tools/list (one tool), like broken_tools.py but healthy.
"""

import json
import sys

supported = sys.argv[1].split(",")
handshake = [v for v in supported if v < "2026"]


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    request = json.loads(line)
    if "id" not in request:
        continue
    rid, method = request["id"], request["method"]
    if method == "server/discover":
        requested = request["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"]
        error = {
            "code": -32022,
            "message": "Unsupported protocol version",
            "data": {"supported": supported, "requested": requested},
        }
        send({"jsonrpc": "2.0", "id": rid, "error": error})
    elif method == "initialize" and handshake:
        info = {"name": "versions", "version": "1"}
        result = {"protocolVersion": handshake[0], "capabilities": {"tools": {}}, "serverInfo": info}
        send({"jsonrpc": "2.0", "id": rid, "result": result})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": rid, "result": {}})
    elif method == "tools/list":
        tool = {"name": "noop", "inputSchema": {"type": "object"}}
        send({"jsonrpc": "2.0", "id": rid, "result": {"tools": [tool]}})
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}})
