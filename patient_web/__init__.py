"""The patient's own questionnaire: a small mobile-first web app, served apart from the
staff console (`followup patient-web`), reached by a one-time link sent by SMS.

Imports `core` and `ivr` (the same script interpreter, through a web channel)."""
