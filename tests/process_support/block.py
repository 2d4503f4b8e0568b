"""A command task for process tests: announce itself, then block while a hold file exists.

Usage: block.py GATE_DIR NAME. Writes GATE_DIR/NAME.<pid>.started (atomically,
containing the pid), waits while GATE_DIR/NAME.hold exists, prints and exits 0.
Gives up after 60 s so a lost child never lingers.
"""

import os
import sys
import time
from pathlib import Path

gate, name = Path(sys.argv[1]), sys.argv[2]
pid = os.getpid()
tmp = gate / f".{name}.{pid}.tmp"
tmp.write_text(str(pid))
os.replace(tmp, gate / f"{name}.{pid}.started")
give_up = time.monotonic() + 60
while (gate / f"{name}.hold").exists() and time.monotonic() < give_up:
    time.sleep(0.02)
print(f"{name} done")
