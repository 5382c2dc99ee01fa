"""The do-not-call page: the list with a search, adding a number, taking one off (with a
reason), and importing a CSV list. The work is `console.dnc`'s."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from console.access import Permission, Principal
from console.dnc import DncDesk, DncForm, DncPage, removal_reason
from console.forms import FormError
from console.i18n import translate
from console.web.base import (
    check_csrf,
    deps,
    form_data,
    in_db,
    locale,
    path_id,
    principal,
    redirect,
    render,
)
from core.do_not_call import DncState, ImportProblem, ImportResult
from core.enums import DncReason
from core.store.models import Patient

MAX_CSV_BYTES = 200 * 1024  # under the app's request limit, with room for the form


def _desk(request: Request) -> DncDesk:
    d = deps(request)
    return DncDesk(d.clock, d.audit, d.timezone, d.phone_region)


async def _page(request: Request, who: Principal, result: ImportResult | None = None,
                status: int = 200) -> Response:
    q = request.query_params.get("q", "")[:64]
    show_all = request.query_params.get("all") == "1"
    desk, lang = _desk(request), locale(request)
    page = await in_db(request, lambda s: desk.page(s, who, q, show_all, lang))
    return render(request, "dnc.html", {
        "page": page, "q": q, "show_all": show_all, "reasons": list(DncReason),
        "first_expiry": desk.today() + dt.timedelta(days=1), "result": result,
        "words": {"state": {v: translate(lang, f"dnc_state.{v.value}") for v in DncState},
                  "problem": {v: translate(lang, f"dnc_problem.{v.value}")
                              for v in ImportProblem}},
        "may_remove": who.has(Permission.DNC_REMOVE)}, status=status, who=who)


async def dnc_page(request: Request) -> Response:
    return await _page(request, await principal(request, Permission.DNC))


async def dnc_add(request: Request) -> Response:
    who = await principal(request, Permission.DNC)
    form, _ = await form_data(request)
    desk = _desk(request)
    parsed = DncForm.parse(form, region=desk.region, today=desk.today())
    added = await in_db(request, lambda s: desk.add(s, who, parsed))
    return redirect("/dnc", translate(locale(request), "dnc.added_done" if added
                                      else "dnc.already_listed"), request)


async def dnc_remove(request: Request) -> Response:
    who = await principal(request, Permission.DNC_REMOVE)
    form, _ = await form_data(request)
    why = removal_reason(form)
    entry_id = path_id(request)
    desk = _desk(request)
    change = await in_db(request, lambda s: desk.remove(s, who, entry_id, why))
    return redirect("/dnc", translate(locale(request), "dnc.removed" if change.changed
                                      else "dnc.already_removed"), request)


async def _upload(request: Request) -> bytes:
    """The uploaded CSV file's bytes, after the CSRF check (`form_data` takes no files)."""
    async with request.form(max_files=1, max_fields=4, max_part_size=4 * 1024) as form:
        check_csrf(request, form.get("csrf", ""))
        upload: Any = form.get("file")
        if not isinstance(upload, UploadFile):
            raise FormError("file", "required")
        data = await upload.read(MAX_CSV_BYTES + 1)
    if not data:
        raise FormError("file", "required")
    if len(data) > MAX_CSV_BYTES:
        raise FormError("file", "too_long")
    return data


async def dnc_import(request: Request) -> Response:
    """Import a CSV list: the page again, with what was added and each bad line."""
    who = await principal(request, Permission.DNC)
    data = await _upload(request)
    desk = _desk(request)
    result = await in_db(request, lambda s: desk.import_file(s, who, data))
    return await _page(request, who, result)


async def patient_dnc(request: Request, who: Principal, patient: Patient) -> DncPage:
    """The do-not-call entries in force for a patient's numbers, for the patient page
    (shown to whoever may see the patient: it is about their own numbers)."""
    desk, lang = _desk(request), locale(request)
    return await in_db(request, lambda s: desk.for_patient(s, who, patient, lang))
