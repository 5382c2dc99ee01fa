"""Dashboard, call search, call detail, patient page, recording playback and download."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from console.access import Permission
from console.calls import (
    EXPORT_LIMIT,
    SearchResult,
    TaskResult,
    call_detail,
    patient_page,
    recording_in_scope,
    search_calls,
    search_tasks,
)
from console.charts import Bar, bar_chart
from console.dashboard import dashboard
from console.exports import calls_table, tasks_table
from console.forms import CallSearch, date
from console.i18n import translate
from console.legal_hold import HoldForm, set_legal_hold
from console.periods import local_today
from console.questions import question_name, script_name
from console.web.base import (
    audit_refusal,
    audited,
    deps,
    export_format,
    export_response,
    form_data,
    in_db,
    locale,
    path_id,
    principal,
    redirect,
    render,
)
from console.web.views_dnc import patient_dnc
from console.web.views_wallboard import wallboard_context
from core.enums import DialOutcome, ScriptOutcome, TaskStatus, YesNo
from core.errors import NotFound
from core.store.models import Department, Recording
from recordings.store import AccessKind


async def dashboard_page(request: Request) -> Response:
    who = await principal(request, Permission.DASHBOARD)
    d = deps(request)
    today = local_today(d.clock.now(), d.timezone)
    day = date(dict(request.query_params), "day", default=today)
    board = await in_db(request, lambda s: dashboard(s, who, day, d.timezone))
    lang = locale(request)
    keys = ("due", "dialled", "answered", "completed", "red_flags")
    chart = bar_chart([Bar(translate(lang, f"dash.{k}"), float(board.total(k))) for k in keys],
                      max_value=max([1.0] + [float(board.total(k)) for k in keys]),
                      title=translate(lang, "dash.chart"), fmt="{:.0f}")
    live = await wallboard_context(request, who) if day == today else {}
    return render(request, "dashboard.html", {"board": board, "chart": chart, "today": today,
                                              "live": bool(live), **live}, who=who)


async def calls_page(request: Request) -> Response:
    who = await principal(request, Permission.CALLS)
    d = deps(request)
    f = CallSearch.parse(dict(request.query_params))

    def work(s: Session) -> tuple[SearchResult, list[Department]]:
        depts = s.execute(select(Department).where(who.scope(Department.id))
                          .order_by(Department.code)).scalars().all()
        return search_calls(s, who, f, d.timezone), list(depts)

    result, depts = await in_db(request, work)
    outcomes = ([(o.value, f"script.{o.value}") for o in ScriptOutcome]
                + [(o.value, f"dial.{o.value}") for o in DialOutcome])
    return render(request, "calls.html", {"f": f, "result": result, "departments": depts,
                                          "outcomes": outcomes, "drill": _drill(request, f),
                                          "query": dict(request.query_params)}, who=who)


def _drill(request: Request, f: CallSearch) -> str:
    """A report's drill-down filter in words: the question, and the answer when given."""
    if not f.question:
        return ""
    catalog, lang = deps(request).questions, locale(request)
    script_id, question_id = f.question.split("/")
    shown = question_name(catalog, script_id, question_id, lang)
    if not f.answer:
        return shown
    if f.answer in {v.value for v in YesNo}:
        said = translate(lang, f"yesno.{f.answer}")
    else:
        label = catalog.option_label(script_id, question_id, f.answer, lang) if catalog else None
        said = label or f.answer
    return f"{shown} = {said}"


async def calls_export(request: Request) -> Response:
    """The search's calls (up to `EXPORT_LIMIT`, newest first) as CSV or Excel (by the
    path's suffix); scoped like the page and audited with the search it ran."""
    who = await principal(request, Permission.CALLS)
    d = deps(request)
    f = CallSearch.parse({k: v for k, v in request.query_params.items() if k != "page"})
    fmt = export_format(request)

    def work(s: Session) -> SearchResult:
        result = search_calls(s, who, f, d.timezone, page_size=EXPORT_LIMIT)
        d.audit.append(s, who.actor, "calls.export", "search", 0,
                       {"query": dict(request.query_params), "rows": len(result.rows),
                        "truncated": result.has_more, "format": fmt})
        return result

    result = await in_db(request, work)
    table = calls_table(result.rows, d.timezone, locale(request), _script_names(request))
    return export_response(table, fmt, "calls", translate(locale(request), "calls.tab_calls"),
                           EXPORT_LIMIT if result.has_more else None)


def _script_names(request: Request) -> Callable[[str], str]:
    catalog, lang = deps(request).questions, locale(request)
    return lambda script_id: script_name(catalog, script_id, lang)


async def tasks_export(request: Request) -> Response:
    """The task search (up to `EXPORT_LIMIT`) as CSV or Excel; scoped like the page and
    audited."""
    who = await principal(request, Permission.CALLS)
    d = deps(request)
    f = CallSearch.parse({k: v for k, v in request.query_params.items() if k != "page"})
    fmt = export_format(request)

    def work(s: Session) -> TaskResult:
        result = search_tasks(s, who, f, page_size=EXPORT_LIMIT)
        d.audit.append(s, who.actor, "tasks.export", "search", 0,
                       {"query": dict(request.query_params), "rows": len(result.rows),
                        "truncated": result.has_more, "format": fmt})
        return result

    result = await in_db(request, work)
    table = tasks_table(result.rows, locale(request), _script_names(request))
    return export_response(table, fmt, "tasks", translate(locale(request), "calls.tab_tasks"),
                           EXPORT_LIMIT if result.has_more else None)


async def tasks_page(request: Request) -> Response:
    who = await principal(request, Permission.CALLS)
    f = CallSearch.parse(dict(request.query_params))

    def work(s: Session) -> tuple[TaskResult, list[Department]]:
        depts = s.execute(select(Department).where(who.scope(Department.id))
                          .order_by(Department.code)).scalars().all()
        return search_tasks(s, who, f), list(depts)

    result, depts = await in_db(request, work)
    return render(request, "tasks.html", {"f": f, "result": result, "departments": depts,
                                          "statuses": [t.value for t in TaskStatus],
                                          "query": dict(request.query_params)}, who=who)


async def call_page(request: Request) -> Response:
    who = await principal(request, Permission.CALLS)
    attempt_id = path_id(request)
    detail = await audited(request, who, "call", attempt_id,
                           lambda s: call_detail(s, who, attempt_id))
    return render(request, "call.html", {"c": detail}, who=who)


async def patient_view(request: Request) -> Response:
    who = await principal(request, Permission.CALLS)
    patient_id = path_id(request)
    page = await audited(request, who, "patient", patient_id,
                         lambda s: patient_page(s, who, patient_id))
    dnc = await patient_dnc(request, who, page.patient)
    return render(request, "patient.html", {"p": page, "dnc": dnc}, who=who)


async def _recording(request: Request, access: AccessKind) -> Response:
    who = await principal(request, Permission.PLAY)
    rec_id = path_id(request)
    store = deps(request).recordings

    def work(s: Session) -> bytes:
        recording_in_scope(s, who, rec_id)  # NotFound outside the caller's departments
        return store.read(s, rec_id, actor=who.actor, access=access)

    try:
        data = await in_db(request, work)  # the store audits each play and download
    except NotFound as exc:
        await audit_refusal(request, who, "recording", rec_id, exc, {"access": access.value})
        raise
    headers = {"Cache-Control": "no-store"}
    if access is AccessKind.DOWNLOAD:
        headers["Content-Disposition"] = f'attachment; filename="recording-{rec_id}.wav"'
    return Response(data, media_type="audio/wav", headers=headers)


async def recording_audio(request: Request) -> Response:
    return await _recording(request, AccessKind.PLAY)


async def recording_download(request: Request) -> Response:
    return await _recording(request, AccessKind.DOWNLOAD)


async def legal_hold(request: Request) -> Response:
    who = await principal(request, Permission.LEGAL_HOLD)
    form, _ = await form_data(request)
    parsed = HoldForm.parse(form)
    rec_id = path_id(request)
    audit = deps(request).audit

    def work(s: Session) -> int | None:
        set_legal_hold(s, who, audit, rec_id, parsed)
        rec = s.get(Recording, rec_id)
        return rec.attempt_id if rec is not None else None

    attempt_id = await in_db(request, work)
    return redirect(f"/calls/{attempt_id}" if attempt_id else "/calls")
