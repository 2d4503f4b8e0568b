"""Process settings: where the database and the plan are, where to listen.

Read once by the CLI from options and ``MAINTD_*`` environment variables and
handed down; nothing reads the environment at import time.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from maintd.plan.executor import ExecutorSettings

DEFAULT_PORT = 8470
# Sends are threads waiting on the network. An outage opens many incidents at once, and the pages
# an alert's transaction queues beyond the free sends wait for the dispatcher's loop: with 8, the
# slowest pages at 100 new incidents/s on PostgreSQL came 34-78 ms after the alert's 2xx, with 32
# within 10 ms (docs/benchmarks.md, "latency").
DEFAULT_NOTIFY_CONCURRENCY = 32
ROLES = ("all", "api", "scheduler")  # [lease] what ``maintd serve`` runs (docs/deployment.md)
DEFAULT_LEASE_TTL = 15.0  # [lease] seconds a silent scheduler keeps the lease (maintd.lease)
EXECUTORS = ("local", "celery")  # [executor] where claimed runs execute (maintd.executor)
DEFAULT_QUEUE = "maintd"  # [executor] the Celery queue runs are sent to
DEFAULT_VISIBILITY = 3600.0  # [executor] seconds before Redis hands an unacknowledged run to another worker
DEFAULT_REAPER_INTERVAL = 30.0  # [executor] seconds between the scheduler's looks for lost runs
DEFAULT_REAPER_GRACE = 120.0  # [executor] a run unrecorded this long after its task's timeout is lost
# [executor] The fields the plan's runner.executor may set, and the environment variable of each.
EXECUTOR_ENV = {
    "executor": "MAINTD_EXECUTOR",
    "broker_url": "MAINTD_BROKER_URL",
    "queue": "MAINTD_QUEUE",
    "visibility_timeout": "MAINTD_BROKER_VISIBILITY",
    "reaper_interval": "MAINTD_REAPER_INTERVAL",
    "reaper_grace": "MAINTD_REAPER_GRACE",
}


def default_state_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "maintd"


def default_database_url() -> str:
    return f"sqlite:///{default_state_dir() / 'maintd.db'}"


@dataclass(frozen=True)
class Settings:
    database_url: str
    plan_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    clock: str | None = None  # "file:/path" in process tests; the system clock otherwise
    state_dir: Path | None = None  # local files (process groups of running commands); None: keep none
    ingest_rate: float = 100.0  # alert requests per second per integration (or token), sustained
    ingest_burst: int = 200  # ... and in a burst
    intake_poll: float = 0.05  # seconds between the drain's looks at an empty alert_intake journal
    notify_concurrency: int = DEFAULT_NOTIFY_CONCURRENCY  # pages this process sends at once
    public_url: str | None = None  # how people reach this API (links in pages); None: http://host:port
    # [lease] all: API + scheduler (the default); api: HTTP only; scheduler: no API, a health port.
    role: str = "all"
    lease_ttl: float = DEFAULT_LEASE_TTL  # [lease] on PostgreSQL: how long a paused holder keeps the lease
    # [executor] local: the scheduler's own runner (the default); celery: `maintd worker` processes.
    executor: str = "local"
    broker_url: str | None = None  # [executor] the Celery broker (redis://...), for executor celery
    queue: str = DEFAULT_QUEUE  # [executor]
    visibility_timeout: float = DEFAULT_VISIBILITY  # [executor] longer than the longest task timeout
    reaper_interval: float = DEFAULT_REAPER_INTERVAL  # [executor] maintd.executor.reaper
    reaper_grace: float = DEFAULT_REAPER_GRACE  # [executor]
    # [executor] Executor fields set by a flag or the environment: they win over the plan's.
    explicit: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.role not in ROLES:  # [lease]
            raise ValueError(f"unknown role {self.role!r}: choose one of {', '.join(ROLES)}")
        if not (math.isfinite(self.intake_poll) and self.intake_poll > 0):
            raise ValueError(
                f"MAINTD_INTAKE_POLL must be a positive number of seconds, not {self.intake_poll}"
            )
        if self.notify_concurrency < 1:
            raise ValueError(
                f"MAINTD_NOTIFY_CONCURRENCY must be at least 1 (sends at once), not {self.notify_concurrency}"
            )
        if self.lease_ttl <= 0:
            raise ValueError(f"the lease timeout must be a positive number of seconds, not {self.lease_ttl}")
        if self.executor not in EXECUTORS:  # [executor]
            raise ValueError(f"unknown executor {self.executor!r}: choose one of {', '.join(EXECUTORS)}")
        for name in ("visibility_timeout", "reaper_interval", "reaper_grace"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{EXECUTOR_ENV[name]} must be a positive number of seconds")

    def with_plan(self, section: ExecutorSettings) -> Settings:
        """[executor] These settings with the plan's ``runner.executor`` where no flag or variable
        set a field; a broker URL reference is resolved here (ValueError naming it when it cannot)."""
        values: dict[str, object] = {
            "executor": section.kind,
            "queue": section.queue,
            "visibility_timeout": section.visibility_timeout.total_seconds(),
            "reaper_interval": section.reaper_interval.total_seconds(),
            "reaper_grace": section.reaper_grace.total_seconds(),
        }
        if "broker_url" not in self.explicit and section.broker_url is not None:
            try:
                values["broker_url"] = section.broker()
            except LookupError as exc:
                raise ValueError(f"plan runner.executor.broker_url: {exc}") from exc
        merged = {k: v for k, v in values.items() if k not in self.explicit}
        return dataclasses.replace(self, **merged)  # type: ignore[arg-type]

    def check_executor(self) -> None:
        """[executor] Once merged with the plan: celery needs a broker (ValueError saying where)."""
        if self.executor == "celery" and not self.broker_url:
            raise ValueError(
                "executor celery needs a broker: set runner.executor.broker_url in the plan "
                "(env:NAME or file:/path), --broker-url or MAINTD_BROKER_URL"
            )

    @property
    def schedules(self) -> bool:
        """[lease] This process runs the scheduler, timers, runner and dispatcher (holding the lease)."""
        return self.role != "api"

    @property
    def serves_api(self) -> bool:
        """[lease] This process serves the whole HTTP API (the scheduler role serves health only)."""
        return self.role != "scheduler"

    @property
    def base_url(self) -> str:
        """The start of links put in notifications, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": os.environ.get("MAINTD_DATABASE_URL") or default_database_url(),
            "plan_path": Path(p) if (p := os.environ.get("MAINTD_PLAN")) else None,
            "host": os.environ.get("MAINTD_HOST", "127.0.0.1"),
            "port": int(os.environ.get("MAINTD_PORT", DEFAULT_PORT)),
            "clock": os.environ.get("MAINTD_CLOCK"),
            "state_dir": Path(os.environ.get("MAINTD_STATE_DIR") or default_state_dir()),
            "ingest_rate": float(os.environ.get("MAINTD_INGEST_RATE", 100.0)),
            "ingest_burst": int(os.environ.get("MAINTD_INGEST_BURST", 200)),
            "intake_poll": _seconds("MAINTD_INTAKE_POLL", 0.05),
            "notify_concurrency": _count("MAINTD_NOTIFY_CONCURRENCY", DEFAULT_NOTIFY_CONCURRENCY),
            "public_url": os.environ.get("MAINTD_PUBLIC_URL") or None,
            "role": os.environ.get("MAINTD_ROLE") or "all",  # [lease]
            "lease_ttl": float(os.environ.get("MAINTD_LEASE_TTL") or DEFAULT_LEASE_TTL),
        }
        values.update(_executor_from_env())  # [executor]
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        explicit = {k for k in EXECUTOR_ENV if k in given or os.environ.get(EXECUTOR_ENV[k])}
        return cls(**values, explicit=frozenset(explicit))  # type: ignore[arg-type]


def _seconds(var: str, default: float) -> float:
    return _number(var, default, float, "a number of seconds")


def _count(var: str, default: int) -> int:
    return _number(var, default, int, "a whole number")


N = TypeVar("N", int, float)


def _number(var: str, default: N, parse: Callable[[str], N], what: str) -> N:
    raw = os.environ.get(var)
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(f"{var} must be {what}, not {raw!r}") from None


def _executor_from_env() -> dict[str, object]:
    """[executor] The executor fields set in the environment (numbers checked, naming the variable)."""
    values: dict[str, object] = {}
    for name, var in EXECUTOR_ENV.items():
        raw = os.environ.get(var)
        if not raw:
            continue
        if name in ("visibility_timeout", "reaper_interval", "reaper_grace"):
            try:
                values[name] = float(raw)
            except ValueError:
                raise ValueError(f"{var} must be a number of seconds, not {raw!r}") from None
        else:
            values[name] = raw
    return values
