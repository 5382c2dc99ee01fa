"""The wallboard's live feed (server-sent events) and campaign control (pause, resume).

`/wallboard/events` streams the calls in progress the viewer may see (`console.wallboard`),
the lines in use, and every `STATS_EVERY_S` today's rates and the pauses in force. The page
itself is the dashboard (`views_pages.dashboard_page`), which renders the first picture.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from console.access import Permission, Principal
from console.actors import actor_display
from console.campaign_control import CampaignControl, HoldForm
from console.dashboard import dashboard
from console.i18n import translate
from console.periods import local_time, local_today
from console.questions import QuestionCatalog, script_name
from console.wallboard import WallboardHub
from console.web.base import deps, form_data, in_db, locale, principal, redirect
from core.campaign_holds import HoldRow, list_holds
from core.enums import HoldScope, TaskStatus
from core.store.models import Department, FollowupTask

STATS_EVERY_S = 15.0
KEEPALIVE_S = 20.0


def hub(request: Request) -> WallboardHub:
    found: WallboardHub = request.app.state.hub
    return found


def hold_label(h: HoldRow, lang: str) -> str:
    """What a hold covers, in words."""
    if h.scope is HoldScope.ALL:
        return translate(lang, "wb.hold_all")
    if h.scope is HoldScope.DEPARTMENT:
        return f"{h.department_code} {h.department_name or ''}".strip()
    return translate(lang, "wb.hold_script", script=h.script_id or "")


def visible_holds(holds: list[HoldRow], who: Principal) -> list[HoldRow]:
    """The holds that touch what `who` sees (a department user does not see the others')."""
    return [h for h in holds if h.scope is not HoldScope.DEPARTMENT or who.departments is None
            or h.department_id in who.departments]


def _stats(s: Session, who: Principal, tz: str, lang: str, now: Any) -> dict[str, Any]:
    board = dashboard(s, who, local_today(now, tz), tz)
    dialled, answered = board.total("dialled"), board.total("answered")
    completed = board.total("completed")
    holds = visible_holds(list_holds(s), who)
    names = actor_display(s, [h.held_by for h in holds], lang)
    return {"type": "stats",
            "answer_rate": f"{answered / dialled:.0%}" if dialled else "—",
            "completion_rate": f"{completed / answered:.0%}" if answered else "—",
            "dialled": dialled, "answered": answered, "completed": completed,
            "holds": [{"what": hold_label(h, lang), "reason": h.reason,
                       "by": names[h.held_by],
                       "since": local_time(h.held_at, tz), "department_id": h.department_id,
                       "scope": h.scope.value}
                      for h in holds]}


def _event(message: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(message, ensure_ascii=False).encode() + b"\n\n"


async def wallboard_events(request: Request) -> Response:
    who = await principal(request, Permission.DASHBOARD)
    d = deps(request)
    lang = locale(request)
    queue = hub(request).subscribe(who.departments)

    async def stream() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        next_stats = loop.time()
        try:
            while True:
                if loop.time() >= next_stats:
                    next_stats = loop.time() + STATS_EVERY_S
                    yield _event(await in_db(request, lambda s: _stats(
                        s, who, d.timezone, lang, d.clock.now())))
                try:
                    first = await asyncio.wait_for(
                        queue.get(), min(KEEPALIVE_S, max(0.1, next_stats - loop.time())))
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if first is None:
                    return  # too slow: the browser's EventSource reconnects
                batch = [first]
                while not queue.empty() and len(batch) < 500:
                    more = queue.get_nowait()
                    if more is None:
                        return
                    batch.append(more)
                yield b"".join(_event(m) for m in batch)
        finally:
            hub(request).unsubscribe(queue)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"x-accel-buffering": "no"})


async def campaign_pause(request: Request) -> Response:
    return await _steer(request, pausing=True)


async def campaign_resume(request: Request) -> Response:
    return await _steer(request, pausing=False)


async def _steer(request: Request, *, pausing: bool) -> Response:
    who = await principal(request, Permission.CAMPAIGN)
    form, _ = await form_data(request)
    parsed = HoldForm.parse(form, reason_required=pausing)
    d = deps(request)
    control = CampaignControl(d.clock, d.audit)
    change = await in_db(request, lambda s: (control.pause if pausing else control.resume)(
        s, who, parsed))
    lang = locale(request)
    key = ("wb.paused_done" if pausing else "wb.resumed") if change.changed else \
        ("wb.already_paused" if pausing else "wb.not_paused")
    return redirect("/#campaign", translate(lang, key), request)



def _page_context(s: Session, who: Principal, steerer: Principal | None, lang: str,
                  scripts: QuestionCatalog | None) -> dict[str, Any]:
    depts = s.execute(select(Department).order_by(Department.code)).scalars().all()
    script_ids = sorted(s.execute(select(FollowupTask.script_id).distinct().where(
        FollowupTask.status == TaskStatus.PENDING, who.scope(FollowupTask.department_id))
    ).scalars())

    def seen_by(p: Principal, dept_id: int) -> bool:
        return p.departments is None or dept_id in p.departments

    holds = visible_holds(list_holds(s), who)
    names = actor_display(s, [h.held_by for h in holds], lang)
    return {
        "wb_departments": json.dumps(
            {d.id: d.name if lang == "zh" else (d.name_en or d.name) for d in depts
             if seen_by(who, d.id)}, ensure_ascii=False),
        "wb_scripts": json.dumps({sid: script_name(scripts, sid, lang) for sid in script_ids},
                                 ensure_ascii=False),
        "wb_labels": json.dumps({k: translate(lang, f"wb.{k}") for k in (
            "dialling", "ringing", "in_ivr", "in_queue", "with_person", "paused", "live",
            "offline", "no_dialer", "agent_available", "agent_ringing", "agent_talking",
            "agent_paused", "agent_unavailable")},
            ensure_ascii=False),
        "holds": [(h, names[h.held_by]) for h in holds],
        "steerer": steerer,
        "steer_departments": [d for d in depts if steerer and seen_by(steerer, d.id)],
        "steer_scripts": [(sid, script_name(scripts, sid, lang)) for sid in script_ids]
        if steerer is not None and steerer.departments is None else [],
    }


async def wallboard_context(request: Request, who: Principal) -> dict[str, Any]:
    """What the dashboard page needs for today's live section and campaign control (the
    latter only for users who may steer, within the departments they may steer)."""
    lang = locale(request)
    scripts = deps(request).questions
    steerer = who.acting_as(Permission.CAMPAIGN) if who.has(Permission.CAMPAIGN) else None
    return await in_db(request, lambda s: _page_context(s, who, steerer, lang, scripts))
