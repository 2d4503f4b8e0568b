#!/usr/bin/env python3
"""A misbehaving Nagios plugin for the nagios kind's tests.

Usage: fake_plugin.py [-t N | --timeout N] MODE [ARG]. The tests copy it with
a shebang of the test interpreter. MODE:

  args            print the arguments as JSON (OK)
  env             print LC_ALL and MAINTD_X
  garbage         a summary with garbage perfdata
  utf8            output that is not valid UTF-8
  flood           10 MB of output, then exit 1
  exit N          print a line, exit with code N
  signal          kill itself with SIGTERM
  hang PIDFILE    start a child (pid in PIDFILE), then hang
  escape PIDFILE  start a child in its own session that keeps stdout open, then hang
Anything hangs at most 120 s, so a lost process never lingers for long.
"""

import json
import os
import signal
import subprocess
import sys
import time

args = sys.argv[1:]
if args[:1] in (["-t"], ["--timeout"]):
    args = args[2:]  # accepted and ignored: this plugin never times out by itself
mode, rest = args[0], args[1:]
out = sys.stdout.buffer

if mode == "args":
    print("FAKE OK - args " + json.dumps(sys.argv[1:]))
elif mode == "env":
    print(f"FAKE OK - LC_ALL={os.environ.get('LC_ALL')} MAINTD_X={os.environ.get('MAINTD_X')}")
elif mode == "garbage":
    print("FAKE OK - garbage follows|=== a=; 'unclosed=1 b=1,5 c=2;x;;; ok=3ms;1;2 bare d=5;1;2;3;4;5;6")
elif mode == "utf8":
    out.write(b"FAKE OK - caf\xc3\xa9 \xff\xfe broken|t=1ms\nlong \xc0 line\n")
elif mode == "flood":
    out.write(b"FAKE WARNING - flood|size=10MB\n")
    line = b"x" * 1023 + b"\n"
    for _ in range(10 * 1024):
        out.write(line)
    out.flush()
    sys.exit(1)
elif mode == "exit":
    print(f"FAKE - exiting {rest[0]}")
    sys.exit(int(rest[0]))
elif mode == "signal":
    print("FAKE - about to die", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
elif mode in ("hang", "escape"):
    print("FAKE - hanging", flush=True)
    prefix = ["setsid"] if mode == "escape" else []
    child = subprocess.Popen([*prefix, "sleep", "120"], stdin=subprocess.DEVNULL)
    pidfile = rest[0]
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(child.pid))
    os.replace(pidfile + ".tmp", pidfile)
    time.sleep(120)
else:
    print(f"FAKE UNKNOWN - no mode {mode!r}")
    sys.exit(3)
