"""Request helpers shared by the views: the principal, CSRF, language, rendering, DB calls."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from console.access import Permission, Principal, load_principal
from console.deps import ConsoleDeps
from console.exports import Table, as_csv, as_xlsx
from console.forms import FormError
from console.i18n import DEFAULT_LOCALE, LOCALES, translate
from console.sessions import session_user
from console.web.errors import CsrfFailed, LoginRequired
from core.errors import NotFound, PermissionDenied

T = TypeVar("T")
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def deps(request: Request) -> ConsoleDeps:
    found: ConsoleDeps = request.app.state.deps
    return found


def templates(request: Request) -> Jinja2Templates:
    found: Jinja2Templates = request.app.state.templates
    return found


def locale(request: Request) -> str:
    lang = request.session.get("lang", DEFAULT_LOCALE)
    return lang if lang in LOCALES else DEFAULT_LOCALE


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 20:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, sent: object) -> None:
    """Raises CsrfFailed unless `sent` is the session's CSRF token."""
    expected = request.session.get("csrf", "")
    if not isinstance(sent, str) or not isinstance(expected, str) or not expected or \
            not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfFailed("missing or wrong CSRF token")


async def form_data(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The POSTed form after the CSRF check: single values, and every value per name.

    Raises CsrfFailed. Files are refused (the console takes no uploads).
    """
    form = await request.form(max_files=0, max_fields=64, max_part_size=64 * 1024)
    check_csrf(request, form.get("csrf", ""))
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise FormError(key[:64], "wrong_type")  # the console takes no uploads
        single.setdefault(key, value)
        multi.setdefault(key, []).append(value)
    return single, multi


async def audited(request: Request, who: Principal, what: str, object_id: int,
                  fn: Callable[[Session], T], detail: dict[str, Any] | None = None) -> T:
    """`fn` (a read of a patient's data), audited as `<what>.view` in the same transaction;
    when it is refused (outside the caller's departments, or gone) the refusal is audited as
    `<what>.refused` in a transaction of its own, then re-raised."""
    audit = deps(request).audit
    kind = what.split(".")[0]

    def viewed(s: Session) -> T:
        out = fn(s)
        audit.append(s, who.actor, f"{what}.view", kind, object_id, detail or {})
        return out

    try:
        return await in_db(request, viewed)
    except (NotFound, PermissionDenied) as exc:
        await audit_refusal(request, who, what, object_id, exc, detail)
        raise


async def audit_refusal(request: Request, who: Principal, what: str, object_id: int,
                        exc: NotFound | PermissionDenied,
                        detail: dict[str, Any] | None = None) -> None:
    """Audit a refused read as `<what>.refused`, in a transaction of its own."""
    audit = deps(request).audit

    def refused(s: Session) -> None:
        audit.append(s, who.actor, f"{what}.refused", what.split(".")[0], object_id,
                     {**(detail or {}), "why": exc.code})

    await in_db(request, refused)


async def in_db(request: Request, fn: Callable[[Session], T]) -> T:
    """Run `fn` in one transaction in a worker thread (never on the event loop)."""
    d = deps(request)

    def work() -> T:
        with d.db.session() as session:
            return fn(session)

    return await run_in_threadpool(work)


async def principal(request: Request, need: Permission | None = None) -> Principal:
    """The logged-in principal (re-read each request: deactivation takes effect at once),
    acting under `need`: its departments are that permission's. Without `need` it sees no
    department at all.

    Raises LoginRequired and PermissionDenied.
    """
    token = request.session.get("sid")
    if not isinstance(token, str):
        raise LoginRequired("not logged in")
    d = deps(request)

    def work(s: Session) -> Principal | None:
        now = d.clock.now()
        uid = session_user(s, token, now)
        return None if uid is None else load_principal(s, uid, now)

    who = await in_db(request, work)
    if who is None:
        request.session.clear()
        raise LoginRequired("session ended")
    return who.acting_as(need) if need is not None else who


def render(request: Request, name: str, context: dict[str, Any], status: int = 200,
           who: Principal | None = None) -> Response:
    lang = locale(request)
    flash = request.session.pop("flash", None)
    ctx = {"who": who, "lang": lang, "csrf": csrf_token(request), "flash": flash,
           "t": lambda key, **kw: translate(lang, key, **kw), "P": Permission,
           "hospital": deps(request).hospital_name, **context}
    return templates(request).TemplateResponse(request, name, ctx, status_code=status)


def redirect(url: str, flash: str | None = None, request: Request | None = None) -> Response:
    if flash and request is not None:
        request.session["flash"] = flash
    return RedirectResponse(url, status_code=303)


def login_redirect(request: Request) -> Response:
    nxt = request.url.path
    if request.url.query:
        nxt += "?" + request.url.query
    return RedirectResponse("/login?next=" + quote(nxt, safe=""), status_code=303)


def safe_next(value: str | None) -> str:
    """Only local paths: never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def path_id(request: Request, name: str = "id") -> int:
    """An id from the path (the route's int converter); absurd values are NotFound."""
    value = request.path_params[name]
    if not isinstance(value, int) or not 1 <= value <= 2**53:
        raise NotFound(f"{name} {value} not found")
    return value


def export_format(request: Request) -> str:
    """"csv" or "xlsx", from the path's suffix (`/calls.csv`, `/calls.xlsx`)."""
    return "xlsx" if request.url.path.endswith(".xlsx") else "csv"


def export_response(table: Table, fmt: str, name: str, sheet: str,
                    truncated_at: int | None) -> Response:
    """An export as a download; `X-Export-Truncated` says where a long one was cut."""
    headers = {"Content-Disposition": f'attachment; filename="followup-{name}.{fmt}"'}
    if truncated_at is not None:
        headers["X-Export-Truncated"] = str(truncated_at)
    if fmt == "xlsx":
        return Response(as_xlsx(table, sheet), headers=headers, media_type=(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
    return Response(as_csv(table), media_type="text/csv; charset=utf-8", headers=headers)
