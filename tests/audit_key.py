"""The audit key tests write their chains with (a key is always given: there is no unkeyed
chain)."""

TEST_AUDIT_KEY = bytes(range(32))
