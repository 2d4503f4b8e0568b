"""The drill's throwaway PostgreSQL instance and its directory.

The directory is made by the drill and marked with a ``MAINTD_DR_DRILL`` file; only a
directory carrying that file is ever removed, so a mistyped ``drill_dir`` deletes nothing.
The instance opens no TCP address: it is reached through its Unix socket inside the drill
directory (mode 0700), so the copy of production data is not on the network while it runs.
Server programs run as ``run_as`` through ``runuser`` when maintd is root (PostgreSQL refuses
to run as root), always from argument lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from maintd.checks.base import RunContext
from maintd.checks.command.process import execute
from maintd.tasks.backup_postgres.tables import SESSION_OPTIONS, libpq_env
from maintd.tasks.dr_drill.source import DrillError, one_line

OWNED = "MAINTD_DR_DRILL"
OUTPUT_LIMIT = 16_384
SOCKET_PATH_MAX = 107  # sun_path, less the terminating NUL


@dataclass(frozen=True)
class Programs:
    bin_dir: str | None
    run_as: str | None  # None: as maintd itself

    def path(self, name: str) -> str:
        """The program's path; raises DrillError naming where it was looked for."""
        if self.bin_dir is not None:
            found = os.path.join(self.bin_dir, name)
            if not os.access(found, os.X_OK):
                why = "not executable" if os.path.exists(found) else "No such file or directory"
                raise DrillError(f"{name} not found: {found}: {why}")
            return found
        on_path = shutil.which(name)
        if on_path is None:
            raise DrillError(f"{name} not found on PATH (set params.bin_dir)")
        return on_path

    def argv(self, name: str, *args: str) -> list[str]:
        command = [self.path(name), *args]
        return ["runuser", "-u", self.run_as, "--", *command] if self.run_as else command


def programs(bin_dir: str | None, run_as: str) -> Programs:
    return Programs(bin_dir, run_as if os.geteuid() == 0 else None)


@dataclass(frozen=True)
class Layout:
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def conninfo(self, source: dict[str, Any]) -> dict[str, Any]:
        return {
            "host": str(self.root),
            "port": self.port,
            "dbname": source["dbname"],
            "user": source.get("user"),
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(
    argv: list[str],
    what: str,
    ctx: RunContext,
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    time_limit: float | None = None,
) -> str:
    """Run a step to its end; its output, or DrillError with the exit and the last line of output."""
    try:
        done = await execute(
            argv,
            env=env,
            cwd=str(cwd),
            limit=OUTPUT_LIMIT,
            tracker=ctx.processes,
            time_limit=time_limit or max(1.0, ctx.seconds_left()),
        )
    except OSError as exc:
        raise DrillError(f"{what}: cannot start {argv[0]}: {exc.strerror or exc}") from None
    text = done.output.decode(errors="replace").strip()
    if done.code != 0:
        how = "timed out" if done.code is None else f"exit {done.code}"
        last = (text.splitlines() or [""])[-1]
        raise DrillError(f"{what} failed ({how}): {last}".rstrip(": "))
    return text


async def prepare(layout: Layout, progs: Programs, ctx: RunContext) -> None:
    """Make the drill directory (after removing what a crashed drill left there)."""
    root = layout.root
    if len(str(root / f".s.PGSQL.{layout.port}")) > SOCKET_PATH_MAX:
        raise DrillError(f"drill_dir {root}: too long for a Unix socket path (at most about 90 characters)")
    if root.exists() or root.is_symlink():
        if not (root / OWNED).is_file():
            raise DrillError(
                f"drill_dir {root} exists and was not made by a drill (no {OWNED} file): "
                "refusing to use or remove it"
            )
        await teardown(layout, progs, ctx)
    try:
        root.mkdir(mode=0o700, parents=True)
        (root / OWNED).write_text(f"made by maintd dr-drill {ctx.task.name}/{ctx.target.name}\n")
        if progs.run_as:
            user = pwd.getpwnam(progs.run_as)
            os.chown(root, user.pw_uid, user.pw_gid)
    except KeyError:
        raise DrillError(f"run_as: no OS user {progs.run_as!r}") from None
    except OSError as exc:
        raise DrillError(f"drill_dir {root}: {exc.strerror or exc}") from None


async def basebackup(
    layout: Layout, progs: Programs, source: dict[str, Any], ctx: RunContext, *, standby: bool
) -> None:
    args = [f"--host={source['host']}", f"--port={source['port']}", f"--pgdata={layout.data}"]
    if "user" in source:
        args.append(f"--username={source['user']}")
    args += ["--wal-method=stream", "--checkpoint=fast", "--no-sync", "--no-password"]
    argv = progs.argv("pg_basebackup", *args, *(["--write-recovery-conf"] if standby else []))
    await run(
        argv,
        f"pg_basebackup of {source['host']}:{source['port']}",
        ctx,
        cwd=layout.root,
        env=libpq_env(source),
    )


def configure(layout: Layout, settings: dict[str, str]) -> None:
    """Make the copy a safe throwaway: its own port and socket, no TCP, no WAL archiving into the
    source's archive, no writing the source's external pid file, no SSL files it may lack.

    postgresql.auto.conf is read last, so these win over the copied postgresql.conf (a Debian
    cluster keeps that in /etc: then the copy has none, and an empty one is made).
    """
    data = layout.data
    conf = data / "postgresql.conf"
    if not conf.exists():
        conf.write_text("")
    (data / "pg_hba.conf").write_text("local all all trust\n")
    ident = data / "pg_ident.conf"
    if not ident.exists():
        ident.write_text("")
    wanted = {
        "port": str(layout.port),
        "listen_addresses": "",
        "unix_socket_directories": str(layout.root),
        "hba_file": str(data / "pg_hba.conf"),
        "ident_file": str(ident),
        "external_pid_file": "",
        "archive_mode": "off",
        "ssl": "off",
        "logging_collector": "off",
        "cluster_name": "maintd_dr_drill",
        "hot_standby": "on",
        **settings,
    }
    with (data / "postgresql.auto.conf").open("a") as auto:
        auto.write("\n# maintd dr-drill: this copy is a throwaway\n")
        auto.writelines(f"{key} = '{value.replace(chr(39), chr(39) * 2)}'\n" for key, value in wanted.items())
    for path in (conf, data / "pg_hba.conf", ident, data / "postgresql.auto.conf"):
        shutil.chown(path, *_owner(data))


def _owner(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid


async def start(layout: Layout, progs: Programs, ctx: RunContext) -> None:
    seconds = str(max(1, int(ctx.seconds_left())))
    argv = progs.argv("pg_ctl", "-D", str(layout.data), "-l", str(layout.log), "-w", "-t", seconds, "start")
    try:
        await run(argv, f"starting the copy in {layout.data}", ctx, cwd=layout.root)
    except DrillError as exc:
        raise DrillError(f"{exc}; {_log_tail(layout)}") from None
    pid = _postmaster(layout)
    if pid is not None:
        ctx.processes.started(pid)  # pg_ctl detached it (setsid): a restarted maintd can find it


def _log_tail(layout: Layout) -> str:
    try:
        lines = layout.log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no server log"
    return f"server log: {lines[-1]}" if lines else "server log empty"


def _postmaster(layout: Layout) -> int | None:
    try:
        return int((layout.data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


async def connect_copy(layout: Layout, source: dict[str, Any]) -> psycopg.AsyncConnection[Any]:
    info = {k: v for k, v in layout.conninfo(source).items() if v is not None}
    try:
        return await psycopg.AsyncConnection.connect(
            autocommit=True, options=SESSION_OPTIONS, application_name="maintd", **info
        )
    except psycopg.Error as exc:
        raise DrillError(
            f"the copy at {layout.root}:{layout.port}: cannot connect: {one_line(exc)}"
        ) from None


async def in_recovery(conn: psycopg.AsyncConnection[Any]) -> bool:
    row = await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone()
    return bool(row and row[0])


async def teardown(layout: Layout, progs: Programs, ctx: RunContext) -> list[str]:
    """Stop the instance and remove the drill directory; what could not be done, as lines."""
    problems: list[str] = []
    pid = _postmaster(layout)
    if pid is not None:
        try:
            argv = progs.argv("pg_ctl", "-D", str(layout.data), "-m", "immediate", "-w", "-t", "30", "stop")
            await run(argv, f"stopping the copy in {layout.data}", ctx, cwd=Path("/"), time_limit=40)
        except DrillError as exc:
            problems.append(f"{exc}; killed postmaster {pid}")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        ctx.processes.ended(pid)
    if (layout.root / OWNED).is_file():
        try:
            await asyncio.to_thread(shutil.rmtree, layout.root)
        except OSError as exc:
            problems.append(f"cannot remove drill_dir {layout.root}: {exc.strerror or exc}")
    return problems
