"""Scripts and rules viewer; user admin (system administrators)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from console.access import Permission
from console.accounts import AccountService
from console.definitions import DefinitionFile
from console.forms import GrantForm, UserForm
from console.i18n import translate
from console.web.base import deps, form_data, in_db, locale, path_id, principal, redirect, render
from core.enums import Role
from core.sms_templates import counted_texts
from core.store.models import Department, User, UserGrant


async def definitions_page(request: Request) -> Response:
    who = await principal(request, Permission.DEFINITIONS)
    source = deps(request).definitions
    files: list[DefinitionFile] = await run_in_threadpool(source.definitions) if source else []
    d = deps(request)
    sms = counted_texts({"zh-CN": d.hospital_name, "en": d.hospital_name_en or d.hospital_name})
    return render(request, "definitions.html", {"files": files, "sms": sms,
                                                "configured": source is not None}, who=who)


def _accounts(request: Request) -> AccountService:
    d = deps(request)
    return AccountService(d.clock, d.audit, d.max_failed_logins)


async def users_page(request: Request) -> Response:
    who = await principal(request, Permission.USERS)
    accounts = _accounts(request)

    def work(s: Session) -> tuple[list[tuple[User, list[UserGrant]]], list[Department]]:
        depts = list(s.execute(select(Department).order_by(Department.code)).scalars())
        return accounts.users(s), depts

    users, depts = await in_db(request, work)
    now = deps(request).clock.now()
    return render(request, "users.html", {"users": users, "departments": depts,
                                          "roles": list(Role), "now": now}, who=who)


async def add_user(request: Request) -> Response:
    who = await principal(request, Permission.USERS)
    form, _ = await form_data(request)
    parsed = UserForm.parse(form)
    accounts = _accounts(request)
    await in_db(request, lambda s: accounts.create_user(s, parsed, who.actor))
    return redirect("/users", translate(locale(request), "users.created"), request)


async def grant(request: Request) -> Response:
    who = await principal(request, Permission.USERS)
    form, _ = await form_data(request)
    parsed = GrantForm.parse({**form, "user_id": str(path_id(request))})
    accounts = _accounts(request)
    await in_db(request, lambda s: accounts.grant(s, parsed, who.user_id, who.actor))
    return redirect("/users", translate(locale(request), "users.granted"), request)


async def set_active(request: Request) -> Response:
    who = await principal(request, Permission.USERS)
    form, _ = await form_data(request)
    active = form.get("active") == "1"
    uid = path_id(request)
    accounts = _accounts(request)
    await in_db(request, lambda s: accounts.set_active(s, uid, active, who.actor))
    return redirect("/users")
