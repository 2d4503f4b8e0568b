"""RFC 9457 problem responses: every error the API returns has this one shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from maintd.store.db import StoreError
from maintd.store.outage import RETRY_AFTER, reason, unavailable

MEDIA_TYPE = "application/problem+json"


def problem(status: int, title: str, detail: str = "", **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, **({"detail": detail} if detail else {})}
    body.update(extra)
    headers = {"Retry-After": str(RETRY_AFTER)} if status == 503 else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, _title(exc.status_code), str(exc.detail or ""))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        found = exc.errors()
        broken = next((e for e in found if e["type"] == "json_invalid"), None)
        if broken is not None:  # as the alert routes say it: not a field's fault, the whole body's
            said = broken.get("ctx", {}).get("error", broken["msg"])
            return problem(
                400, "Malformed JSON", f"the body is not valid JSON: {said} at character {broken['loc'][-1]}"
            )
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in found]
        return problem(422, "Invalid request", "see errors", errors=errors)

    @app.exception_handler(StoreError)
    async def _store(_req: Request, exc: StoreError) -> JSONResponse:
        return problem(503, "Database unavailable", str(exc))

    @app.exception_handler(SQLAlchemyError)
    async def _db_down(_req: Request, exc: SQLAlchemyError) -> JSONResponse:
        # A lost connection takes several shapes (see maintd.store.outage); any other database
        # error is a bug and stays a 500 with its traceback in the log.
        if not unavailable(exc):
            raise exc
        detail = f"{reason(exc)}; send the request again later (a repeat is harmless)"
        return problem(503, "Database unavailable", detail)


def _title(status: int) -> str:
    return {
        400: "Bad request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        409: "Conflict",
        413: "Payload too large",
    }.get(status, "Error")
