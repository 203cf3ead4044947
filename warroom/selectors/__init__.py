"""Reads for the war-room pages, one module per job.

- `fault_list`: the list of faults a user may see;
- `war_room`: one fault's page as a snapshot, and the events a socket catches up on;
- `collaboration`: the fault's collaboration group and its conference call;
- `recovery_summary`: the recovery metrics summary, ready to show;
- `sandbox`: what the sandbox transport shows in place of DingTalk and the phone.

The sentences of the timeline are presentation, not reads: see `warroom.event_text`.
"""
