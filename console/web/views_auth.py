"""Login, logout and the language switch."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from console.accounts import AccountService, LoginOutcome, LoginResult
from console.i18n import LOCALES
from console.sessions import open_session, revoke, session_user
from console.web.base import (
    csrf_token,
    deps,
    form_data,
    in_db,
    locale,
    redirect,
    render,
    safe_next,
)
from core.store.models import User


def _accounts(request: Request) -> AccountService:
    d = deps(request)
    return AccountService(d.clock, d.audit, d.max_failed_logins)


async def login_page(request: Request) -> Response:
    csrf_token(request)
    return render(request, "login.html", {"next": safe_next(request.query_params.get("next")),
                                          "error": None})


async def login_submit(request: Request) -> Response:
    form, _ = await form_data(request)
    username = form.get("username", "")[:64]
    password = form.get("password", "")[:256]
    client = request.client.host if request.client else "-"
    accounts = _accounts(request)
    d = deps(request)

    def work(s: Session) -> tuple[LoginOutcome, str]:
        outcome = accounts.login(s, username, password, client)
        if outcome.result is not LoginResult.OK or outcome.user_id is None:
            return outcome, ""
        return outcome, open_session(s, outcome.user_id, client, d.clock.now(),
                                     dt.timedelta(hours=d.session_hours))

    outcome, token = await in_db(request, work)
    nxt = safe_next(form.get("next"))
    if not token:
        key = "login.throttled" if outcome.result is LoginResult.THROTTLED else \
            "login.bad_credentials"
        return render(request, "login.html", {"next": nxt, "error": key}, status=401)
    lang = locale(request)
    request.session.clear()  # no fixation: a fresh session (and CSRF token) at login
    request.session.update({"sid": token, "lang": lang, "csrf": secrets.token_urlsafe(32)})
    return redirect(nxt)


async def logout(request: Request) -> Response:
    await form_data(request)
    token = request.session.get("sid")
    if isinstance(token, str):
        accounts = _accounts(request)
        now = deps(request).clock.now()

        def work(s: Session) -> None:
            uid = session_user(s, token, now)
            user = s.get(User, uid) if uid is not None else None
            revoke(s, token, now)
            if user is not None:
                accounts.logout(s, user.id, user.username)

        await in_db(request, work)
    lang = locale(request)
    request.session.clear()
    request.session["lang"] = lang
    return redirect("/login")


async def switch_language(request: Request) -> Response:
    lang = request.path_params["lang"]
    if lang in LOCALES:
        request.session["lang"] = lang
    return redirect(safe_next(request.query_params.get("next")))
