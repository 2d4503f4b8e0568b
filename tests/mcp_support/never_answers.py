"""A stdio server that reads requests and never answers; it has a child, like servers that wrap a tool.

argv[1]: a file to write "<own pid> <child pid>" into. Ignores the end of its stdin and SIGTERM,
so only a SIGKILL of its process group ends it early; gives up after 120 s so a lost one never lingers.
"""

import os
import signal
import subprocess
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(["sleep", "120"])
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as out:
    out.write(f"{os.getpid()} {child.pid}")
os.replace(tmp, sys.argv[1])
sys.stderr.write("listening (but never answering)\n")
sys.stderr.flush()
give_up = time.monotonic() + 120
for _line in sys.stdin:  # reads every request, answers none
    if time.monotonic() > give_up:
        break
while time.monotonic() < give_up:
    time.sleep(0.5)
