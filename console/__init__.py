"""The web console: agents' worklist, supervisors' spot-checks, department reports, admin.

`console.web.create_app(deps)` builds the Starlette app; the composition root
(`engine/commands/console.py`) passes in what it needs. Department scope is enforced in
every query (`console.access.Principal.departments`), never only in the menus.
"""
