"""restic and borg repositories, verified by the tool's own ``check``.

restic reads a rotating slice of the data (``--read-data-subset=i/N``, i from the last run's
``subset`` metric), so N runs read the whole repository. A tool that is not installed is
``unknown``: an unverified backup never passes.
"""

from __future__ import annotations

import shutil

from maintd.checks.base import CheckResult, RunContext, Status
from maintd.checks.command.process import execute
from maintd.tasks.backup_files import BackupFilesConfig

OUTPUT_LIMIT = 16_384


async def check_repository(cfg: BackupFilesConfig, ctx: RunContext) -> CheckResult:
    tool = cfg.tool
    program = shutil.which(tool)
    if program is None:
        return CheckResult(Status.unknown, f"{tool} not installed: cannot check the repository")
    repository = cfg.repository or ctx.target.connection.get("repository")
    if not repository:
        return CheckResult(
            Status.unknown,
            f"no repository: set params.repository or target {ctx.target.name}'s connection.repository",
        )
    env: dict[str, str] = {}
    if cfg.password_secret in ctx.target.secrets:
        try:
            secret = ctx.secret(cfg.password_secret)
        except LookupError as exc:
            return CheckResult(Status.unknown, f"{tool} repository {repository}: {exc}")
        env["RESTIC_PASSWORD" if tool == "restic" else "BORG_PASSPHRASE"] = secret
    metrics: dict[str, float] = {}
    if tool == "restic":
        argv = [program, "--repo", str(repository), "check", "--no-lock"]
        if cfg.read_data_runs:
            subset = await _next_subset(ctx, cfg.read_data_runs)
            argv.append(f"--read-data-subset={subset}/{cfg.read_data_runs}")
            metrics["subset"] = float(subset)
    else:
        argv = [program, "check", str(repository)]
    try:
        done = await execute(
            argv, env=env, limit=OUTPUT_LIMIT, tracker=ctx.processes, time_limit=max(1.0, ctx.seconds_left())
        )
    except OSError as exc:
        return CheckResult(Status.unknown, f"cannot start {program}: {exc.strerror or exc}")
    text = done.output.decode(errors="replace").strip()
    what = f"{tool} check {repository}" + (
        f" (data subset {int(metrics['subset'])}/{cfg.read_data_runs})" if "subset" in metrics else ""
    )
    if done.code == 0:
        return CheckResult(Status.ok, f"{what}: no errors\n{text}".rstrip(), metrics)
    how = "timed out" if done.code is None else f"exited {done.code}"
    return CheckResult(Status.critical, f"{what}: {how}\n{text}".rstrip(), metrics)


async def _next_subset(ctx: RunContext, runs: int) -> int:
    for sample in await ctx.history(5):
        if "subset" in sample.metrics:
            return int(sample.metrics["subset"]) % runs + 1
    return 1
