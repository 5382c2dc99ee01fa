"""The shared Channel contract suite (tests/contract/test_channel_contract.py), run against
`AgiChannel` with Asterisk played by `AgiEmulator` (responses in the recorded Asterisk 22
formats). Every test of that suite is imported here and runs with the `make` fixture below,
so a test added there runs here too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dialer.asterisk.agi_channel import AgiChannel
from dialer.asterisk.agi_emulator import emulated_agi_channel
from ivr.channel import Channel
from ivr.testing import Action
from tests.contract.test_channel_contract import *  # noqa: F403  (the suite's tests)
from tests.contract.test_channel_contract import prompt  # noqa: F401  (its fixture)


@pytest.fixture
def make(tmp_path: Path) -> Callable[..., Channel]:
    def build(*actions: Action, accept_transfer: bool = True) -> Channel:
        channel, _ = emulated_agi_channel(list(actions), tmp_path, accept_transfer)
        assert isinstance(channel, Channel) and isinstance(channel, AgiChannel)
        return channel
    return build
