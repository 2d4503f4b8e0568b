"""About 1 GB of realistic log text for ``bench/logs.py``, made once and cached under /tmp.

Two kinds of lines, interleaved as a web tier's log directory would hold them: nginx
``combined`` access lines with upstream timings, and an application's lines (level, thread,
logger, a message with ids and durations, sometimes a trace id). Fields vary the way real
ones do: a few hundred client addresses, a skewed set of paths with numeric ids, mostly
200s, sizes and latencies from long-tailed draws. Seeded, so every run has the same bytes.

    python -m bench.logsdata [BYTES]
"""

from __future__ import annotations

import os
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

CACHE = Path(os.environ.get("MAINTD_BENCH_LOGS", "/tmp/maintd-bench-logs"))
SIZE = 1_000_000_000
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

PATHS = (
    "/api/v1/orders/{id}",
    "/api/v1/orders?page={n}&per_page=50",
    "/api/v1/users/{id}/profile",
    "/api/v1/cart/{id}/items",
    "/api/v2/search?q={word}&sort=relevance",
    "/static/js/app.{hex}.js",
    "/static/css/main.{hex}.css",
    "/healthz",
    "/metrics",
    "/login",
    "/checkout/{id}/confirm",
    "/images/products/{id}/thumb.webp",
)
WEIGHTS = (20, 8, 10, 6, 7, 9, 4, 12, 6, 3, 2, 13)
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148",
    "kube-probe/1.31",
    "Prometheus/3.0.1",
    "python-requests/2.32.3",
    "curl/8.11.0",
)
WORDS = ("shoes", "laptop", "coffee", "garden+hose", "usb-c", "desk", "lamp", "socks", "book", "phone")
LOGGERS = ("orders.service", "payments.client", "auth.session", "cart.repo", "search.index", "mail.outbox")
MESSAGES = (
    "order {id} processed in {ms} ms",
    "payment authorised for order {id} amount={cents} currency=EUR",
    "session refreshed user=u{uid}",
    "cache miss key=cart:{id} loading from database",
    "query took {ms} ms rows={n}",
    "sent confirmation mail to user=u{uid} template=order_confirmed",
    "retrying upstream call attempt={n} after {ms} ms",
)
LEVELS = ("INFO",) * 14 + ("DEBUG",) * 4 + ("WARN", "ERROR")


def generate(path: Path, size: int, seed: int = 5) -> None:
    rnd = random.Random(seed)
    clients = [f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}" for _ in range(5000)]
    hexes = [f"{rnd.getrandbits(32):08x}" for _ in range(12)]
    at = datetime(2026, 10, 1, tzinfo=UTC)
    tmp = path.with_suffix(".part")
    written = 0
    with tmp.open("w", encoding="ascii", buffering=1 << 20) as fh:
        while written < size:
            lines = []
            for _ in range(2000):
                at += timedelta(microseconds=rnd.randrange(200, 9000))
                if rnd.random() < 0.7:
                    lines.append(_access(rnd, at, clients, hexes))
                else:
                    lines.append(_app(rnd, at))
            block = "".join(lines)
            fh.write(block)
            written += len(block)
    tmp.rename(path)


def _access(rnd: random.Random, at: datetime, clients: list[str], hexes: list[str]) -> str:
    template = rnd.choices(PATHS, WEIGHTS)[0]
    url = template.format(
        id=int(rnd.paretovariate(1.2) * 1000),
        n=rnd.randrange(1, 20),
        word=rnd.choice(WORDS),
        hex=rnd.choice(hexes),
    )
    status = rnd.choices((200, 304, 404, 500, 302), (88, 5, 4, 1, 2))[0]
    size = int(rnd.lognormvariate(7.5, 1.4))
    rt = rnd.lognormvariate(-3.5, 1.0)
    stamp = f"{at.day:02d}/{MONTHS[at.month - 1]}/{at.year}:{at:%H:%M:%S} +0000"
    method = "POST" if "confirm" in url or url == "/login" else "GET"
    return (
        f'{rnd.choice(clients)} - - [{stamp}] "{method} {url} HTTP/1.1" {status} {size} '
        f'"https://shop.example.com/" "{rnd.choice(AGENTS)}" rt={rt:.3f} uct=0.000 '
        f"urt={rt * 0.9:.3f} rid={rnd.getrandbits(64):016x}\n"
    )


def _app(rnd: random.Random, at: datetime) -> str:
    message = rnd.choice(MESSAGES).format(
        id=rnd.randrange(100_000, 999_999),
        ms=int(rnd.lognormvariate(3, 1)),
        cents=rnd.randrange(100, 50_000),
        uid=rnd.randrange(1, 60_000),
        n=rnd.randrange(1, 200),
    )
    trace = f" trace={rnd.getrandbits(64):016x}" if rnd.random() < 0.6 else ""
    return (
        f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z {rnd.choice(LEVELS)} "
        f"[worker-{rnd.randrange(16)}] {rnd.choice(LOGGERS)}: {message}{trace}\n"
    )


def corpus(size: int = SIZE) -> Path:
    """The cached file of ``size`` bytes of log text (made on first use: about a minute per GB)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"web-{size}.log"
    if not path.exists():
        generate(path, size)
    return path


if __name__ == "__main__":
    print(corpus(int(sys.argv[1]) if len(sys.argv) > 1 else SIZE))
