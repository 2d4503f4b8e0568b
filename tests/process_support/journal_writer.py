"""Writes alert_intake rows into a SQLite file the way maintd intake does (sqlite3, BEGIN IMMEDIATE,
SQLite's own busy handler), COMMITS commits ~2 ms apart, then prints JSON: each commit's wait, and
how many rows of the backlog (actor ``token:rob``) were still waiting right after each commit.

It prints ``ready`` once connected and starts writing when a line arrives on stdin, so the caller
decides when the writes begin (an interpreter's start-up time is no part of the measure).

Usage: journal_writer.py DATABASE COMMITS
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time

database, commits = sys.argv[1], int(sys.argv[2])
conn = sqlite3.connect(database, timeout=30, isolation_level=None)
conn.execute("PRAGMA busy_timeout=30000")
print("ready", flush=True)
sys.stdin.readline()
waits, backlog = [], []
for n in range(commits):
    body = json.dumps([{"labels": {"alertname": "Written", "target": f"w{n}"}}]).encode()
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO alert_intake (received_at, source, actor, body) VALUES (?, 'native', 'token:w', ?)",
        ("2026-11-27 01:00:00.000000", body),
    )
    conn.execute("COMMIT")
    waits.append(time.perf_counter() - started)
    backlog.append(conn.execute("SELECT count(*) FROM alert_intake WHERE actor = 'token:rob'").fetchone()[0])
    time.sleep(0.002)  # the next request arriving
print(json.dumps({"waits": waits, "backlog": backlog}))
