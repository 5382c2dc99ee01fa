"""A minimal asyncio AMI client: connect, log in, keep alive, reconnect with backoff.

Why our own and not `panoramisk.Manager` (1.4), after reading its source:
- on a reconnect it re-sends every action still awaiting a response
  (`awaiting_actions`, sent again on `FullyBooted`): an Originate in flight when the link
  dropped would be dialled twice;
- a message carrying an in-flight action's ActionID is routed to that action, never to the
  event handlers, and `Message` answers `''` for any header it lacks;
- it decodes each TCP chunk separately with errors ignored (a UTF-8 caller name split
  across two reads loses characters), retries at a fixed interval, and a refused login
  only shows as a falsy attribute.
This client is small: one reader task, one pinger, typed events out (`ami_messages`),
and it never re-sends anything by itself.

Events are delivered to `on_event` in arrival order from the reader task. After every
(re)connection and login, `on_connected` runs before events are considered live again:
the Telephony adapter rebuilds its call state there (CoreShowChannels + Status), because
events missed while disconnected are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.errors import TelephonyError, TelephonyUnavailable
from dialer.asterisk.ami_frame import AmiFrame
from dialer.asterisk.ami_messages import (
    ActionResponse,
    AmiEvent,
    ChannelStatus,
    CoreShowChannel,
    ListComplete,
    QueueMemberStatus,
    Shutdown,
    event_is_used,
    parse_event,
    parse_response,
)

log = logging.getLogger(__name__)

MAX_FRAME_LINES = 2000
READ_CHUNK = 65536
_MESSAGE_END = re.compile(rb"\r?\n\r?\n")  # the blank line after a message
BANNER = "Asterisk Call Manager/"


class AmiAuthError(TelephonyError):
    """Asterisk refused the AMI user or secret (fix the settings; retrying will not help)."""

    code = "ami_auth"


class AmiActionError(TelephonyError):
    """Asterisk answered an action with `Response: Error`."""

    code = "ami_action"


@dataclass(frozen=True, slots=True)
class AmiConfig:
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    connect_timeout_s: float = 5.0
    action_timeout_s: float = 10.0
    ping_interval_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


@dataclass
class _Pending:
    future: asyncio.Future[tuple[ActionResponse, list[AmiEvent]]]
    is_list: bool
    response: ActionResponse | None = None
    items: list[AmiEvent] = field(default_factory=list)


EventCallback = Callable[[AmiEvent], None]
ConnectedCallback = Callable[["AmiClient"], Awaitable[None]]


def _worth_parsing(block: bytes) -> bool:
    """False for an event the engine has no use for, told by its first line (Asterisk
    sends `Event:` first); anything else is parsed."""
    if not block.startswith(b"Event:"):
        return True
    line_end = block.find(b"\n")
    name = block[6:line_end if line_end >= 0 else len(block)].strip()
    return event_is_used(name.decode("ascii", "replace"))


class AmiClient:
    """One AMI connection, kept up until `close()`."""

    def __init__(self, config: AmiConfig, on_event: EventCallback,
                 on_connected: ConnectedCallback | None = None) -> None:
        self._config = config
        self._on_event = on_event
        self._on_connected = on_connected
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(3)
        self._pending: dict[str, _Pending] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._first_login: asyncio.Future[None] | None = None
        self._closing = False
        self.connections = 0  # how many times we (re)connected and logged in

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def start(self, *, must_connect: bool = True) -> None:
        """Connect and log in. Raises `AmiAuthError` on a refused login, and
        `TelephonyUnavailable` if the first connection cannot be made in time; with
        `must_connect=False` it goes on trying in the background instead (one of several
        servers may be down when the engine starts)."""
        self._first_login = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run(), name="ami-client")
        try:
            await asyncio.wait_for(asyncio.shield(self._first_login),
                                   self._config.connect_timeout_s * 2)
        except TimeoutError as exc:
            if not must_connect:
                log.error("AMI %s:%s unreachable; retrying in the background",
                          self._config.host, self._config.port)
                return
            await self.close()
            raise TelephonyUnavailable(
                f"AMI {self._config.host}:{self._config.port} unreachable") from exc
        except AmiAuthError:
            await self.close()
            raise

    async def close(self) -> None:
        self._closing = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._drop_connection()

    async def wait_connected(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # -- actions --------------------------------------------------------------------------

    def next_action_id(self, kind: str) -> str:
        return f"{kind}-{self._prefix}-{next(self._ids)}"

    async def send_action(self, action: str, *headers: tuple[str, str],
                          action_id: str | None = None, is_list: bool = False,
                          require_ready: bool = True) -> tuple[ActionResponse, list[AmiEvent]]:
        """Send an action and wait for its response (and, for lists, its events).

        Raises `TelephonyUnavailable` when not connected or the link drops before the
        answer (the action may or may not have run: nothing is re-sent), `AmiActionError`
        on `Response: Error`.
        """
        if require_ready and not self._ready.is_set():
            raise TelephonyUnavailable("AMI not connected")
        writer = self._writer
        if writer is None or writer.is_closing():
            raise TelephonyUnavailable("AMI not connected")
        action_id = action_id or self.next_action_id(action.lower())
        frame = AmiFrame.build(("Action", action), ("ActionID", action_id), *headers)
        data = frame.to_bytes()
        future: asyncio.Future[tuple[ActionResponse, list[AmiEvent]]] = \
            asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(future, is_list)
        try:
            writer.write(data)
            response, items = await asyncio.wait_for(future, self._config.action_timeout_s)
        except TimeoutError as exc:
            raise TelephonyUnavailable(f"AMI action {action} timed out") from exc
        finally:
            self._pending.pop(action_id, None)
        if not response.success:
            raise AmiActionError(f"AMI {action} refused: {response.message}")
        return response, items

    async def live_channels(self, variable: str) -> tuple[list[CoreShowChannel],
                                                          list[ChannelStatus]]:
        """The channels Asterisk has now, and `variable` on each (CoreShowChannels + Status)."""
        _, channels = await self.send_action("CoreShowChannels", is_list=True,
                                             require_ready=False)
        _, statuses = await self.send_action("Status", ("Variables", variable), is_list=True,
                                             require_ready=False)
        return ([c for c in channels if isinstance(c, CoreShowChannel)],
                [s for s in statuses if isinstance(s, ChannelStatus)])

    async def queue_members(self) -> list[QueueMemberStatus]:
        """Every member of every queue and its state now (QueueStatus)."""
        _, items = await self.send_action("QueueStatus", is_list=True, require_ready=False)
        return [m for m in items if isinstance(m, QueueMemberStatus)]

    # -- the connection loop --------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self._config.backoff_initial_s
        while not self._closing:
            try:
                await self._connect_and_serve()
                backoff = self._config.backoff_initial_s
            except AmiAuthError as exc:
                if self._first_login is not None and not self._first_login.done():
                    self._first_login.set_exception(exc)
                    return
                log.error("AMI login refused on reconnect; retrying in %.1fs", backoff)
            except (OSError, ConnectionError, TimeoutError, TelephonyError) as exc:
                log.warning("AMI connection lost (%s); reconnecting in %.1fs", exc, backoff)
            except Exception:
                # a bug in a callback must not end the connection loop for good
                log.exception("AMI connection failed unexpectedly; reconnecting in %.1fs",
                              backoff)
            finally:
                self._drop_connection()
            if self._closing:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._config.backoff_max_s)

    async def _connect_and_serve(self) -> None:
        cfg = self._config
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(cfg.host, cfg.port, limit=1 << 16), cfg.connect_timeout_s)
        self._writer = writer
        banner = await asyncio.wait_for(reader.readline(), cfg.connect_timeout_s)
        if not banner.decode("utf-8", "replace").startswith(BANNER):
            raise TelephonyUnavailable(f"not an AMI server: {banner[:40]!r}")
        reading = asyncio.create_task(self._read_loop(reader), name="ami-reader")
        try:
            try:
                await self.send_action("Login", ("Username", cfg.username),
                                       ("Secret", cfg.secret), ("Events", "on"),
                                       require_ready=False)
            except AmiActionError as exc:
                raise AmiAuthError(f"AMI login refused for user {cfg.username!r}") from exc
            if self._on_connected is not None:
                await self._on_connected(self)
            self.connections += 1
            self._ready.set()
            if self._first_login is not None and not self._first_login.done():
                self._first_login.set_result(None)
            await self._keepalive(reading)
        finally:
            reading.cancel()
            # the reader's own end (EOF, reset) must not mask why we are leaving
            await asyncio.gather(reading, return_exceptions=True)

    async def _keepalive(self, reading: asyncio.Task[None]) -> None:
        """Ping every interval; a missing Pong or a dead reader ends the connection."""
        while True:
            done, _ = await asyncio.wait({reading}, timeout=self._config.ping_interval_s)
            if done:
                exc = reading.exception()
                raise ConnectionError(f"AMI reader stopped: {exc!r}")
            await self.send_action("Ping", require_ready=False)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            await self._read_frames(reader)
        finally:
            # whoever waits for an answer learns now, not at its timeout
            self._fail_pending(TelephonyUnavailable("AMI connection lost"))

    async def _read_frames(self, reader: asyncio.StreamReader) -> None:
        """Read whole chunks and cut them into messages at the blank line: a busy Asterisk
        sends tens of messages per call, and reading them a line at a time cost the engine
        more CPU than everything else it does for a call. A message is decoded once it is
        complete (a UTF-8 name split between two reads stays whole)."""
        buffer = b""
        while True:
            chunk = await reader.read(READ_CHUNK)
            if not chunk:
                raise ConnectionError("AMI connection closed by the server")
            buffer += chunk
            start = 0
            for end in _MESSAGE_END.finditer(buffer):
                block = buffer[start:end.start()]
                start = end.end()
                if block.count(b"\n") >= MAX_FRAME_LINES:
                    raise ConnectionError("AMI message too long")
                if block.strip() and _worth_parsing(block):
                    self._dispatch(AmiFrame.parse(block.decode("utf-8", "replace")))
            buffer = buffer[start:]
            if buffer.count(b"\n") >= MAX_FRAME_LINES:
                raise ConnectionError("AMI message too long")

    def _dispatch(self, frame: AmiFrame) -> None:
        action_id = frame.action_id
        pending = self._pending.get(action_id) if action_id else None
        if frame.event is None:
            response = parse_response(frame)
            if response is None or pending is None or pending.future.done():
                return
            if pending.is_list and response.success:
                pending.response = response  # the items and the ...Complete event follow
            else:
                pending.future.set_result((response, []))
            return
        event = parse_event(frame)
        if event is None:
            return
        if pending is not None and pending.is_list and pending.response is not None:
            if isinstance(event, ListComplete):
                if not pending.future.done():
                    pending.future.set_result((pending.response, pending.items))
            else:
                pending.items.append(event)
            return
        if isinstance(event, Shutdown):
            log.warning("Asterisk is shutting down")
        try:
            self._on_event(event)
        except Exception:
            # a bug in one handler must not kill the connection (and every other call)
            log.exception("AMI event handler failed on %s", type(event).__name__)

    def _fail_pending(self, exc: TelephonyUnavailable) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(exc)
        self._pending.clear()

    def _drop_connection(self) -> None:
        self._ready.clear()
        self._fail_pending(TelephonyUnavailable("AMI connection lost"))
        if self._writer is not None:
            self._writer.close()
            self._writer = None
