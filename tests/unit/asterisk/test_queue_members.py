"""Queue members' states from what Asterisk 22 really sent: the ringall queue rings both
agents, Agent 2001 takes the call, Agent 2002 goes back to waiting, 2001 hangs up."""

from __future__ import annotations

from dialer.agents import AgentState, member_state
from dialer.asterisk.ami_messages import QueueMemberStatus
from tests.unit.asterisk.test_call_tracker_replay import recorded_events


def _states(name: str) -> list[tuple[str, str, AgentState]]:
    return [(e.queue, e.member_name, member_state(e.status, e.paused, e.in_call))
            for e in recorded_events(name) if isinstance(e, QueueMemberStatus)]


def test_a_queue_call_taken_by_one_of_two_agents() -> None:
    states = _states("originate_queue_agents")
    assert states[:5] == [
        ("followup-agents", "Agent 2001", AgentState.RINGING),
        ("followup-agents", "Agent 2002", AgentState.RINGING),
        ("followup-agents", "Agent 2001", AgentState.TALKING),
        ("followup-agents", "Agent 2002", AgentState.AVAILABLE),
        ("followup-agents", "Agent 2001", AgentState.AVAILABLE)], states


def test_the_queue_status_list_names_each_member() -> None:
    members = [e for e in recorded_events("actions_misc") if isinstance(e, QueueMemberStatus)]
    assert [(m.queue, m.member_name, m.interface,
             member_state(m.status, m.paused, m.in_call)) for m in members] == [
        ("followup-agents", "Agent 2002", "PJSIP/2002", AgentState.AVAILABLE),
        ("followup-agents", "Agent 2001", "PJSIP/2001", AgentState.AVAILABLE)]
