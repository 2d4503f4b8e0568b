"""``disk``: space and inode usage of the filesystem holding a path (seed: alert above 80 %)."""

from __future__ import annotations

import asyncio
import os

from pydantic import Field

from maintd.checks.base import CheckResult, Kind, RunContext, Status
from maintd.plan.base import StrictModel


class DiskConfig(StrictModel):
    path: str | None = Field(default=None, description="default: the target's connection.path")
    warn_percent: float = Field(default=80.0, gt=0, le=100)
    crit_percent: float = Field(default=90.0, gt=0, le=100)
    inode_warn_percent: float = Field(default=80.0, gt=0, le=100)
    inode_crit_percent: float = Field(default=90.0, gt=0, le=100)


class DiskCheck:
    def __init__(self, config: DiskConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        path = self.config.path or ctx.target.connection.get("path")
        if not path:
            return CheckResult(
                Status.unknown, f"no path: set params.path or target {ctx.target.name}'s connection.path"
            )
        try:
            st = await asyncio.to_thread(os.statvfs, path)
        except OSError as exc:
            return CheckResult(Status.critical, f"{path}: {exc.strerror or exc}")
        # Like df: the space an unprivileged user can use is the denominator.
        usable = (st.f_blocks - st.f_bfree + st.f_bavail) * st.f_frsize
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        percent = 100.0 * used / usable if usable else 0.0
        inode_percent = 100.0 * (st.f_files - st.f_ffree) / st.f_files if st.f_files else 0.0
        cfg = self.config
        status = max(
            _level(percent, cfg.warn_percent, cfg.crit_percent),
            _level(inode_percent, cfg.inode_warn_percent, cfg.inode_crit_percent),
            key=lambda s: s.rank,
        )
        free_mib = st.f_bavail * st.f_frsize / 2**20
        return CheckResult(
            status,
            f"{path}: {percent:.1f}% used, {free_mib:.0f} MiB free, inodes {inode_percent:.1f}% used",
            {
                "used_percent": round(percent, 2),
                "inode_percent": round(inode_percent, 2),
                "used_bytes": float(used),
                "free_bytes": float(st.f_bavail * st.f_frsize),
            },
        )


def _level(value: float, warn: float, crit: float) -> Status:
    if value >= crit:
        return Status.critical
    return Status.warning if value >= warn else Status.ok


KIND = Kind(
    name="disk",
    config=DiskConfig,
    build=DiskCheck,
    summary="filesystem space and inode usage of a path, warn/crit thresholds in percent",
)
