"""A stdio "server" that dies before reading anything: a missing setting, as servers often do."""

import sys

sys.stderr.write("starting time-keeper...\n")
sys.stderr.write("fatal: TIMEKEEPER_API_KEY is not set\n")
sys.exit(3)
