"""Process settings: where the database and the plan are, where to listen.

Read once by the CLI from options and ``MAINTD_*`` environment variables and
handed down; nothing reads the environment at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 8470


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
    public_url: str | None = None  # how people reach this API (links in pages); None: http://host:port

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
            "public_url": os.environ.get("MAINTD_PUBLIC_URL") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
