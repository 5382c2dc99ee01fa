"""Domain types, settings, errors, clock, the store and the audit log.

`core` imports nothing else of ours: every other package depends on it, never the reverse.
"""
