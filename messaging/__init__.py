"""SMS: the gateway seam and its adapters (SMPP 3.4, sim), the sender that drains the
store's queued messages, delivery reports and inbound messages (opt-out, replies).

Imports `core` only (see ARCHITECTURE.md)."""
