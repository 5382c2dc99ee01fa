"""The monthly report: page with charts, printable page, Excel download."""

from __future__ import annotations

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from console.access import Permission, Principal
from console.charts import Bar, bar_chart, line_chart
from console.excel import Heading, report_workbook
from console.forms import integer, month
from console.i18n import translate
from console.periods import last_finished_month, local_time
from console.questions import question_names
from console.report_text import figure_texts
from console.reports import MonthlyReport, ReportService
from console.web.base import audit_refusal, deps, in_db, locale, principal, render
from core.errors import NotFound
from core.store.models import Department


async def _load(request: Request, who: Principal
                ) -> tuple[MonthlyReport | None, list[Department]]:
    d = deps(request)
    params = dict(request.query_params)
    first = month(params, "month", default=last_finished_month(d.clock.now(), d.timezone))
    dept_id = integer(params, "department", low=1, high=2**53) if params.get("department") \
        else None
    svc = ReportService(d.clock, d.timezone,
                        d.questions.satisfaction_index() if d.questions is not None else ())

    def work(s: Session) -> tuple[MonthlyReport | None, list[Department]]:
        depts = list(s.execute(select(Department).where(who.scope(Department.id))
                               .order_by(Department.code)).scalars())
        chosen = dept_id if dept_id is not None else (depts[0].id if depts else None)
        if chosen is None:
            return None, depts
        return svc.monthly(s, who, chosen, first), depts

    try:
        return await in_db(request, work)
    except NotFound as exc:  # a department outside the reader's scope, or none
        await audit_refusal(request, who, "report", dept_id or 0, exc, {"month": str(first)})
        raise


def _charts(report: MonthlyReport, lang: str, names: dict[str, str]
            ) -> tuple[Markup, Markup]:
    scale = [q for q in report.questions if q.kind == "scale"]
    top = max([5.0] + [q.high or 0.0 for q in scale if q.high is not None and q.high < 100])
    bars = bar_chart([Bar(names.get(q.key, q.key), q.mean, q.low, q.high) for q in scale],
                     max_value=top, title=translate(lang, "report.questions"))
    trend = line_chart([(m.month, None if m.response_rate is None else 100 * m.response_rate)
                        for m in report.trend], max_value=100.0, fmt="{:.1f}%",
                       title=translate(lang, "report.trend"))
    return bars, trend


def _texts(request: Request, report: MonthlyReport) -> dict[str, str]:
    """Each question's figure in words, by its kind, in the reader's language."""
    return figure_texts(report.questions, locale(request), deps(request).questions)


def _names(request: Request, report: MonthlyReport) -> dict[str, str]:
    """Each question's wording in the reader's language (its id when no script has it)."""
    return question_names(deps(request).questions,
                          [(q.script_id, q.question_id) for q in report.questions],
                          locale(request))


async def report_page(request: Request) -> Response:
    who = await principal(request, Permission.REPORTS)
    report, depts = await _load(request, who)
    names = _names(request, report) if report else {}
    charts = _charts(report, locale(request), names) if report else None
    return render(request, "report.html", {
        "r": report, "departments": depts, "charts": charts, "printable": False,
        "names": names, "texts": _texts(request, report) if report else {}}, who=who)


async def report_print(request: Request) -> Response:
    who = await principal(request, Permission.REPORTS)
    report, depts = await _load(request, who)
    if report is None:
        raise NotFound("no department")
    names = _names(request, report)
    d = deps(request)
    return render(request, "report.html", {"r": report, "departments": depts,
                                           "charts": _charts(report, locale(request), names),
                                           "printable": True, "names": names,
                                           "texts": _texts(request, report),
                                           "generated_at": local_time(d.clock.now(),
                                                                      d.timezone)}, who=who)


async def report_excel(request: Request) -> Response:
    who = await principal(request, Permission.REPORTS)
    report, _ = await _load(request, who)
    if report is None:
        raise NotFound("no department")
    d = deps(request)
    head = Heading(hospital=d.hospital_name, locale=locale(request),
                   generated_at=local_time(d.clock.now(), d.timezone),
                   generated_by=who.display_name or who.username)
    data = report_workbook(report, _names(request, report), head, _texts(request, report))
    audit = d.audit

    def log_export(s: Session) -> None:
        audit.append(s, who.actor, "report.export", "department", report.department_id,
                     {"month": report.month, "format": "xlsx"})

    await in_db(request, log_export)
    name = f"followup-report-{report.department_code}-{report.month}.xlsx"
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in name)
    return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                    "spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"',
                             "Cache-Control": "no-store"})
