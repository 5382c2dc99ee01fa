"""The agents' worklist: list, claim, close with a disposition, notes, click-to-call."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from console.access import Permission
from console.calls import EXPORT_LIMIT
from console.exports import tickets_table
from console.forms import (
    ClickToCallForm,
    Disposition,
    DispositionForm,
    NotesForm,
    choice,
    text,
)
from console.i18n import translate
from console.web.base import (
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
from console.worklist import TicketRow, WorklistService, open_tickets
from core.enums import TicketReason
from core.errors import TelephonyError


def _service(request: Request) -> WorklistService:
    d = deps(request)
    return WorklistService(d.clock, d.audit, d.click_to_call)


async def worklist_page(request: Request) -> Response:
    who = await principal(request, Permission.WORKLIST)
    params = dict(request.query_params)
    reason = choice(params, "reason", TicketReason, required=False)
    q = text(params, "q", max_len=64)
    rows = await in_db(request, lambda s: open_tickets(s, who, reason, q=q))
    return render(request, "worklist.html", {"rows": rows, "reason": reason, "q": q,
                                             "reasons": list(TicketReason),
                                             "dispositions": list(Disposition)}, who=who)


async def worklist_export(request: Request) -> Response:
    """The worklist as the agent filtered it, as CSV or Excel; scoped and audited."""
    who = await principal(request, Permission.WORKLIST)
    params = dict(request.query_params)
    reason = choice(params, "reason", TicketReason, required=False)
    q = text(params, "q", max_len=64)
    d = deps(request)
    fmt = export_format(request)

    def work(s: Session) -> list[TicketRow]:
        rows = open_tickets(s, who, reason, limit=EXPORT_LIMIT, q=q)
        d.audit.append(s, who.actor, "tickets.export", "search", 0,
                       {"query": params, "rows": len(rows), "format": fmt})
        return rows

    rows = await in_db(request, work)
    return export_response(tickets_table(rows, d.timezone, locale(request)), fmt, "tickets",
                           translate(locale(request), "work.title"), None)


async def claim(request: Request) -> Response:
    who = await principal(request, Permission.WORKLIST)
    await form_data(request)
    tid = path_id(request)
    svc = _service(request)
    await in_db(request, lambda s: svc.claim(s, who, tid))
    return redirect(f"/worklist#t{tid}", translate(locale(request), "work.claimed"), request)


async def close(request: Request) -> Response:
    who = await principal(request, Permission.WORKLIST)
    form, _ = await form_data(request)
    parsed = DispositionForm.parse(form)  # before any write: bad input stores nothing
    tid = path_id(request)
    svc = _service(request)
    await in_db(request, lambda s: svc.close(s, who, tid, parsed))
    return redirect("/worklist", translate(locale(request), "work.closed"), request)


async def note(request: Request) -> Response:
    who = await principal(request, Permission.WORKLIST)
    form, _ = await form_data(request)
    parsed = NotesForm.parse(form)
    tid = path_id(request)
    svc = _service(request)
    await in_db(request, lambda s: svc.add_note(s, who, tid, parsed))
    return redirect(f"/worklist#t{tid}")


async def click_to_call(request: Request) -> Response:
    who = await principal(request, Permission.WORKLIST)
    form, _ = await form_data(request)
    parsed = ClickToCallForm.parse(form)
    tid = path_id(request)
    svc = _service(request)
    phone = await in_db(request, lambda s: svc.request_call(s, who, tid, parsed.extension))
    try:
        message = await svc.place_call(parsed.extension, phone, tid)
    except TelephonyError as exc:
        problem = exc.message
        await in_db(request, lambda s: svc.record_call(s, who, tid, parsed.extension,
                                                       problem))
        raise
    await in_db(request, lambda s: svc.record_call(s, who, tid, parsed.extension, None))
    return redirect(f"/worklist#t{tid}", message, request)
