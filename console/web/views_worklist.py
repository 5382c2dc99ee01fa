"""The agents' worklist: my tickets, the team's, the closed history; claim, close with a
disposition, release and reassign, notes, click-to-call."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from console.access import Permission, Principal
from console.calls import EXPORT_LIMIT
from console.exports import tickets_table
from console.forms import (
    ClickToCallForm,
    Disposition,
    DispositionForm,
    Form,
    NotesForm,
    ReassignForm,
    choice,
    date,
    text,
)
from console.i18n import translate
from console.ticket_lists import TicketQuery, TicketRow, TicketView, assignees, list_tickets
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
from console.worklist import WorklistService, saved_extension
from core.enums import TicketReason
from core.errors import TelephonyError


def _service(request: Request) -> WorklistService:
    d = deps(request)
    return WorklistService(d.clock, d.audit, d.click_to_call, d.calling_rules, d.timezone,
                           d.response_times)


@dataclass(frozen=True, slots=True)
class _Filters:
    """The worklist's query string: the tab and its filters."""

    view: TicketView
    reason: TicketReason | None
    q: str
    date_from: dt.date | None
    date_to: dt.date | None

    @classmethod
    def parse(cls, params: Form) -> _Filters:
        view = choice(params, "view", TicketView, required=False) or TicketView.TEAM
        closed = view is TicketView.CLOSED
        return cls(view, choice(params, "reason", TicketReason, required=False),
                   text(params, "q", max_len=64),
                   date(params, "date_from") if closed and params.get("date_from") else None,
                   date(params, "date_to") if closed and params.get("date_to") else None)

    def query(self, who: Principal, timezone: str, limit: int = 200) -> TicketQuery:
        return replace(TicketQuery.for_view(self.view, who, reason=self.reason, q=self.q,
                                            days=(self.date_from, self.date_to),
                                            timezone=timezone), limit=limit)


async def worklist_page(request: Request) -> Response:
    who = await principal(request, Permission.WORKLIST)
    filters = _Filters.parse(dict(request.query_params))
    d = deps(request)
    now = d.clock.now()
    may_assign = who.has(Permission.ASSIGN)

    def work(s: Session) -> tuple[list[TicketRow], str, dict[int, list[tuple[int, str]]]]:
        rows = list_tickets(s, who, filters.query(who, d.timezone))
        working = {r.department_id for r in rows if r.closed_at is None}
        return rows, saved_extension(s, who), assignees(s, working, now) if may_assign else {}

    rows, extension, handover = await in_db(request, work)
    return render(request, "worklist.html", {
        "rows": rows, "f": filters, "views": list(TicketView), "reasons": list(TicketReason),
        "dispositions": list(Disposition), "now": now, "extension": extension,
        "assignees": handover, "may_assign": may_assign}, who=who)


async def worklist_export(request: Request) -> Response:
    """The worklist as the agent filtered it, as CSV or Excel; scoped and audited."""
    who = await principal(request, Permission.WORKLIST)
    params = dict(request.query_params)
    filters = _Filters.parse(params)
    d = deps(request)
    fmt = export_format(request)

    def work(s: Session) -> list[TicketRow]:
        rows = list_tickets(s, who, filters.query(who, d.timezone, EXPORT_LIMIT))
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
    return redirect("/worklist?view=mine", translate(locale(request), "work.closed"), request)


async def release(request: Request) -> Response:
    """Give a claimed ticket back to the team (one's own; anyone's with ASSIGN)."""
    who = await principal(request, Permission.WORKLIST)
    await form_data(request)
    tid = path_id(request)
    svc = _service(request)
    await in_db(request, lambda s: svc.release(s, who, tid))
    return redirect(f"/worklist#t{tid}", translate(locale(request), "work.released"), request)


async def reassign(request: Request) -> Response:
    """Hand a ticket to another user who works tickets in its department."""
    who = await principal(request, Permission.WORKLIST)
    form, _ = await form_data(request)
    parsed = ReassignForm.parse(form)
    tid = path_id(request)
    svc = _service(request)
    await in_db(request, lambda s: svc.reassign(s, who, tid, parsed))
    return redirect(f"/worklist#t{tid}", translate(locale(request), "work.reassigned"),
                    request)


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
