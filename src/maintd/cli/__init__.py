"""The ``maintd`` command line: thin edges over the engine, the store and the API."""

from __future__ import annotations

from maintd.cli.app import app, main

__all__ = ["app", "main"]
