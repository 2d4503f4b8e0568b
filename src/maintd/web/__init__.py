"""The web dashboard: server-rendered pages for people, beside the API for programs.

``install(app)`` mounts it at ``/``: ``/login``, the overview ``/``, ``/incidents``,
``/silences``, ``/tasks``, ``/runs``, ``/changes``, ``/postmortems`` (and each one's editing
page), ``/reviews`` (and each review's checklist), ``/kpis``, ``/capacity``, ``/inventory``
and ``/static``.
Pages stay out of the OpenAPI document (they are not an API). No JavaScript, no
CDN: the stylesheet is the only static file, charts are inline SVG.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from maintd.web import pages, planning, postmortem, review, routes, silences

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    app.include_router(routes.router())
    app.include_router(pages.router())
    app.include_router(planning.router())  # capacity and inventory
    app.include_router(postmortem.router())  # one post-mortem: edit, review, action items
    app.include_router(silences.router())
    app.include_router(review.router())  # reviews: the checklist, findings, completing
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
