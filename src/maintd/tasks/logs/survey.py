"""Look at a log directory and decide what a run does: rotate, compress, delete, or hold.

Nothing here changes the disk: a dry run reports the survey's steps, a real run executes them.
Every reason not to act at all (a missing directory, a pid file that names no process, a
place a file must go that is a directory, a directory maintd may not write) is a problem,
and one problem means the run changes nothing.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from maintd.tasks.logs.config import Codec, LogsConfig, Method

_STAMP = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}", "%H": r"\d{2}", "%M": r"\d{2}", "%S": r"\d{2}"}
_STAMP["%s"] = r"\d+"
_GLOB = re.compile(r"[*?\[]")
_ORDER = {"rotate": 0, "compress": 1, "delete": 2}


@dataclass(frozen=True)
class Step:
    action: str  # rotate | compress | delete
    path: Path
    size: int
    dest: Path | None = None
    reason: str = ""
    age_days: float = 0.0


@dataclass(frozen=True)
class Generation:
    """A rotated log: ``<live name><stamp>`` plain in the directory, or compressed in the archive."""

    path: Path
    base: str
    stamp: str
    compressed: bool
    size: int
    mtime: float


@dataclass
class Survey:
    directory: Path
    archive_dir: Path
    steps: list[Step] = field(default_factory=list)
    held: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pid: int | None = None
    archives: list[Generation] = field(default_factory=list)  # what is kept once the steps are done


def survey(cfg: LogsConfig, directory: Path, archive_dir: Path, now: datetime) -> Survey:
    found = Survey(directory, archive_dir)
    if not directory.is_dir():
        if not directory.exists() and cfg.missingok:
            found.notes.append(f"{directory}: no such directory (missingok)")
        elif not directory.exists():
            found.problems.append(f"{directory}: no such directory")
        else:
            found.problems.append(f"{directory}: not a directory")
        return found
    if archive_dir.exists() and not archive_dir.is_dir():
        found.problems.append(f"archive_dir {archive_dir}: not a directory")
        return found
    names = sorted(os.listdir(directory))
    archived = names if archive_dir == directory else _names(archive_dir)
    pattern = _rotated_pattern(cfg)
    plain = _generations(cfg, pattern, directory, names, compressed=False)
    # A compressed twin of a plain one is a compression cut short: the plain one stands for both.
    pairs = {(g.base, g.stamp) for g in plain}
    packed = _generations(cfg, pattern, archive_dir, archived, compressed=True)
    gens = plain + [g for g in packed if (g.base, g.stamp) not in pairs]
    _rotations(cfg, found, names, gens, now)
    _retention(cfg, found, gens, now)
    # All rotations, then all compressions, then deletions: a failure stops the run before any deletion.
    found.steps.sort(key=lambda s: _ORDER[s.action])
    _preflight(cfg, found)
    return found


def _rotated_pattern(cfg: LogsConfig) -> re.Pattern[str]:
    stamp = re.sub(r"%[YmdHMSs]", lambda m: _STAMP[m.group(0)], re.escape(cfg.dateformat).replace(r"\%", "%"))
    return re.compile(rf"(?P<base>.+?)(?P<stamp>{stamp})(?P<ext>\.zst|\.gz)?")


def _is_live(cfg: LogsConfig, name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in cfg.include)


def _generations(
    cfg: LogsConfig, pattern: re.Pattern[str], where: Path, names: list[str], *, compressed: bool
) -> list[Generation]:
    out = []
    for name in names:
        match = pattern.fullmatch(name)
        if not match or not _is_live(cfg, match["base"]) or bool(match["ext"]) is not compressed:
            continue
        st = (where / name).lstat()
        if (where / name).is_file() and not (where / name).is_symlink():
            gen = Generation(where / name, match["base"], match["stamp"], compressed, st.st_size, st.st_mtime)
            out.append(gen)
    return out


def _rotations(
    cfg: LogsConfig, found: Survey, names: list[str], gens: list[Generation], now: datetime
) -> None:
    stamp = now.strftime(cfg.dateformat)
    done = {(g.base, g.stamp) for g in gens}
    for literal in (p for p in cfg.include if not _GLOB.search(p)):
        if literal not in names:
            missing = f"{found.directory / literal}: no such file"
            if cfg.missingok:
                found.notes.append(f"{missing} (missingok)")
            else:
                found.problems.append(missing)
    # With a broad include ("*"), rotated logs and archives match it too: they are never live.
    pattern = _rotated_pattern(cfg)
    rotated = {n for n in names if (m := pattern.fullmatch(n)) and _is_live(cfg, m["base"])}
    for name in (n for n in names if _is_live(cfg, n) and n not in rotated and not n.startswith(".")):
        live = found.directory / name
        if live.is_symlink() or not live.is_file():
            found.problems.append(f"{live}: not a regular file; a live log must be one")
            continue
        size = live.stat().st_size
        dest = found.directory / f"{name}{stamp}"
        if size == 0 and cfg.notifempty:
            found.notes.append(f"{live}: empty, not rotated (notifempty)")
        elif (name, stamp) in done:
            found.notes.append(f"{live}: already rotated as {name}{stamp}")
        elif os.path.lexists(dest):
            found.problems.append(f"{dest}: exists and is not a rotated log; {live} cannot be rotated to it")
        else:
            found.steps.append(Step("rotate", live, size, dest, cfg.method.value))


def _retention(cfg: LogsConfig, found: Survey, gens: list[Generation], now: datetime) -> None:
    by_base: dict[str, list[Generation]] = {}
    for gen in gens:
        by_base.setdefault(gen.base, []).append(gen)
    fresh = {s.path.name for s in found.steps if s.action == "rotate"}
    for base, group in by_base.items():
        group.sort(key=lambda g: (g.stamp, g.mtime), reverse=True)  # newest first
        keep = None if cfg.rotate is None else cfg.rotate - (1 if base in fresh else 0)
        for index, gen in enumerate(group):
            age = now - datetime.fromtimestamp(gen.mtime, now.tzinfo)
            expired = _expired(cfg, index, keep, age)
            if expired:
                _delete_or_hold(cfg, found, gen, expired, age)
            elif not gen.compressed and age >= cfg.compress_after:
                dest = found.archive_dir / (gen.path.name + cfg.compression.suffix)
                step = Step("compress", gen.path, gen.size, dest, cfg.compression.value, _days(age))
                if os.path.lexists(dest) and not dest.is_file():
                    found.problems.append(f"{dest}: exists, not a file; cannot compress {gen.path} to it")
                found.steps.append(step)
            else:
                found.archives.append(gen)


def _expired(cfg: LogsConfig, index: int, keep: int | None, age: timedelta) -> str:
    if keep is not None and index >= keep:
        return f"beyond rotate {cfg.rotate}"
    if cfg.maxage is not None and age > cfg.maxage:
        return f"older than maxage {_days(cfg.maxage):g} days"
    return ""


def _delete_or_hold(cfg: LogsConfig, found: Survey, gen: Generation, expired: str, age: timedelta) -> None:
    held = [p for p in cfg.legal_hold if fnmatch.fnmatchcase(_held_name(gen.path, p), p)]
    if held:
        found.held.append(Step("hold", gen.path, gen.size, reason=f"{expired}, under legal hold {held[0]!r}"))
    elif age < cfg.min_retention:
        reason = f"{expired}, younger than min_retention {_days(cfg.min_retention):g} days"
        found.held.append(Step("hold", gen.path, gen.size, reason=reason))
    else:
        found.steps.append(Step("delete", gen.path, gen.size, reason=expired, age_days=_days(age)))
        return
    found.archives.append(gen)


def _preflight(cfg: LogsConfig, found: Survey) -> None:
    """Refuse the whole run up front for what would make it stop half-way."""
    dirs = {s.path.parent for s in found.steps} | {s.dest.parent for s in found.steps if s.dest}
    for where in sorted(dirs):
        probe = where if where.exists() else where.parent
        if not os.access(probe, os.W_OK):
            found.problems.append(f"{probe}: permission denied (maintd cannot create or remove files there)")
    rotating = any(s.action == "rotate" for s in found.steps)
    if rotating and cfg.method is Method.copytruncate:
        for step in (s for s in found.steps if s.action == "rotate" and not os.access(s.path, os.W_OK)):
            found.problems.append(f"{step.path}: permission denied (copytruncate must truncate it)")
    if rotating and cfg.method is Method.rename and cfg.pid_file:
        found.pid = _writer_pid(cfg.pid_file, found.problems)


def _writer_pid(pid_file: str, problems: list[str]) -> int | None:
    try:
        text = Path(pid_file).read_text().strip()
    except OSError as exc:
        problems.append(f"pid file {pid_file}: {exc.strerror}")
        return None
    if not text.isdigit() or int(text) <= 0:
        problems.append(f"pid file {pid_file} does not hold a process id: {text[:40]!r}")
        return None
    try:
        os.kill(int(text), 0)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            problems.append(f"process {text} from pid file {pid_file} is not running")
            return None
    return int(text)


def _held_name(path: Path, pattern: str) -> str:
    """Absolute patterns match the full path; others the file name."""
    return str(path) if pattern.startswith("/") else path.name


def _names(where: Path) -> list[str]:
    return sorted(os.listdir(where)) if where.is_dir() else []


def _days(value: timedelta) -> float:
    return round(value.total_seconds() / 86400, 2)


def codec_of(path: Path) -> Codec:
    return Codec.zstd if path.suffix == ".zst" else Codec.gzip
