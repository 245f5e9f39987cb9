"""`make faults`: faults injected into the real local parts while ship works, and what ship did.

Brings up a cluster of its own (FAULTS_CLUSTER, default ship-faults on 127.0.0.1:18643, never
the default cluster), toxiproxy in front of its kube-apiserver, and runs the trials of
tests/faults/trials.py: the API server (latency, resets, stalls, refusals, 500s, APF's 429s,
kube-apiserver killed and restarted), git (the remote gone or cut mid-push), the registry (down
mid-build and mid-verify) and ship itself killed with SIGKILL at 26 points. Prints a table of
trials and outcomes and writes bench/faults.json. FAULTS_GROUPS=api,git,registry,kill picks
groups. Stops the parts it started (FAULTS_KEEP=1 keeps them). Exits non-zero when any trial
did not converge.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults import trials  # noqa: E402
from tests.faults.lab import Lab, Result  # noqa: E402

GROUPS = {
    "api": trials.api_trials,
    "git": trials.git_trials,
    "registry": trials.registry_trials,
    "kill": trials.kill_trials,
}


def say(message: str) -> None:
    print(f"faults: {message}", file=sys.stderr, flush=True)


def table(results: list[Result]) -> str:
    rows = [
        "| # | group | trial | fault | ship under the fault | next command | outcome | time |",
        "|---:|---|---|---|---|---|---|---:|",
    ]
    for i, r in enumerate(results, 1):
        first = r.first + (f"; {'; '.join(r.notes)}" if r.notes else "")
        outcome = "converged" if r.ok else "**FAILED**: " + "; ".join(r.problems)
        rows.append(
            f"| {i} | {r.group} | {r.name} | {r.fault} | {_cell(first)} | {_cell(r.then) or '—'} | "
            f"{_cell(outcome)} | {r.seconds:.0f} s |"
        )
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "")[:220]


def main() -> int:
    wanted = [g for g in os.environ.get("FAULTS_GROUPS", ",".join(GROUPS)).split(",") if g]
    start = time.monotonic()
    lab = Lab()
    was_running = lab.running()
    say(
        f"starting the lab's parts ({lab.settings['SHIP_CLUSTER']} "
        f"on 127.0.0.1:{lab.settings['SHIP_KUBE_PORT']})"
    )
    results: list[Result] = []
    try:
        lab.up()
        for group in wanted:
            story = lab.story(group)
            say(f"{group}: trials in {story.work}")
            try:
                for result in GROUPS[group](lab, story):
                    say(
                        f"{'ok    ' if result.ok else 'FAILED'} "
                        f"{group}: {result.name} ({result.seconds:.0f}s)"
                        + ("" if result.ok else f": {'; '.join(result.problems)}")
                    )
                    results.append(result)
                    if not result.ok:
                        story.repair()
            except Exception as exc:
                # the harness's own setup failed: say so as a failed trial, go on
                say(f"FAILED {group}: the harness stopped: {exc}")
                results.append(
                    Result(
                        group, "(harness)", "-", "", "", [f"{type(exc).__name__}: {exc}"[:300]], 0.0
                    )
                )
            finally:
                story.cleanup()
    finally:
        # Parts this run started are stopped again (FAULTS_KEEP=1 keeps them for another run).
        lab.down(stop_parts=not was_running and os.environ.get("FAULTS_KEEP") != "1")
    seconds = time.monotonic() - start
    text = table(results)
    print(text)
    passed = sum(r.ok for r in results)
    print(f"\n{passed} of {len(results)} trials converged in {seconds / 60:.1f} min")
    (ROOT / "bench/faults.json").write_text(
        json.dumps(
            {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "seconds": round(seconds),
                "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
                "passed": passed,
                "trials": [r.to_json() for r in results],
            },
            indent=2,
        )
        + "\n"
    )
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
