"""The insight over HTTP, for admins only: ``GET /api/insight`` (JSON), ``…/topics.csv``, ``…/feedback.jsonl``
and ``…/report.html``.

An admin authenticates with HTTP Basic and the web chat's login (``ASSISTANT_UI_USERS="ana:secret:admin"`` or
the users file). Anyone else, signed in or not, gets the same ``404 Not Found`` as for a path that does not
exist, without a challenge header, and the routes are left out of the OpenAPI schema: a non-admin learns
nothing about them. ``include_router(insight_router(...))`` adds them to a FastAPI app.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from assistant.feedback import to_eval_item
from assistant.insight import (
    CachedVectorizer,
    InsightReport,
    Vectorize,
    build_report,
    parse_since,
    render_html,
    topics_csv,
)

if TYPE_CHECKING:
    from assistant.feedback import FeedbackStore
    from assistant.querylog import QueryLog
    from assistant.settings import Settings

PREFIX = "/api/insight"


def basic_user(check: Callable[[str, str], bool] | None) -> Callable[[Request], str | None]:
    """The user of a request's HTTP Basic credentials when ``check`` accepts them, else None."""

    def user_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if check is None or scheme.lower() != "basic" or not encoded:
            return None
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user if sep and check(user, password) else None

    return user_of


def insight_router(
    settings: Settings,
    query_log: QueryLog | None,
    store: FeedbackStore | None,
    vectorize: Vectorize,
    *,
    environ: Mapping[str, str] | None = None,
    user_of: Callable[[Request], str | None] | None = None,
) -> APIRouter:
    """The admin routes over this log and store.

    ``user_of`` names the authenticated user of a request (default: HTTP Basic against the chat's users);
    only names among the admins pass. With login off there are no admins, so every route answers 404.
    """
    from assistant.ui import admin_names, make_auth

    admins = admin_names(settings.ui, environ)
    who = user_of or basic_user(make_auth(settings.ui, environ))
    cached = CachedVectorizer(vectorize)
    max_questions = settings.insight.max_cluster_questions

    def require_admin(request: Request) -> str:
        user = who(request) if admins else None
        if user is None or user not in admins:
            # The answer of an unknown path: no hint that anything is here, and no login challenge.
            raise HTTPException(status_code=404, detail="Not Found")
        return user

    def report(since: str) -> InsightReport:
        try:
            moment = parse_since(since)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        if query_log is not None:
            query_log.flush(timeout_s=5)
        return build_report(query_log, store, cached, moment, max_questions)

    since_q = Query("30d", description="30d, 12w, 24h, an ISO date, or 'all'")
    router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(require_admin)])

    @router.get("")
    def insight_json(since: str = since_q) -> JSONResponse:
        return JSONResponse(report(since).to_json())

    @router.get("/topics.csv")
    def insight_topics(since: str = since_q) -> Response:
        return PlainTextResponse(
            topics_csv(report(since)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="temas-sin-respuesta.csv"'},
        )

    @router.get("/feedback.jsonl")
    def insight_feedback(since: str = since_q) -> Response:
        rows = report(since).thumbs_down
        body = "".join(json.dumps(to_eval_item(r), ensure_ascii=False) + "\n" for r in rows)
        return PlainTextResponse(
            body,
            media_type="application/x-ndjson; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="feedback-evaluacion.jsonl"'},
        )

    @router.get("/report.html")
    def insight_html(since: str = since_q) -> HTMLResponse:
        return HTMLResponse(render_html(report(since)))

    return router
