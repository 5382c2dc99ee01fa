"""The questionnaire's views: each parses the request, calls the `Questionnaire` once, and
renders. A refused link gets its plain page (404 unknown, 410 used, expired, locked or
closed); a POST without its CSRF proof gets 403."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.errors import NotFound
from patient_web.deps import deps_of
from patient_web.links import LinkState
from patient_web.proofs import CSRF, VERIFIED, holds, proof
from patient_web.questionnaire import Identity, Step
from patient_web.rendering import Problem, question_form, read_answer, said
from patient_web.texts import DEFAULT_LANGUAGE, text

COOKIE = "followup_q"
_YEAR = re.compile(r"[0-9]{4}")


def _render(request: Request, name: str, language: str, status: int = 200,
            **context: Any) -> Response:
    d = deps_of(request)
    token = request.path_params.get("token", "")

    def t(key: str, **values: object) -> str:
        return text(language, key, **values)

    base = {"lang": language, "t": t, "token": token,
            "csrf": proof(d.key, token, CSRF) if token else "",
            "hospital": d.hospital_name(language), "optout": True}
    response: Response = request.app.state.templates.TemplateResponse(
        request, name, {**base, **context}, status_code=status)
    return response


def _refused(request: Request, state: LinkState, language: str) -> Response:
    status = 404 if state is LinkState.UNKNOWN else 410
    return _render(request, "refused.html", language, status, state=state.value,
                   optout=state is not LinkState.UNKNOWN)


def _bad_form(request: Request) -> Response:
    return _render(request, "bad_form.html", DEFAULT_LANGUAGE, 403, optout=False)


def _identity_page(request: Request, language: str, problem: str = "",
                   status: int = 200, **values: object) -> Response:
    return _render(request, "identity.html", language, status, problem=problem,
                   values=values)


def _verified(request: Request, token: str) -> bool:
    return holds(deps_of(request).key, token, VERIFIED, request.cookies.get(COOKIE))


def _step_page(request: Request, step: Step, problem: Problem | None = None) -> Response:
    if step.state is not LinkState.OPEN:
        return _refused(request, step.state, step.language)
    if step.needs_identity:
        return _identity_page(request, step.language)
    script = step.script
    locale = script.locale if script is not None else step.language
    if step.finished or step.asked is None or script is None or step.question is None:
        return _render(request, "done.html", step.language, said=said(step.shown, locale))
    form = question_form(script, step.question, step.asked.text, step.language)
    return _render(request, "question.html", step.language, 422 if problem else 200,
                   said=said(step.shown, locale), form=form, script=script,
                   problem=problem)


async def page(request: Request) -> Response:
    token = request.path_params["token"]
    q = deps_of(request).questionnaire
    view = await q.db.call(q.view, token)
    if view.state is not LinkState.OPEN:
        return _refused(request, view.state, view.language)
    if not view.verified or not _verified(request, token):
        return _identity_page(request, view.language)
    return _step_page(request, await q.step(token, None))


async def identity(request: Request) -> Response:
    token = request.path_params["token"]
    d = deps_of(request)
    form = await request.form()
    if not holds(d.key, token, CSRF, form.get("csrf")):
        return _bad_form(request)
    raw = str(form.get("year") or "").strip()
    q = d.questionnaire
    if not _YEAR.fullmatch(raw):  # a slip of the finger is not a wrong year
        view = await q.db.call(q.view, token)
        if view.state is not LinkState.OPEN:
            return _refused(request, view.state, view.language)
        return _identity_page(request, view.language, "identity.bad_year", 422)
    result = await q.db.call(q.verify, token, int(raw))
    if result.outcome is Identity.VERIFIED:
        response = RedirectResponse(f"/q/{token}", status_code=303)
        response.set_cookie(COOKIE, proof(d.key, token, VERIFIED), path=f"/q/{token}",
                            httponly=True, samesite="lax", secure=d.secure_cookies)
        return response
    if result.outcome is Identity.WRONG:
        return _identity_page(request, result.language, "identity.wrong", 422,
                              left=result.tries_left)
    return _refused(request, result.state, result.language)


async def answer(request: Request) -> Response:
    token = request.path_params["token"]
    d = deps_of(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    if not holds(d.key, token, CSRF, form.get("csrf")):
        return _bad_form(request)
    q = d.questionnaire
    if not _verified(request, token):
        view = await q.db.call(q.view, token)
        if view.state is not LinkState.OPEN:
            return _refused(request, view.state, view.language)
        return _identity_page(request, view.language)
    try:
        script = d.library.pick(form.get("s", ""), int(form.get("v", "0")), form.get("l", ""))
        question = script.question(form.get("q", ""))
    except (NotFound, KeyError, ValueError):
        return _step_page(request, await q.step(token, None))  # a stale or altered form
    read = read_answer(script, question, form)
    if isinstance(read, Problem):
        step = await q.step(token, None)
        same = step.question is not None and step.question.id == question.id
        return _step_page(request, step, read if same else None)
    return _step_page(request, await q.step(token, read))


async def optout_page(request: Request) -> Response:
    token = request.path_params["token"]
    q = deps_of(request).questionnaire
    view = await q.db.call(q.view, token)
    if view.state is LinkState.UNKNOWN:
        return _refused(request, view.state, view.language)
    return _render(request, "optout.html", view.language, optout=False)


async def optout(request: Request) -> Response:
    token = request.path_params["token"]
    d = deps_of(request)
    form = await request.form()
    if not holds(d.key, token, CSRF, form.get("csrf")):
        return _bad_form(request)
    q = d.questionnaire
    view = await q.db.call(q.opt_out, token)
    if view.state is LinkState.UNKNOWN:
        return _refused(request, view.state, view.language)
    return _render(request, "optout_done.html", view.language, optout=False)
