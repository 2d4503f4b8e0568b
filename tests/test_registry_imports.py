"""Start-up stays light: registering the built-in kinds imports none of their client libraries.

Each library costs megabytes of RSS (psycopg ~10 MB, cryptography ~9, redis ~6,
dnspython ~1) in every maintd process; a kind imports its library when its
first check runs. A fresh interpreter is the only honest place to look: in this
one, other tests have long since run checks.
"""

from __future__ import annotations

import json
import subprocess
import sys

CLIENT_LIBRARIES = ("psycopg", "cryptography", "redis", "dns", "kubernetes_asyncio", "mcp")

_PROBE = f"""
import json, sys
from maintd.registry import Registry
kinds = Registry.default().names()
print(json.dumps({{"kinds": kinds, "loaded": [m for m in {CLIENT_LIBRARIES!r} if m in sys.modules]}}))
"""


def test_registering_the_builtin_kinds_imports_no_client_library():
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"postgres", "tls", "redis", "dns", "kubernetes", "mcp"} <= set(seen["kinds"])
    assert seen["loaded"] == [], (
        f"Registry.default() imported {seen['loaded']}: import them inside the check's run() "
        "(python -X importtime -c 'from maintd.registry import Registry; Registry.default()' "
        "shows who imports them)"
    )
