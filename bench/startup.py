"""Start-up figures for `make bench`: `ship version` and `ship --help` beside `python -c pass`
and `kubectl version --client`, warm (each run once first), the median and best of N runs.

Targets (issue 23): ship version ≤ 0.15 s, ship --help ≤ 0.25 s. Needs no cluster:
`python bench/startup.py` prints the figures alone.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGETS = {"ship_version": 0.15, "ship_help": 0.25}


def seconds(cmd: list[str], runs: int) -> dict:
    # warm: caches, .pyc files
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return {
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "runs": runs,
    }


def ship_command() -> list[str]:
    """The console script users run (next to this Python), else `python -m pipeline`."""
    script = Path(sys.executable).with_name("ship")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline"]


def startup(runs: int = 20) -> dict:
    ship = ship_command()
    out = {
        "python_pass": seconds([sys.executable, "-c", "pass"], runs),
        "ship_version": seconds([*ship, "version"], runs),
        "ship_help": seconds([*ship, "--help"], runs),
    }
    if shutil.which("kubectl"):
        out["kubectl_version_client"] = seconds(["kubectl", "version", "--client"], runs)
    out["targets_s"] = TARGETS
    out["met"] = {name: out[name]["median_s"] <= target for name, target in TARGETS.items()}
    return out


def line(s: dict) -> str:
    kubectl = (
        f", kubectl version --client {s['kubectl_version_client']['median_s']:.3f}s"
        if "kubectl_version_client" in s
        else ""
    )
    return (
        f"start-up, warm, median of {s['python_pass']['runs']}: "
        f"python -c pass {s['python_pass']['median_s']:.3f}s"
        f"{kubectl}; ship version {s['ship_version']['median_s']:.3f}s "
        f"(target ≤ {TARGETS['ship_version']}s), "
        f"ship --help {s['ship_help']['median_s']:.3f}s (target ≤ {TARGETS['ship_help']}s)"
    )


if __name__ == "__main__":
    figures = startup()
    print(json.dumps(figures, indent=2))
    print(line(figures))
