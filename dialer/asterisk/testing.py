"""Fake Asterisk peers that replay recorded traffic (for tests and the benchmark).

`AgiRecording` reads a recorded FastAGI dialogue (`agi/NAME.dialogue.txt`, optionally
`NAME.timing.txt`); `AgiReplayer` answers each command with the recorded response of the
next recorded command of the same verb, so code that issues a different but compatible
sequence (our IVR does not send the probe's VERBOSE) is answered as Asterisk answered it.
Bare `HANGUP` notices are kept and delivered before the next response; once the recorded
channel is dead, channel commands get 511 and SET VARIABLE / EXEC get 200, as Asterisk does.

`replay_agi_session` is the client side: it connects to a FastAGI server, sends the
recorded environment and plays Asterisk until the server closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path

VERBS = ("GET FULL VARIABLE", "GET VARIABLE", "SET VARIABLE", "STREAM FILE", "GET DATA",
         "WAIT FOR DIGIT", "RECORD FILE", "CONTROL STREAM FILE", "SAY DIGITS", "SAY NUMBER",
         "CHANNEL STATUS", "ANSWER", "HANGUP", "EXEC", "VERBOSE", "NOOP")
DEAD_OK_VERBS = {"SET VARIABLE", "GET VARIABLE", "GET FULL VARIABLE", "EXEC", "VERBOSE", "NOOP"}
_TIMING_RE = re.compile(r"^\[\s*(?P<t>[\d.]+)\]\s(?P<line>.*)$")
DEAD_LINE = "511 Command Not Permitted on a dead channel or intercept routine"


def verb_of(command: str) -> str:
    upper = command.upper()
    for verb in VERBS:
        if upper == verb or upper.startswith(verb + " "):
            return verb
    return upper.split(" ", 1)[0]


@dataclass(frozen=True)
class AgiExchange:
    command: str
    response: tuple[str, ...]  # may start with the bare HANGUP notice
    delay_s: float = 0.0  # how long Asterisk took to answer (prompt playback, think time)

    @property
    def verb(self) -> str:
        return verb_of(self.command)


@dataclass(frozen=True)
class AgiRecording:
    name: str
    environment: tuple[str, ...]
    exchanges: tuple[AgiExchange, ...]

    @classmethod
    def load(cls, dialogue: Path, timing: Path | None = None) -> AgiRecording:
        """Parse `NAME.dialogue.txt` (and `NAME.timing.txt` for the delays, if given)."""
        source = timing if timing is not None else dialogue
        rows: list[tuple[float, str]] = []
        for raw in source.read_text(encoding="utf-8").split("\n"):
            if not raw:
                continue
            t = 0.0
            if timing is not None:
                m = _TIMING_RE.match(raw)
                if m is None:
                    continue
                t, raw = float(m["t"]), m["line"]
            rows.append((t, raw))
        env: list[str] = []
        i = 0
        while i < len(rows) and rows[i][1].startswith("<<< "):
            line = rows[i][1][4:]
            i += 1
            if line == "":
                break
            env.append(line)
        exchanges: list[AgiExchange] = []
        while i < len(rows):
            t0, line = rows[i]
            i += 1
            if not line.startswith(">>> "):
                continue
            response: list[str] = []
            t_end = t0
            while i < len(rows) and rows[i][1].startswith("<<< "):
                t_end = rows[i][0]
                response.append(rows[i][1][4:])
                i += 1
            exchanges.append(AgiExchange(line[4:], tuple(response), max(0.0, t_end - t0)))
        return cls(dialogue.name.split(".")[0], tuple(env), tuple(exchanges))

    def environment_bytes(self, script: str | None = None) -> bytes:
        """The environment block; `script` replaces `agi_network_script` (and the request)."""
        lines = []
        for line in self.environment:
            if script is not None and line.startswith("agi_network_script:"):
                line = f"agi_network_script: {script}"
            elif script is not None and line.startswith("agi_request:"):
                line = f"agi_request: agi://127.0.0.1:4573/{script}"
            lines.append(line)
        return ("\n".join(lines) + "\n\n").encode()


@dataclass
class AgiReplayer:
    """Answers commands from a recording, matching by verb (see module doc)."""

    recording: AgiRecording
    position: int = 0
    dead: bool = False
    received: list[str] = field(default_factory=list)

    def reply(self, command: str) -> tuple[tuple[str, ...], float]:
        """The response lines for `command` and the recorded delay before them."""
        self.received.append(command)
        verb = verb_of(command)
        pending_hangup: list[str] = []
        for j in range(self.position, len(self.recording.exchanges)):
            ex = self.recording.exchanges[j]
            if ex.verb == verb:
                self.position = j + 1
                lines = (*pending_hangup, *ex.response)
                if any(line == "HANGUP" or line.startswith("511") for line in lines) or any(
                        line.startswith("200 result=-1") for line in lines):
                    self.dead = True
                return lines, ex.delay_s
            pending_hangup.extend(line for line in ex.response if line == "HANGUP")
            if ex.response and any(line == "HANGUP" or line.startswith("511")
                                   for line in ex.response):
                self.dead = True
        # nothing recorded for it: answer as Asterisk would in this state
        self.position = len(self.recording.exchanges)
        lines_out: tuple[str, ...]
        if self.dead and verb not in DEAD_OK_VERBS:
            lines_out = (*pending_hangup, DEAD_LINE)
        elif verb == "GET VARIABLE":
            lines_out = (*pending_hangup, "200 result=0")
        elif verb == "CHANNEL STATUS":
            lines_out = (*pending_hangup, "200 result=6")
        else:
            lines_out = (*pending_hangup, "200 result=1" if verb in DEAD_OK_VERBS
                         else "200 result=0")
        return lines_out, 0.0


async def replay_agi_session(host: str, port: int, recording: AgiRecording,
                             script: str | None = None, delay_scale: float = 0.0,
                             variables: dict[str, str] | None = None) -> list[str]:
    """Play Asterisk's side of one FastAGI session; return the commands the server sent.

    `delay_scale` multiplies the recorded delays (0: answer at once, 0.1: ten times faster
    than the real call). `variables` answers GET VARIABLE for those names.
    """
    reader, writer = await asyncio.open_connection(host, port)
    replayer = AgiReplayer(recording)
    try:
        writer.write(recording.environment_bytes(script))
        while True:
            raw = await reader.readline()
            if not raw.endswith(b"\n"):
                break
            command = raw[:-1].decode("utf-8", "replace")
            lines, delay = replayer.reply(command)
            if variables and verb_of(command) == "GET VARIABLE":
                name = command.split(" ", 2)[-1].strip('"')
                if name in variables:
                    lines = (f"200 result=1 ({variables[name]})",)
            if delay_scale > 0 and delay > 0:
                await asyncio.sleep(delay * delay_scale)
            writer.write(("\n".join(lines) + "\n").encode())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return replayer.received
