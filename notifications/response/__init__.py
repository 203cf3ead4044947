"""The response around the outbox, one module per job.

- `reactions`: what each timeline event calls for, written inside the service's
  transaction (outbox rows, the group, engagements, deadlines) and never an event itself;
- `group`: the fault's collaboration group, its card and the progress posted to it;
- `engagements`: dialling everyone pulled in until he checks in, re-paging, escalation,
  replacing a commander — never for a silence a provider outage caused;
- `deadlines`: repeated notifications, task and progress reminders;
- `rounds`: one notification to the business's recipients and groups;
- `conference`: recording the one-click conference;
- `scheduler`: the entry point beat and the follow-up task call.
"""
