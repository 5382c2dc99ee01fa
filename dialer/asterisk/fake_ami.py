"""A fake Asterisk AMI server that replays recorded server streams (tests and drills).

On `Login` it checks the user and secret like Asterisk (a wrong secret gets
`Response: Error`, then the socket closes). Each `Originate` starts a replay of the
recorded scenario chosen by its `Channel:` (e.g. `PJSIP/1002` -> `originate_busy`), with:
- the recorded originate ActionID replaced by the client's;
- every Uniqueid/Linkedid replaced by fresh ones (two replays never collide);
- the recorded `FOLLOWUP_TASK` VarSet rewritten to the client's own `Variable:`;
- the recorded gaps between messages multiplied by `time_scale` (0: as fast as possible).

The fake keeps the live channels (Newchannel .. Hangup) and their variables, answers
`CoreShowChannels` and `Status` (with `Variables:`) from them, `Ping`, `Logoff`, and `Error`
for anything else. Given `agi_port` and recorded FastAGI dialogues by scenario name, it
also opens the FastAGI session where the recording shows `AGIExecStart`, as the dialplan's
AGI() does, so the AMI and AGI halves of one call can be tested together.
`drop_connections()` cuts every client: scenarios keep running, and what happens meanwhile
is lost to the client, as with a real Asterisk. `calls` notes when each replay started and
ended (a benchmark's view of the channels in use, as the server saw them).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from dialer.asterisk.ami_frame import AmiFrame
from dialer.asterisk.testing import AgiRecording, replay_agi_session

_MARKER = re.compile(r"^### (?P<dir><<<|>>>) (?:from|to) asterisk \+(?P<t>[\d.]+)$")
_ID_HEADERS = {"uniqueid", "linkedid", "destuniqueid", "destlinkedid"}
_RECORDED_VARIABLE = "FOLLOWUP_TASK"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


@dataclass(frozen=True)
class AmiScenario:
    """What Asterisk sent after an Originate, with the gap before each message."""

    name: str
    originate_action_id: str
    messages: tuple[tuple[float, AmiFrame], ...]

    @classmethod
    def load(cls, dialogue: Path) -> AmiScenario:
        """Read `ami/NAME.dialogue.txt` (CRLF messages after `### <<< from asterisk +t`)."""
        text = dialogue.read_bytes().decode("utf-8").replace("\r\n", "\n")
        chunks: list[tuple[str, float, str]] = []
        current: tuple[str, float] | None = None
        body: list[str] = []
        for line in text.split("\n"):
            m = _MARKER.match(line)
            if m:
                if current is not None:
                    chunks.append((current[0], current[1], "\n".join(body)))
                current, body = (m["dir"], float(m["t"])), []
            else:
                body.append(line)
        if current is not None:
            chunks.append((current[0], current[1], "\n".join(body)))
        action_id = ""
        messages: list[tuple[float, AmiFrame]] = []
        started = False
        last_t = 0.0
        for direction, t, chunk in chunks:
            frame = AmiFrame.parse(chunk)
            if direction == ">>>":
                if frame.get("Action") == "Originate":
                    action_id = frame.action_id or ""
                    started, last_t = True, t
                elif frame.get("Action") == "Logoff":
                    break
                continue
            if not started or frame.event == "FullyBooted" or not frame.headers:
                continue
            messages.append((max(0.0, t - last_t), frame))
            last_t = t
        return cls(dialogue.name.split(".")[0], action_id, tuple(messages))


@dataclass
class FakeCall:
    """One originate the fake played: its dial string, and when its replay started and
    ended (`time.monotonic()`; ended None while it plays)."""

    dial: str
    started: float
    ended: float | None = None


@dataclass
class _Channel:
    name: str
    uniqueid: str
    linkedid: str
    state: str = "0"
    variables: dict[str, str] = field(default_factory=dict)


class FakeAmiServer:
    """See the module docstring. `scenarios` maps a dial string (or a part of it) to a
    scenario; `default` plays for any other Originate."""

    def __init__(self, scenarios: dict[str, AmiScenario], default: AmiScenario | None = None,
                 username: str = "followup", secret: str = "secret",
                 time_scale: float = 0.0, agi_port: int | None = None,
                 agi_dialogues: dict[str, AgiRecording] | None = None) -> None:
        self.agi_port = agi_port  # where to open FastAGI sessions (settable after start)
        self._agi_dialogues = agi_dialogues or {}
        self.agi_sessions: list[list[str]] = []  # the commands each FastAGI session got
        self._scenarios = scenarios
        self._default = default
        self._username = username
        self._secret = secret
        self.time_scale = time_scale
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._logged_in: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._instances = itertools.count(1)
        self.channels: dict[str, _Channel] = {}
        self.denied_actions: set[str] = set()  # lower-case names answered "Permission denied"
        self.originates: list[AmiFrame] = []
        self.calls: list[FakeCall] = []  # every replay, for a caller's own accounting
        self.actions: list[str] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop_connections(self) -> None:
        for writer in list(self._clients):
            writer.close()
        self._clients.clear()
        self._logged_in.clear()

    # -- a client connection --------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            writer.write(BANNER)
            lines: list[str] = []
            while True:
                raw = await reader.readline()
                if not raw.endswith(b"\n"):
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line:
                    lines.append(line)
                    continue
                if lines:
                    frame = AmiFrame.parse("\n".join(lines))
                    lines = []
                    if not await self._handle(frame, writer):
                        return
        except (ConnectionError, OSError):
            return
        finally:
            self._clients.discard(writer)
            self._logged_in.discard(writer)
            writer.close()

    def _send(self, writer: asyncio.StreamWriter, *pairs: tuple[str, str]) -> None:
        if not writer.is_closing():
            writer.write(AmiFrame.build(*pairs).to_bytes())

    async def _handle(self, frame: AmiFrame, writer: asyncio.StreamWriter) -> bool:
        action = (frame.get("Action") or "").lower()
        aid = frame.action_id or ""
        self.actions.append(action)
        if action == "login":
            if frame.get("Username") != self._username or frame.get("Secret") != self._secret:
                await asyncio.sleep(0.05)
                self._send(writer, ("Response", "Error"), ("ActionID", aid),
                           ("Message", "Authentication failed"))
                await writer.drain()
                return False
            self._send(writer, ("Response", "Success"), ("ActionID", aid),
                       ("Message", "Authentication accepted"))
            self._send(writer, ("Event", "FullyBooted"), ("Privilege", "system,all"),
                       ("Status", "Fully Booted"))
            self._logged_in.add(writer)
            return True
        if writer not in self._logged_in:
            self._send(writer, ("Response", "Error"), ("ActionID", aid),
                       ("Message", "Permission denied"))
            return True
        if action in self.denied_actions:
            self._send(writer, ("Response", "Error"), ("ActionID", aid),
                       ("Message", "Permission denied"))
        elif action == "ping":
            self._send(writer, ("Response", "Success"), ("ActionID", aid), ("Ping", "Pong"))
        elif action == "originate":
            self.originates.append(frame)
            self._start_replay(frame, writer)
        elif action == "coreshowchannels":
            self._core_show_channels(writer, aid)
        elif action == "status":
            self._status(writer, aid, [v.strip() for v in
                                       (frame.get("Variables") or "").split(",") if v.strip()])
        elif action == "logoff":
            self._send(writer, ("Response", "Goodbye"), ("ActionID", aid),
                       ("Message", "Thanks for all the fish."))
            return False
        else:
            self._send(writer, ("Response", "Error"), ("ActionID", aid),
                       ("Message", f"Invalid/unknown command: {frame.get('Action')}."))
        return True

    def _core_show_channels(self, writer: asyncio.StreamWriter, aid: str) -> None:
        self._send(writer, ("Response", "Success"), ("ActionID", aid), ("EventList", "start"),
                   ("Message", "Channels will follow"))
        for ch in self.channels.values():
            self._send(writer, ("Event", "CoreShowChannel"), ("ActionID", aid),
                       ("Channel", ch.name), ("ChannelState", ch.state),
                       ("Uniqueid", ch.uniqueid), ("Linkedid", ch.linkedid),
                       ("Application", "AGI"), ("Duration", "00:00:01"))
        self._send(writer, ("Event", "CoreShowChannelsComplete"), ("ActionID", aid),
                   ("EventList", "Complete"), ("ListItems", str(len(self.channels))))

    def _status(self, writer: asyncio.StreamWriter, aid: str, names: list[str]) -> None:
        self._send(writer, ("Response", "Success"), ("ActionID", aid), ("EventList", "start"),
                   ("Message", "Channel status will follow"))
        for ch in self.channels.values():
            pairs = [("Event", "Status"), ("ActionID", aid), ("Channel", ch.name),
                     ("ChannelState", ch.state), ("Uniqueid", ch.uniqueid),
                     ("Linkedid", ch.linkedid)]
            pairs += [("Variable", f"{n}={ch.variables.get(n, '')}") for n in names]
            self._send(writer, *pairs)
        self._send(writer, ("Event", "StatusComplete"), ("ActionID", aid),
                   ("EventList", "Complete"), ("Items", str(len(self.channels))))

    # -- replaying a scenario -------------------------------------------------------------

    def _scenario_for(self, dial: str) -> AmiScenario | None:
        for key, scenario in self._scenarios.items():
            if key == dial or key in dial:
                return scenario
        return self._default

    def _start_replay(self, originate: AmiFrame, writer: asyncio.StreamWriter) -> None:
        scenario = self._scenario_for(originate.get("Channel") or "")
        aid = originate.action_id or ""
        if scenario is None:
            self._send(writer, ("Response", "Error"), ("ActionID", aid),
                       ("Message", "Originate failed"))
            return
        var_name, _, var_value = (originate.get_all("Variable") or ["="])[0].partition("=")
        call = FakeCall(originate.get("Channel") or "", time.monotonic())
        self.calls.append(call)
        task = asyncio.create_task(self._replay(scenario, aid, var_name, var_value, writer))
        task.add_done_callback(lambda _t: setattr(call, "ended", time.monotonic()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replay(self, scenario: AmiScenario, action_id: str, var_name: str,
                      var_value: str, origin: asyncio.StreamWriter) -> None:
        instance = next(self._instances)
        ids: dict[str, str] = {}
        agi_done = False

        def new_id(old: str) -> str:
            if old not in ids:
                ids[old] = f"{1900000000 + instance}.{len(ids)}"
            return ids[old]

        for gap, recorded in scenario.messages:
            if gap > 0 and self.time_scale > 0:
                await asyncio.sleep(gap * self.time_scale)
            pairs: list[tuple[str, str]] = []
            is_task_var = recorded.event == "VarSet" and recorded.get("Variable") == \
                _RECORDED_VARIABLE
            for key, value in recorded.headers:
                low = key.lower()
                if low == "actionid" and value == scenario.originate_action_id:
                    value = action_id
                elif low in _ID_HEADERS and re.fullmatch(r"\d+\.\d+", value):
                    value = new_id(value)
                elif is_task_var and low == "variable":
                    value = var_name
                elif is_task_var and low == "value":
                    value = var_value
                pairs.append((key, value))
            frame = AmiFrame(tuple(pairs))
            if frame.event == "AGIExecStart" and not agi_done:
                agi_done = True
                await self._run_agi(scenario.name, var_value)
            self._track(frame)
            if frame.event is None:  # the direct response goes to its sender only
                if origin in self._logged_in:
                    self._send(origin, *pairs)
                continue
            for client in list(self._logged_in):
                self._send(client, *pairs)

    async def _run_agi(self, scenario: str, attempt: str) -> None:
        """Where Asterisk ran AGI(): play the matching recorded FastAGI session against
        the engine (when configured), and carry on with the AMI stream once it ends."""
        dialogue = self._agi_dialogues.get(scenario)
        if dialogue is None or self.agi_port is None:
            return
        sent = await replay_agi_session("127.0.0.1", self.agi_port, dialogue,
                                        script=f"followup?attempt={attempt}")
        self.agi_sessions.append(sent)

    def _track(self, frame: AmiFrame) -> None:
        uid = frame.get("Uniqueid")
        if uid is None:
            return
        event = frame.event
        if event == "Newchannel":
            self.channels[uid] = _Channel(frame.get("Channel") or "", uid,
                                          frame.get("Linkedid") or uid,
                                          frame.get("ChannelState") or "0")
        elif event == "Hangup":
            self.channels.pop(uid, None)
        elif uid in self.channels:
            ch = self.channels[uid]
            if frame.get("ChannelState") is not None:
                ch.state = frame.get("ChannelState") or ch.state
            if event == "VarSet":
                ch.variables[frame.get("Variable") or ""] = frame.get("Value") or ""
