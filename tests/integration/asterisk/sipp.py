"""SIPp peers for the tier: scenario texts and a process wrapper (127.0.0.1 only).

The patient scenarios are UAS ones on the trunk's contact address (Asterisk sends every
patient call there): answer (SDP pointing at an `RtpPatient`), busy (486), ring until
cancelled. A BYE from the peer goes to the INVITE's Contact and swaps From/To as a UAS must
(the headers are captured from the ACK), so Asterisk's dialog finds it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

_ANSWER = """\
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=peer 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {media_port} RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
"""

_RINGING = """\
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0
"""

_OK_TO_REQUEST = """\
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0
"""

_BYE = """\
BYE [$peer_contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$ack_to]
To: [$ack_from]
[last_Call-ID:]
CSeq: 2 BYE
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Length: 0
"""

_ACK_CAPTURE = """\
  <recv request="ACK">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="ack_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="ack_to"/>
    </action>
  </recv>
"""




def _send(text: str, retrans: bool = False) -> str:
    attr = ' retrans="500"' if retrans else ""
    return f"  <send{attr}><![CDATA[\n\n{text}\n  ]]></send>\n"


def _scenario(name: str, body: str) -> str:
    return (f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n'
            f"{body}</scenario>\n")


def _invite_telling_media(remote_file: Path | None, capture: bool = False) -> str:
    """Receive the INVITE; with `remote_file`, note the port of Asterisk's audio (its SDP's
    m= line) for `_media_starts` to hand to the patient's media."""
    actions = ('      <ereg regexp="sip:[^>;]+" search_in="hdr" header="Contact:" '
               'assign_to="peer_contact"/>\n' if capture else "")
    if remote_file is not None:
        actions += ('      <ereg regexp="m=audio ([0-9]+)" search_in="msg" '
                    'assign_to="m_line,rtp_port"/>\n')
    if not actions:
        return '  <recv request="INVITE"/>\n'
    used = '  <Reference variables="m_line"/>\n' if remote_file is not None else ""
    return (f'  <recv request="INVITE">\n    <action>\n{actions}    </action>\n  </recv>\n'
            + used)


def _media_starts(remote_file: Path | None) -> str:
    """Once the call is answered (after the ACK), write Asterisk's audio port where the
    patient's media waits for it: a phone sends from the answer on, not while it rings."""
    if remote_file is None:
        return ""
    return f'  <nop><action><exec command="echo [$rtp_port] > {remote_file}"/></action></nop>\n'


def answer_and_wait(media_port: int, ring_ms: int = 300,
                    remote_file: Path | None = None) -> str:
    """Ring briefly, answer, then wait for Asterisk's BYE (the IVR or the queue ends)."""
    return _scenario("answer, wait for BYE", (
        _invite_telling_media(remote_file) + _send(_RINGING)
        + f'  <pause milliseconds="{ring_ms}"/>\n'
        + _send(_ANSWER.format(media_port=media_port), retrans=True)
        + '  <recv request="ACK"/>\n' + _media_starts(remote_file)
        + '  <recv request="BYE" timeout="120000"/>\n' + _send(_OK_TO_REQUEST)))


_ANSWER_STREAMING = _ANSWER.replace("m=audio {media_port} RTP/AVP 0 101",
                                    "m=audio [rtpstream_audio_port] RTP/AVP 0 101")


def answer_and_stream(wav: Path, ring_ms: int = 300) -> str:
    """Ring briefly, answer, play `wav` (8 kHz mono mu-law) as the callee's voice with
    SIPp's own RTP streamer, then wait for Asterisk's BYE: a person or a voicemail
    greeting picking up."""
    return _scenario("answer, speak, wait for BYE", (
        '  <recv request="INVITE"/>\n' + _send(_RINGING)
        + f'  <pause milliseconds="{ring_ms}"/>\n'
        + _send(_ANSWER_STREAMING, retrans=True)
        + '  <recv request="ACK"/>\n'
        + f'  <nop><action><exec rtp_stream="{wav},1,0"/></action></nop>\n'
        + '  <recv request="BYE" timeout="60000"/>\n' + _send(_OK_TO_REQUEST)))


def answer_then_hang_up(media_port: int, after_ms: int, ring_ms: int = 300,
                        remote_file: Path | None = None) -> str:
    """Ring briefly (as a phone does), answer, then hang up (BYE) `after_ms` after the
    ACK."""
    return _scenario("answer, hang up", (
        _invite_telling_media(remote_file, capture=True) + _send(_RINGING)
        + f'  <pause milliseconds="{ring_ms}"/>\n'
        + _send(_ANSWER.format(media_port=media_port), retrans=True)
        + _ACK_CAPTURE + _media_starts(remote_file)
        + f'  <pause milliseconds="{after_ms}"/>\n'
        + _send(_BYE, retrans=True)
        + '  <recv response="200"/>\n'))


_GATEWAY_LOG = '<log message="{what} [call_id] [$number] [clock_tick]"/>'


def _gateway_invite(capture_contact: bool = True) -> str:
    """Receive a call at the gateway: log its arrival with the number dialled, and note
    the caller's Contact (for a BYE of the callee's own)."""
    contact = ('      <ereg regexp="sip:[^>;]+" search_in="hdr" header="Contact:" '
               'assign_to="peer_contact"/>\n') if capture_contact else ""
    return ('  <recv request="INVITE">\n    <action>\n' + contact
            + '      <ereg regexp="^INVITE sip:([^@;> ]+)" search_in="msg" '
            'assign_to="request_line,number"/>\n'
            f"      {_GATEWAY_LOG.format(what='in')}\n    </action>\n  </recv>\n"
            '  <Reference variables="request_line"/>\n')


def gateway_callees(media_port: int, talk_ms: int, ring_ms: int = 300) -> str:
    """A carrier gateway's side of many calls: every callee rings, answers and hangs up
    `talk_ms` after the ACK. Each call's arrival (`in`) and end (`out`: the callee hung up,
    or the call was lost before the ACK) are logged with SIPp's clock in ms, for the
    gateway's own count of concurrent calls and call setups."""
    out = _GATEWAY_LOG.format(what="out")
    return _scenario("gateway", (
        _gateway_invite()
        + _send(_RINGING) + f'  <pause milliseconds="{ring_ms}"/>\n'
        + _send(_ANSWER.format(media_port=media_port), retrans=True)
        + _ACK_CAPTURE.replace('<recv request="ACK">',
                               '<recv request="ACK" timeout="6000" ontimeout="lost">')
        + f'  <pause milliseconds="{talk_ms}"/>\n'
        + f"  <nop><action>{out}</action></nop>\n"
        + _send(_BYE, retrans=True)
        + '  <recv response="200" timeout="6000" ontimeout="done"/>\n'
        + '  <nop next="done"/>\n'
        + f'  <label id="lost"/>\n  <nop><action>{out}</action></nop>\n'
        + '  <label id="done"/>\n'))


def gateway_talking_callees(wav: Path, ring_ms: int = 300) -> str:
    """Callees who answer and stay on the line until Asterisk hangs up, their side of the
    line (`wav`: 8 kHz mu-law, "hello?" and the room after it) streamed in a loop by SIPp's
    RTP streamer: media both ways for the whole call, as on a real call."""
    return _scenario("gateway, talking", (
        _gateway_invite(capture_contact=False)
        + _send(_RINGING) + f'  <pause milliseconds="{ring_ms}"/>\n'
        + _send(_ANSWER_STREAMING, retrans=True)
        + '  <recv request="ACK"/>\n'
        + f'  <nop><action><exec rtp_stream="{wav},-1,0"/></action></nop>\n'
        + '  <recv request="BYE" timeout="180000">\n    <action>\n'
        + f"      {_GATEWAY_LOG.format(what='out')}\n    </action>\n  </recv>\n"
        + _send(_OK_TO_REQUEST)))


def busy() -> str:
    return _scenario("busy", (
        '  <recv request="INVITE"/>\n'
        + _send(_RINGING.replace("180 Ringing", "486 Busy Here").replace(
            "Contact: <sip:[local_ip]:[local_port];transport=[transport]>\n", ""))
        + '  <recv request="ACK"/>\n'))


def ring_until_cancelled() -> str:
    terminated = _RINGING.replace("180 Ringing", "487 Request Terminated").replace(
        "[last_CSeq:]", "CSeq: [cseq] INVITE").replace(
        "Contact: <sip:[local_ip]:[local_port];transport=[transport]>\n", "")
    return _scenario("ring until cancelled", (
        '  <recv request="INVITE"/>\n' + _send(_RINGING)
        + '  <recv request="CANCEL" timeout="120000"/>\n' + _send(_OK_TO_REQUEST)
        + _send(terminated)
        + '  <recv request="ACK"/>\n'))


def register(user: str, password: str, registrar_port: int, contact_port: int,
             expires: int = 300) -> str:
    """REGISTER `user` (digest auth) with Contact on `contact_port`: run it bound to that
    port, since Asterisk (rewrite_contact=yes) keeps the source address as the contact."""
    def request(cseq: int, auth: str) -> str:
        return (f"REGISTER sip:127.0.0.1:{registrar_port} SIP/2.0\n"
                "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
                f"From: <sip:{user}@127.0.0.1>;tag=[pid]reg[call_number]\n"
                f"To: <sip:{user}@127.0.0.1>\n"
                "Call-ID: [call_id]\n"
                f"CSeq: {cseq} REGISTER\n"
                f"Contact: <sip:{user}@127.0.0.1:{contact_port}>\n"
                f"{auth}Expires: {expires}\nMax-Forwards: 70\nContent-Length: 0\n")
    return _scenario("register", (
        _send(request(1, ""), retrans=True)
        + '  <recv response="401" auth="true"/>\n'
        + _send(request(2, f"[authentication username={user} password={password}]\n"),
                retrans=True)
        + '  <recv response="200"/>\n'))


def agent_answers(media_port: int, talk_ms: int) -> str:
    """An agent's phone: ring a moment, answer, talk `talk_ms`, hang up."""
    return _scenario("agent answers", (
        _invite_telling_media(None, capture=True) + _send(_RINGING)
        + '  <pause milliseconds="500"/>\n'
        + _send(_ANSWER.format(media_port=media_port), retrans=True)
        + _ACK_CAPTURE
        + f'  <pause milliseconds="{talk_ms}"/>\n'
        + _send(_BYE, retrans=True)
        + '  <recv response="200"/>\n'))


class Sipp:
    """One `sipp` process running one scenario for one call (`-m 1`)."""

    def __init__(self, binary: str, work: Path, name: str, scenario: str, port: int,
                 remote: str | None = None, timeout_s: int = 90,
                 serve: bool = False) -> None:
        """`serve`: answer calls until killed (a gateway), logging the scenario's <log>
        actions to `NAME.calls.log` instead of tracing every message."""
        self.name = name
        self.log = work / f"{name}.out"
        path = work / f"{name}.xml"
        path.write_text(scenario, encoding="latin-1")
        cmd = [binary, "-sf", str(path), "-i", "127.0.0.1", "-p", str(port), "-nostdin",
               "-trace_err", "-error_file", str(work / f"{name}.errors.log")]
        if serve:
            cmd += ["-trace_logs", "-log_file", str(work / f"{name}.calls.log")]
        else:
            cmd += ["-m", "1", "-timeout", f"{timeout_s}s", "-timeout_error",
                    "-trace_msg", "-message_file", str(work / f"{name}.messages.log")]
        if remote:
            cmd.append(remote)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self._work = work
        # a loaded machine can take seconds to start SIPp: a call placed before it listens
        # rings into nothing until Asterisk's originate timeout, which is not what a test
        # of a phone that answers means to check
        _wait_until_bound(port, self.proc, 20.0)

    def wait(self, timeout_s: float) -> int:
        """The exit status (0: the scenario ran to its end)."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return -1

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def describe(self) -> str:
        """The tail of what SIPp said, for assertion messages."""
        parts = []
        for name in (f"{self.name}.errors.log", f"{self.name}.messages.log"):
            path = self._work / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def _wait_until_bound(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until a UDP socket is bound to 127.0.0.1:`port` (read from /proc/net/udp, so the
    check never takes the port itself), the process exits, or `timeout_s` passes."""
    wanted = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            table = Path("/proc/net/udp").read_text()
        except OSError:
            return  # not Linux: carry on as before
        if any(line.split()[1] == wanted for line in table.splitlines()[1:] if line.strip()):
            return
        time.sleep(0.05)


def wait_for_exit(peers: list[Sipp], timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    return {p.name: p.wait(max(0.1, deadline - time.monotonic())) for p in peers}
