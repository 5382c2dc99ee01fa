"""Supervisors' spot-check: samples, progress, the QA form."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from console.access import Permission
from console.calls import CallDetail, call_detail
from console.forms import QA_SCORES, QaFlag, QaForm, SampleForm
from console.i18n import translate
from console.periods import local_today
from console.spotcheck import SampleSummary, SpotCheckService, scripts_in_scope
from console.web.base import deps, form_data, in_db, locale, path_id, principal, redirect, render
from core.store.models import Department, QaReview, SpotCheckItem


def _service(request: Request) -> SpotCheckService:
    d = deps(request)
    return SpotCheckService(d.clock, d.audit, d.timezone)


async def samples_page(request: Request) -> Response:
    who = await principal(request, Permission.SPOTCHECK)
    svc = _service(request)
    d = deps(request)

    today = local_today(d.clock.now(), d.timezone)

    def work(s: Session) -> tuple[list[SampleSummary], list[Department], list[str]]:
        depts = s.execute(select(Department).where(who.scope(Department.id))
                          .order_by(Department.code)).scalars().all()
        return svc.samples(s, who), list(depts), scripts_in_scope(s, who, today)

    samples, depts, scripts = await in_db(request, work)
    return render(request, "spotcheck.html", {
        "samples": samples, "departments": depts, "scripts": scripts, "today": today},
        who=who)


async def draw(request: Request) -> Response:
    who = await principal(request, Permission.SPOTCHECK)
    form, _ = await form_data(request)
    d = deps(request)
    parsed = SampleForm.parse(form, local_today(d.clock.now(), d.timezone))
    svc = _service(request)
    sample = await in_db(request, lambda s: svc.draw(s, who, parsed))
    return redirect(f"/spotcheck/{sample.id}")


async def sample_page(request: Request) -> Response:
    who = await principal(request, Permission.SPOTCHECK)
    sid = path_id(request)
    svc = _service(request)
    summary, items = await in_db(request, lambda s: svc.sample(s, who, sid))
    return render(request, "sample.html", {"s": summary, "items": items}, who=who)


async def review_page(request: Request) -> Response:
    who = await principal(request, Permission.SPOTCHECK)
    item_id = path_id(request)
    svc = _service(request)

    def work(s: Session) -> tuple[SpotCheckItem, QaReview | None, CallDetail]:
        item, review = svc.item(s, who, item_id)
        return item, review, call_detail(s, who, item.attempt_id)

    item, review, detail = await in_db(request, work)
    return render(request, "review.html", {"item": item, "review": review, "c": detail,
                                           "scores": QA_SCORES, "flags": list(QaFlag)},
                  who=who)


async def review_submit(request: Request) -> Response:
    who = await principal(request, Permission.SPOTCHECK)
    form, multi = await form_data(request)
    parsed = QaForm.parse(form, multi.get("flags", []))
    item_id = path_id(request)
    svc = _service(request)

    def work(s: Session) -> int:
        svc.review(s, who, item_id, parsed)
        item, _ = svc.item(s, who, item_id)
        return item.sample_id

    sample_id = await in_db(request, work)
    return redirect(f"/spotcheck/{sample_id}", translate(locale(request), "spot.saved"),
                    request)
