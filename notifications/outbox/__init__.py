"""The outbox: every message is a Delivery row first; workers claim, send and record.

The bottom layer of notifications. It knows rows, claims, leases, retries, receipts and
the sweeper; it sends through `notifications.channels` and queues Celery tasks by name,
so it imports neither the response above it nor any provider.

How a row moves (see "Delivery guarantees" in DESIGN.md):

    pending ──claim (conditional UPDATE, lease)──► sending ──► sent ──receipt──► delivered
       ▲                                            │    │                    └─► failed
       └──── transient error, still worth it ───────┘    ├─► delivered (no receipt follows)
             (next_attempt_at = now + capped backoff)     └─► failed (refused, or out of time)
    pending ──fault resolved / person checked in──► cancelled (unless it may have left)

Modules: `rows` (writing and cancelling rows, pages), `queue` (which Celery queue),
`attempts` (claim, send, record), `receipts`, `sweeper`, `outages` (provider health).
"""
