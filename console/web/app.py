"""`create_app(deps)`: the console's Starlette application (routes, sessions, errors)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from pathlib import Path

from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from console.bidi import visible_bidi
from console.deps import ConsoleDeps
from console.forms import FormError
from console.i18n import CATALOGUE, translate
from console.periods import local_time
from console.questions import question_name, script_name
from console.wallboard import WallboardHub
from console.web import views_admin as admin
from console.web import views_auth as auth
from console.web import views_dnc as dnc
from console.web import views_pages as pages
from console.web import views_reports as reports
from console.web import views_spotcheck as spot
from console.web import views_wallboard as wallboard
from console.web import views_worklist as work
from console.web.base import TEMPLATES_DIR, locale, login_redirect, render
from console.web.errors import LoginRequired, status_for
from core.errors import FollowupError, TelephonyError
from core.web_headers import SecurityHeaders
from core.web_links import masked

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
MAX_BODY = 256 * 1024
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'")


async def _on_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired):
        return login_redirect(request)
    assert isinstance(exc, FollowupError)
    status = status_for(exc)
    lang = locale(request)
    detail = ""
    if isinstance(exc, FormError):
        detail = f"{exc.field}: {translate(lang, 'problem.' + exc.problem, **exc.values)}"
    key = f"error.{exc.code}"
    if key not in CATALOGUE[lang]:
        key = "error.telephony_error" if isinstance(exc, TelephonyError) else "error.other"
    return render(request, "error.html", {"status": status, "code": exc.code,
                                          "message": translate(lang, key),
                                          "detail": detail}, status=status)


def routes() -> list[Route | Mount]:
    return [
        Route("/login", auth.login_page, methods=["GET"]),
        Route("/login", auth.login_submit, methods=["POST"]),
        Route("/logout", auth.logout, methods=["POST"]),
        Route("/lang/{lang:str}", auth.switch_language, methods=["GET"]),
        Route("/", pages.dashboard_page, methods=["GET"]),
        Route("/wallboard/events", wallboard.wallboard_events, methods=["GET"]),
        Route("/campaign/pause", wallboard.campaign_pause, methods=["POST"]),
        Route("/campaign/resume", wallboard.campaign_resume, methods=["POST"]),
        Route("/calls", pages.calls_page, methods=["GET"]),
        Route("/calls.csv", pages.calls_export, methods=["GET"]),
        Route("/calls.xlsx", pages.calls_export, methods=["GET"]),
        Route("/tasks.csv", pages.tasks_export, methods=["GET"]),
        Route("/tasks.xlsx", pages.tasks_export, methods=["GET"]),
        Route("/calls/{id:int}", pages.call_page, methods=["GET"]),
        Route("/tasks", pages.tasks_page, methods=["GET"]),
        Route("/patients/{id:int}", pages.patient_view, methods=["GET"]),
        Route("/recordings/{id:int}/audio", pages.recording_audio, methods=["GET"]),
        Route("/recordings/{id:int}/download", pages.recording_download, methods=["GET"]),
        Route("/recordings/{id:int}/hold", pages.legal_hold, methods=["POST"]),
        Route("/worklist", work.worklist_page, methods=["GET"]),
        Route("/worklist.csv", work.worklist_export, methods=["GET"]),
        Route("/worklist.xlsx", work.worklist_export, methods=["GET"]),
        Route("/worklist/{id:int}/claim", work.claim, methods=["POST"]),
        Route("/worklist/{id:int}/close", work.close, methods=["POST"]),
        Route("/worklist/{id:int}/note", work.note, methods=["POST"]),
        Route("/worklist/{id:int}/call", work.click_to_call, methods=["POST"]),
        Route("/worklist/{id:int}/release", work.release, methods=["POST"]),
        Route("/worklist/{id:int}/reassign", work.reassign, methods=["POST"]),
        Route("/spotcheck", spot.samples_page, methods=["GET"]),
        Route("/spotcheck", spot.draw, methods=["POST"]),
        Route("/spotcheck/{id:int}", spot.sample_page, methods=["GET"]),
        Route("/spotcheck/items/{id:int}", spot.review_page, methods=["GET"]),
        Route("/spotcheck/items/{id:int}", spot.review_submit, methods=["POST"]),
        Route("/reports/monthly", reports.report_page, methods=["GET"]),
        Route("/reports/monthly/print", reports.report_print, methods=["GET"]),
        Route("/reports/monthly.xlsx", reports.report_excel, methods=["GET"]),
        Route("/definitions", admin.definitions_page, methods=["GET"]),
        Route("/users", admin.users_page, methods=["GET"]),
        Route("/users", admin.add_user, methods=["POST"]),
        Route("/users/{id:int}/grant", admin.grant, methods=["POST"]),
        Route("/users/{id:int}/active", admin.set_active, methods=["POST"]),
        Route("/dnc", dnc.dnc_page, methods=["GET"]),
        Route("/dnc", dnc.dnc_add, methods=["POST"]),
        Route("/dnc/import", dnc.dnc_import, methods=["POST"]),
        Route("/dnc/{id:int}/remove", dnc.dnc_remove, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]


@pass_context
def department_name(ctx: Context, item: object) -> str:
    """A department (a `Department`, or a row carrying `department_name[_en]`) by its name
    in the reader's language; its code when no name is stored."""
    name = getattr(item, "department_name", None) or getattr(item, "name", "") or ""
    name_en = getattr(item, "department_name_en", None) or getattr(item, "name_en", "") or ""
    code = getattr(item, "department", None) or getattr(item, "code", "") or ""
    shown = name if ctx.get("lang") == "zh" else (name_en or name)
    return str(shown or code)


def create_app(deps: ConsoleDeps) -> Starlette:
    """The console app. `deps.secret_key` signs the session cookie (must be long and secret).

    Raises ValueError for a short secret key.
    """
    if len(deps.secret_key) < 32:
        raise ValueError("console secret key must have at least 32 characters")
    hub = WallboardHub(deps.db, deps.clock)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await hub.close()

    app = Starlette(
        lifespan=lifespan,
        routes=routes(),
        middleware=[
            Middleware(SecurityHeaders, csp=_CSP, referrer="same-origin", max_body=MAX_BODY),
            Middleware(SessionMiddleware, secret_key=deps.secret_key,
                       session_cookie="followup_session",
                       max_age=deps.session_hours * 3600, same_site="strict",
                       https_only=deps.https_only),
        ],
        exception_handlers={FollowupError: _on_error},
    )
    app.state.deps = deps
    app.state.hub = hub
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.finalize = visible_bidi
    templates.env.filters["local"] = functools.partial(local_time, tz=deps.timezone)
    templates.env.globals["question_name"] = functools.partial(question_name, deps.questions)
    templates.env.globals["script_name"] = functools.partial(script_name, deps.questions)
    templates.env.filters["dept"] = department_name
    templates.env.filters["masked"] = masked
    app.state.templates = templates
    return app
