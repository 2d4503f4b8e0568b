"""``python -m maintd.intake``: the light alert intake process (``maintd intake`` runs this)."""

import sys

# The intake speaks plain HTTP (TLS ends at a proxy in front; libpq has its own for PostgreSQL)
# and hashes only short keys. asyncio works without Python's ssl module and hashlib falls back
# to its built-in SHA-256 without OpenSSL's: leaving both out keeps libssl and libcrypto out
# of the process (~5 MB of its RSS). Set before anything imports asyncio or hashlib.
for _module in ("ssl", "_hashlib"):
    sys.modules.setdefault(_module, None)  # type: ignore[arg-type]

from maintd.intake.process import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
