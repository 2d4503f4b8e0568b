"""A stdio server that logs to stdout, which the spec forbids: stdout is for JSON-RPC only."""

import sys

sys.stdout.write("Server v1.0 ready, waiting for clients!\n")
sys.stdout.flush()
for _line in sys.stdin:
    pass
