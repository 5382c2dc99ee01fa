"""The Asterisk telephony backend (AMI originate + FastAGI IVR channel).

Module map, edge first:
- `ami_frame`, `ami_messages`: AMI bytes -> typed frozen events (nothing raw leaves here);
- `dial_outcome`: HangupCause / OriginateReason enums and the one DialOutcome mapping;
- `call_tracker`: pure state machine, events in -> `CallReport` out (correlated by
  ActionID, Uniqueid/Linkedid and the FOLLOWUP_ATTEMPT variable, never by order);
- `ami`: the asyncio AMI client (login, keep-alive, reconnect with backoff);
- `telephony`: `AsteriskTelephony.place()` (originate, rebuild after reconnect,
  click-to-call) and the `IvrResultBoard`;
- `agi`, `agi_connection`, `agi_channel`, `fastagi`: the FastAGI protocol, one session's
  socket, the `ivr.Channel` over it, and the server;
- `backend`: all of it wired together from the settings;
- `conf_render`: `asterisk-conf/*.j2` -> validated Asterisk configuration files;
- `testing`, `agi_emulator`, `fake_ami`: fakes that replay or emulate recorded Asterisk 22
  traffic for tests and benchmarks.
"""
