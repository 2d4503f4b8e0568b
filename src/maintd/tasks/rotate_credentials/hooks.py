"""One hook-driven rotation; the order is the safety: retire runs only after verify passed.

The memo keeps the generation numbers and, when retiring failed, that it is pending: the next
run retries the retirement alone (verify passed already), never a new rotation over it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from maintd.checks.base import Change, CheckResult, RunContext, Status
from maintd.checks.command.process import execute
from maintd.plan.types import format_duration
from maintd.tasks.rotate_credentials.generic import RotateCredentialsConfig

OUTPUT_LIMIT = 8192
SECRET_LIMIT = 4096


@dataclass(frozen=True)
class Ran:
    ok: bool
    said: str  # "exit 0: <last line>" with the secret redacted
    output: str = ""


class Rotation:
    def __init__(self, cfg: RotateCredentialsConfig, ctx: RunContext, previous: int) -> None:
        self.cfg, self.ctx = cfg, ctx
        self.previous, self.generation = previous, previous + 1
        self.secret = ""
        self.lines: list[str] = []
        self.changes: list[Change] = []
        self._dir = Path(tempfile.mkdtemp(prefix="maintd-rotate-"))  # mode 0700
        self.secret_path = self._dir / "secret"

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def env(self) -> dict[str, str]:
        """What every hook is told; the secret file only once it is written (not to generate, nor
        to a retirement retried by a later run: that run never knew the secret)."""
        env = {
            "MAINTD_CREDENTIAL": self.cfg.credential,
            "MAINTD_GENERATION": str(self.generation),
            "MAINTD_PREVIOUS_GENERATION": str(self.previous),
        }
        if self.secret_path.exists():
            env["MAINTD_SECRET_FILE"] = str(self.secret_path)
        return env

    def redact(self, text: str) -> str:
        return text.replace(self.secret, "[redacted]") if self.secret else text

    async def hook(self, step: str, argv: list[str]) -> Ran:
        limit = max(1.0, min(self.cfg.hook_timeout.total_seconds(), self.ctx.seconds_left()))
        try:
            done = await execute(argv, env=self.env(), limit=OUTPUT_LIMIT, tracker=self.ctx.processes,
                                 time_limit=limit)  # fmt: skip
        except OSError as exc:
            return Ran(False, f"{step} hook cannot start {argv[0]}: {exc.strerror or exc}")
        output = done.output.decode(errors="replace")
        last = [line.strip() for line in self.redact(output).strip().splitlines()]
        tail = f": {last[-1]}" if last else ""
        if done.code is None:
            return Ran(False, f"{step} hook timed out after {format_duration(self.cfg.hook_timeout)}{tail}")
        return Ran(done.code == 0, f"{step} hook exit {done.code}{tail}", output)

    def write_secret(self) -> None:
        fd = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.secret)


async def run(cfg: RotateCredentialsConfig, ctx: RunContext) -> CheckResult:
    memo = await ctx.memo()
    generation = int(memo.get("generation") or 0)
    head = f"credential {cfg.credential}: generation {generation}"
    if memo.get("retire_pending") is not None:
        return await _finish_retire(cfg, ctx, memo, head)
    last = _when(memo.get("rotated_at"))
    if cfg.min_interval is not None and last is not None and ctx.clock.now() - last < cfg.min_interval:
        within = format_duration(cfg.min_interval)
        return CheckResult(Status.ok, f"{head}\nrotated at {last.isoformat()}, within min_interval {within}")
    if ctx.dry_run:
        steps = ["generate", "install", *(["reload"] if cfg.reload else []), "verify", "retire"]
        text = f"{head}\ndry run: would rotate to generation {generation + 1}: {' -> '.join(steps)}"
        return CheckResult(Status.ok, text, changes=[Change("rotate", cfg.credential, {"steps": steps})])
    rotation = Rotation(cfg, ctx, generation)
    try:
        return await _rotate(rotation, head)
    finally:
        rotation.close()


async def _rotate(r: Rotation, head: str) -> CheckResult:
    cfg, now = r.cfg, r.ctx.clock.now().isoformat()
    failed = await _new_secret(r)
    if failed:
        return _result(Status.critical, head, r, f"{failed}; nothing changed", None)
    r.write_secret()
    for step, argv in (("install", cfg.install), ("reload", cfg.reload), ("verify", cfg.verify)):
        if argv is None:
            continue
        ran = await r.hook(step, argv)
        r.lines.append(ran.said)
        if not ran.ok:
            why = f"{step} failed: the old secret (generation {r.previous}) was not retired and still works"
            # The generation stays: the next run installs that number again, over what this one left.
            return _result(Status.critical, head, r, why, {"generation": r.previous})
        r.changes.append(Change(step, cfg.credential, {"generation": r.generation}))
    memo: dict[str, Any] = {"generation": r.generation, "rotated_at": now}
    retired = await r.hook("retire", cfg.retire)
    r.lines.append(retired.said)
    if not retired.ok:
        memo["retire_pending"] = r.previous
        why = f"retire failed: generation {r.previous} still valid beside {r.generation}; "
        why += "the next run retries it"
        return _result(Status.warning, head, r, why, memo)
    r.changes.append(Change("retire", cfg.credential, {"generation": r.previous}))
    return _result(Status.ok, head, r, f"rotated to generation {r.generation}, {r.previous} retired", memo)


async def _new_secret(r: Rotation) -> str | None:
    """The new secret in ``r.secret``; why not, when it could not be made."""
    if r.cfg.generate is None:
        r.secret = secrets.token_urlsafe(r.cfg.length)
        return None
    ran = await r.hook("generate", r.cfg.generate)
    secret = ran.output.strip() if ran.ok else ""
    if not ran.ok:
        return ran.said
    if not secret or "\n" in secret or len(secret) > SECRET_LIMIT:
        return "generate hook printed no usable secret (one line, 1-4096 characters, expected)"
    r.secret = secret
    r.lines.append("generate hook exit 0")  # its output is the secret: never shown
    return None


async def _finish_retire(
    cfg: RotateCredentialsConfig, ctx: RunContext, memo: dict[str, Any], head: str
) -> CheckResult:
    old = int(memo["retire_pending"])
    if ctx.dry_run:
        return CheckResult(Status.ok, f"{head}\ndry run: would retire generation {old} (pending)",
                           changes=[Change("retire", cfg.credential, {"generation": old})])  # fmt: skip
    r = Rotation(cfg, ctx, old)
    r.generation = int(memo["generation"])
    try:
        ran = await r.hook("retire", cfg.retire)
    finally:
        r.close()
    r.lines.append(f"finishing the last rotation: {ran.said}")
    if not ran.ok:
        return _result(Status.warning, head, r, f"retire failed again: generation {old} still valid", None)
    r.changes.append(Change("retire", cfg.credential, {"generation": old}))
    done = {"generation": r.generation, "rotated_at": memo.get("rotated_at")}
    return _result(Status.ok, head, r, f"generation {old} retired", done)


def _result(status: Status, head: str, r: Rotation, last: str, memo: dict[str, Any] | None) -> CheckResult:
    metrics = {"rotated": 1.0 if status is not Status.critical else 0.0, "generation": float(r.generation)}
    output = r.redact("\n".join([head, *r.lines, last]))
    return CheckResult(status, output, metrics, r.changes, memo=memo)


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
