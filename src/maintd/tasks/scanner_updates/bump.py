"""What an approved scanner-updates change runs: edit exactly the approved pins of one file.

``python -m maintd.tasks.scanner_updates.bump FILE BUMPS`` with BUMPS as the change carries it
(``bandit==1.9.4->1.9.5,pip-audit==2.10.1->2.10.2``): each ``name==old`` pin becomes ``name==new``.
A pin not found as ``name==old`` (nor already ``name==new``: a second run) leaves the file
untouched and exits 1. ``... bump --reverse FILE BUMPS`` is the rollback (new back to old).
The file is replaced atomically.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from maintd.tasks.scanner_updates.pins import bump_text

_BUMP = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<old>[A-Za-z0-9.+!_-]+)->(?P<new>[A-Za-z0-9.+!_-]+)$"
)


def main(argv: list[str]) -> int:
    reverse = bool(argv) and argv[0] == "--reverse"
    args = argv[1:] if reverse else argv
    if len(args) != 2:
        print("usage: python -m maintd.tasks.scanner_updates.bump [--reverse] FILE BUMPS", file=sys.stderr)
        return 2
    path, spec = Path(args[0]), args[1]
    bumps = [_BUMP.match(part) for part in spec.split(",")]
    if not all(bumps):
        print(f"not a bump list: {spec!r} (name==old->new, comma separated)", file=sys.stderr)
        return 2
    try:
        text = path.read_text()
    except OSError as exc:
        print(f"cannot read {path}: {(exc.strerror or str(exc)).lower()}", file=sys.stderr)
        return 1
    for m in bumps:
        assert m is not None
        old, new = (m["new"], m["old"]) if reverse else (m["old"], m["new"])
        text, count = bump_text(text, m["name"], old, new)
        if count == 0 and bump_text(text, m["name"], new, new)[1] == 0:
            print(f"{path}: no pin {m['name']}=={old}; nothing changed", file=sys.stderr)
            return 1
        print(f"{path}: {m['name']} {old} -> {new}" + ("" if count else " (already)"))
    partial = path.with_name(f".{path.name}.maintd-bump")
    partial.write_text(text)
    os.chmod(partial, path.stat().st_mode & 0o7777)
    os.replace(partial, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
