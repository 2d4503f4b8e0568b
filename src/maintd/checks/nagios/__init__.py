"""``nagios``: run a Nagios / Monitoring Plugins check by name, read per the plugin guidelines.

The ``command`` kind with a plugin lookup: the same process-group runner and
output parser (``maintd.checks.command``), plus unit conversion of perfdata to
seconds and bytes, threshold metrics, and notes on values beyond their ranges.
See docs/kinds/nagios.md.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Sequence
from datetime import timedelta

from pydantic import Field, field_validator

from maintd.checks.base import CheckResult, Kind, RunContext, Status
from maintd.checks.command import run_plugin, substitute
from maintd.plan.base import StrictModel
from maintd.plan.types import Duration

DEFAULT_PLUGIN_DIRS = ("/usr/lib/nagios/plugins", "/usr/lib/monitoring-plugins", "/usr/local/nagios/libexec")

# With ``timeout``, the plugin gets ``-t N`` and this long after N to report its own timeout
# before maintd kills its process group.
KILL_GRACE = 1.0


class NagiosConfig(StrictModel):
    plugin: str = Field(
        min_length=1, description="plugin name (looked up in plugin_dirs) or an absolute path"
    )
    args: list[str] = Field(
        default=[], description="arguments, one per item, never a shell string; {target.KEY} placeholders"
    )
    plugin_dirs: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PLUGIN_DIRS),
        description="directories searched, in order, for a plugin given by name",
    )
    timeout: Duration | None = Field(
        default=None,
        description="passed to the plugin as `timeout_option N` (whole seconds, rounded up); "
        "maintd kills the plugin 1 s later",
    )
    timeout_option: str | None = Field(
        default="-t", description="the plugin's timeout option; null for plugins without one"
    )
    env: dict[str, str] = Field(default={}, description="extra environment variables (LC_ALL=C is set)")
    output_limit: int = Field(default=16_384, ge=256, description="bytes of output kept")

    @field_validator("plugin")
    @classmethod
    def _name_or_absolute(cls, value: str) -> str:
        if "/" in value and not os.path.isabs(value):
            raise ValueError(f"plugin {value!r}: give a name (looked up in plugin_dirs) or an absolute path")
        if value in (".", ".."):
            raise ValueError(f"plugin {value!r} is not a plugin name")
        return value

    @field_validator("plugin_dirs")
    @classmethod
    def _absolute_dirs(cls, value: list[str]) -> list[str]:
        relative = [d for d in value if not os.path.isabs(d)]
        if relative:
            raise ValueError(f"plugin_dirs must be absolute paths: {', '.join(relative)}")
        return value

    @field_validator("timeout")
    @classmethod
    def _whole_seconds(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() < 1:
            raise ValueError("timeout must be at least 1s (plugins take whole seconds)")
        return value


class PluginError(LookupError):
    """The plugin is missing or cannot be executed (the message says which)."""


def find_plugin(plugin: str, dirs: Sequence[str]) -> str:
    """The path of an executable plugin: ``plugin`` itself when absolute, else the first
    executable ``DIR/plugin`` in ``dirs``. Raises PluginError with the reason."""
    if os.path.isabs(plugin):
        return _executable(plugin)
    first_problem: PluginError | None = None
    for directory in dirs:
        path = os.path.join(directory, plugin)
        if not os.path.lexists(path):
            continue
        try:
            return _executable(path)
        except PluginError as exc:
            first_problem = first_problem or exc
    if first_problem is not None:
        raise first_problem
    raise PluginError(f"plugin {plugin} not found in {', '.join(dirs) or 'no plugin_dirs'}")


def _executable(path: str) -> str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise PluginError(f"plugin {path} is a broken symlink") from None
        raise PluginError(f"plugin {path} does not exist") from None
    except OSError as exc:
        raise PluginError(f"plugin {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise PluginError(f"plugin {path} is not a file")
    if not os.access(path, os.X_OK):
        raise PluginError(f"plugin {path} is not executable (mode {stat.S_IMODE(st.st_mode):04o})")
    return path


class NagiosCheck:
    def __init__(self, config: NagiosConfig) -> None:
        self.config = config

    async def run(self, ctx: RunContext) -> CheckResult:
        cfg = self.config
        try:
            path = find_plugin(cfg.plugin, cfg.plugin_dirs)
        except PluginError as exc:
            return CheckResult(Status.unknown, str(exc))
        try:
            args = substitute(cfg.args, ctx)
        except ValueError as exc:
            return CheckResult(Status.unknown, str(exc))
        time_limit = None
        if cfg.timeout is not None:
            seconds = math.ceil(cfg.timeout.total_seconds())
            if cfg.timeout_option is not None:
                args = [cfg.timeout_option, str(seconds), *args]
            time_limit = seconds + KILL_GRACE
            if time_limit >= ctx.seconds_left():
                time_limit = None  # the task's own deadline comes first; the runner stops the run
        return await run_plugin(
            [path, *args],
            env={"LC_ALL": "C", **cfg.env},
            limit=cfg.output_limit,
            tracker=ctx.processes,
            time_limit=time_limit,
            base_units=True,
        )


KIND = Kind(
    name="nagios",
    config=NagiosConfig,
    build=NagiosCheck,
    summary="run a Nagios / Monitoring Plugins check by name; perfdata in base units, thresholds noted",
)
