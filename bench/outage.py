"""The provider-outage drill at a chosen size, with its figures.

Runs the fault-injection test (notifications/tests/test_fault_injection.py) through pytest,
so that the drill measured here is exactly the one CI runs: real Celery workers and beat,
a redis-server of its own as the broker, the loopback provider answering 503 and then
timing out, workers killed with SIGKILL mid-burst, the broker's Redis killed and
restarted, and (on PostgreSQL) the workers' database connections terminated. It prints
what the test measured: outbox rows and provider requests, the drain time after the
outage, how late follow-up steps were taken during it and after, and the counts of what
must be zero (lost, doubled, rows not final, pages after resolution, ...).

    .venv/bin/python bench/outage.py [--scale ci|full] [--record]

On PostgreSQL (REDIS_URL is then the test process's cache; the drill's broker is still a
redis-server of its own, so the shared Redis is never flushed or killed):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python bench/outage.py --scale full

`make fault-injection` runs the full size (two minutes of 5xx, then two of timeouts).
`--record` appends the figures, with the command, to bench/RESULTS.md. The exit status is
the test's: non-zero when a delivery guarantee was broken (the figures are printed anyway).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "notifications/tests/test_fault_injection.py"
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Provider outage with killed workers, Redis and database connections"


def stats(s: dict) -> str:
    return f"p50 {s['p50']:.1f} s, max {s['max']:.1f} s (n={s['n']})" if s.get("n") else "-"


def states(backends: list) -> str:
    """How many of the terminated connections were idle, running a query, ..."""
    counts: dict[str, int] = {}
    for _, state in backends:
        counts[state or "unknown"] = counts.get(state or "unknown", 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def summary(f: dict) -> str:
    lines = []
    terminated = f.get("db_connections_terminated")
    exited = f.get("workers_exited_by_themselves") or []
    lines.append(
        f"{f['faults']} faults ({f['people']} people) on {f['database']}: every provider 503 for "
        f"{f['outage_seconds']['5xx']:.0f} s, then timing out for {f['outage_seconds']['hang']:.0f} s; "
        f"{len(f['kills'])} workers killed with SIGKILL ({', '.join(k['moment'] for k in f['kills'])}), "
        f"the broker's Redis killed and restarted {f.get('redis_restarts', 0)}x"
        + (f", {len(terminated)} database connection(s) terminated ({states(terminated)})" if terminated else "")
    )
    if exited:
        lines.append(f"workers that exited by themselves (started again): {len(exited)} — {exited[0]['why']}")
    m, r = f["messages"], f["requests"]
    lines.append(
        f"outbox rows {m['rows']} (pages {m['pages']}, unconfirmed {m['unconfirmed']}; {m['by_status']}); "
        f"requests at the provider {r['total']} (accepted {r['accepted']}, answered by the outage "
        f"{r['answered_by_the_outage']}, tokens {r['tokens_issued']})"
    )
    lines.append(
        f"after the outage: backlog drained in {f['drain_seconds']:.1f} s, everyone needed checked in by "
        f"{f['all_checked_in_seconds']:.1f} s, every row final by {f['settled_seconds_after_outage']:.1f} s"
    )
    lines.append("lateness of follow-up steps (taken − due):")
    for name, spread in f["lateness_seconds"].items():
        if "during_outage" in spread:
            lines.append(
                f"  {name.replace('_', ' '):<28} during the outage {stats(spread['during_outage'])}; "
                f"after {stats(spread['after_outage'])}"
            )
        else:
            lines.append(f"  {name.replace('_', ' '):<28} {stats(spread)}")
    lines.append("must be 0: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in f["counts"].items()))
    lines.append(f"run took {f['duration_seconds']:.0f} s; logs in {f['logs']}")
    return "\n".join(lines)


def command(scale: str) -> str:
    env = " ".join(f"{k}={os.environ[k]}" for k in ("DATABASE_URL", "REDIS_URL") if os.environ.get(k))
    return " ".join(filter(None, [env, ".venv/bin/python bench/outage.py", f"--scale {scale}"]))


def record(scale: str, text: str) -> None:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    body = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    if SECTION not in body:
        body += (
            f"\n{SECTION}\n\n"
            "The fault-injection drill (`notifications/tests/test_fault_injection.py`) run by "
            "`bench/outage.py`: a provider outage (503, then timeouts) while workers are killed "
            "mid-burst, the broker's Redis is restarted and database connections are terminated; "
            "every request at the loopback provider counted against the outbox.\n"
        )
    body += f"\n`{command(scale)}`\n\n{when} — {machine}:\n\n```\n{text}\n```\n"
    RESULTS.write_text(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=("ci", "full"), default="ci")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="warroom-outage-") as work:
        figures_path = Path(work) / "figures.json"
        env = {**os.environ, "FAULT_INJECTION_SCALE": args.scale, "FAULT_INJECTION_FIGURES": str(figures_path)}
        status = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=ROOT, env=env
        )
        if not figures_path.exists():
            print("The drill ended before it measured anything; see pytest's output above.", file=sys.stderr)
            return status or 1
        figures = json.loads(figures_path.read_text())
    if "counts" not in figures:
        print(f"The drill stopped part-way (pytest's output above says where). So far: {json.dumps(figures)}")
        return status or 1
    text = summary(figures)
    print(f"\n{text}\n\n{json.dumps(figures)}")
    if args.record:
        record(args.scale, text)
        print(f"Appended to {RESULTS.relative_to(ROOT)}.")
    return status


if __name__ == "__main__":
    sys.exit(main())
