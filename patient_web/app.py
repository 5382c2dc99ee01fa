"""`create_app(deps)`: the patient's questionnaire, a Starlette app of its own (no staff
routes, its own port), mobile-first.

Routes (the token is the only thing in a URL; nothing about the patient ever is):
`GET /q/<token>` the page (refusal, identity check, the current question, or done);
`POST /q/<token>/identity` the birth year; `POST /q/<token>/answer` one answer;
`GET|POST /q/<token>/optout` the opt-out, confirmed. Every response carries no-referrer,
no-store and a strict CSP; every POST a CSRF proof (`patient_web.proofs`); every client
address at most `requests_per_minute` requests (`patient_web.rate_limit`).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from core.errors import FollowupError, NotFound, StoreError
from core.web_headers import SecurityHeaders
from patient_web import views
from patient_web.deps import PatientWebDeps
from patient_web.rate_limit import RateLimit
from patient_web.texts import text

HERE = Path(__file__).resolve().parent
MAX_BODY = 16 * 1024
_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'")


async def _on_error(request: Request, exc: Exception) -> Response:
    status = 404 if isinstance(exc, NotFound) else 503 if isinstance(exc, StoreError) else 500
    return PlainTextResponse(f"{status}: {text('zh-CN', 'bad_form.body')}", status_code=status)


def routes() -> list[Route | Mount]:
    return [
        Route("/q/{token:str}", views.page, methods=["GET"]),
        Route("/q/{token:str}/identity", views.identity, methods=["POST"]),
        Route("/q/{token:str}/answer", views.answer, methods=["POST"]),
        Route("/q/{token:str}/optout", views.optout_page, methods=["GET"]),
        Route("/q/{token:str}/optout", views.optout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(deps: PatientWebDeps) -> Starlette:
    """The questionnaire app. Raises ValueError for a links' key under 32 bytes."""
    if len(deps.key) < 32:
        raise ValueError("patient_web.secret_key must have at least 32 characters")
    app = Starlette(
        routes=routes(),
        middleware=[Middleware(SecurityHeaders, csp=_CSP, referrer="no-referrer", max_body=MAX_BODY,
                               static_cache="max-age=3600"),
                    Middleware(RateLimit, per_minute=deps.requests_per_minute,
                               clock=deps.rate_clock)],
        exception_handlers={FollowupError: _on_error},
    )
    app.state.deps = deps
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    return app
