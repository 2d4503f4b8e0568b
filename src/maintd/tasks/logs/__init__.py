"""``logs``: log retention for a directory (issue 5, "Log retention (weekly)").

Rotates live logs (rename + a reopen signal to the writer, or copytruncate), compresses
rotated logs older than ``compress_after`` (zstd by default, gzip selectable) and proves each
archive before removing its original, and deletes rotated logs past ``rotate`` / ``maxage``
unless a legal hold or the minimum retention keeps them. The modules: ``config`` (params),
``survey`` (what to do; changes nothing), ``rotate`` and ``archive`` (the steps), ``action``
(runs the steps, reports counts and bytes).
"""

from __future__ import annotations

from maintd.checks.base import Kind
from maintd.tasks.logs.action import LogsAction
from maintd.tasks.logs.config import LogsConfig

KIND = Kind(
    name="logs",
    config=LogsConfig,
    build=LogsAction,
    summary="rotate, compress (verified) and expire the logs of a directory; legal hold, min retention",
    changes=lambda _config: True,
)
