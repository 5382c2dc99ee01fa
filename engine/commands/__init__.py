"""CLI command modules; each has `register(cli)`."""

from __future__ import annotations

from engine.commands import (
    asterisk,
    audit,
    calls,
    campaign,
    console,
    demo,
    dial,
    dnc,
    doctor,
    fhir,
    his,
    patient_web,
    plan,
    prompts,
    sms,
    tickets,
)

COMMAND_MODULES = (asterisk, audit, calls, campaign, console, demo, dial, dnc, doctor, fhir, his,
                   patient_web, plan, prompts, sms, tickets)
