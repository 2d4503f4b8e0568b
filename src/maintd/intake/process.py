"""The intake process: settings, start-up checks, serving until SIGTERM (``python -m maintd.intake``).

Settings come from the options, then the environment maintd serve reads (MAINTD_DATABASE_URL,
MAINTD_HOST, MAINTD_INGEST_RATE, MAINTD_INGEST_BURST, MAINTD_CLOCK, MAINTD_LOG_LEVEL); the
port from --port, MAINTD_INTAKE_PORT, MAINTD_PORT, else 8471. The database must be migrated
(it holds the journal); the process refuses to start otherwise, saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from maintd.api.ratelimit import RateLimiter
from maintd.clock import clock_from_spec
from maintd.intake.app import Intake
from maintd.intake.database import Unavailable, describe, opener
from maintd.intake.http import Server
from maintd.intake.journal import Journal
from maintd.intake.senders import Senders
from maintd.settings import Settings

DEFAULT_PORT = 8471  # maintd serve's is 8470

log = logging.getLogger("maintd.intake")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="maintd intake", description="Take alerts: check, journal, answer 202 once committed."
    )
    parser.add_argument("--host", help="address to listen on (MAINTD_HOST, default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, help=f"port (MAINTD_INTAKE_PORT, MAINTD_PORT, default {DEFAULT_PORT})"
    )
    parser.add_argument("--db", help="database URL (MAINTD_DATABASE_URL; default: maintd's SQLite file)")
    parser.add_argument("--log-level", help="debug, info, warning, error (MAINTD_LOG_LEVEL, default info)")
    return parser.parse_args(argv)


def port_of(given: int | None) -> int:
    raw = os.environ.get("MAINTD_INTAKE_PORT") or os.environ.get("MAINTD_PORT")
    if given is not None:
        port = given
    elif raw is None:
        return DEFAULT_PORT
    else:
        try:
            port = int(raw)
        except ValueError:
            raise ValueError(f"the port must be a number, not {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"the port must be between 0 and 65535, not {port}")
    return port


def build(settings: Settings) -> Intake:
    """The app on the settings' database; ValueError or Unavailable when it cannot work there."""
    database = opener(settings.database_url)
    check = database(settings.database_url)
    try:
        check.ping()  # reachable, and migrated: the journal table is there
    finally:
        check.close()
    clock = clock_from_spec(settings.clock)
    return Intake(
        Journal(database(settings.database_url)),
        Senders(database(settings.database_url), clock),
        RateLimiter(settings.ingest_rate, settings.ingest_burst),
        clock,
    )


def main(argv: list[str]) -> int:
    args = parse(argv)
    level = (args.log_level or os.environ.get("MAINTD_LOG_LEVEL") or "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(database_url=args.db, host=args.host)
        port = port_of(args.port)
        app = build(settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Unavailable as exc:
        where = describe(settings.database_url)
        hint = " (migrate it first: maintd db upgrade)" if "alert_intake" in exc.reason else ""
        print(f"error: the database {where} is not usable: {exc.reason}{hint}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(app, settings.host, port))
    except OSError as exc:  # the port is taken, the address is not ours
        print(f"error: cannot listen on {settings.host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


async def serve(app: Intake, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT; then answer what is in hand, commit, and return."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app.journal.start()
    server = Server(app.handle)
    try:
        await server.start(host, port)
        log.info("maintd intake on http://%s:%d", host, port)
        await stop.wait()
        log.info("stopping: answering the requests in hand")
        await server.stop()
    finally:
        await app.journal.stop()
        app.senders.close()
