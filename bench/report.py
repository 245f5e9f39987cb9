"""What `make bench` prints and records besides the figures: the machine, the versions, the
table and the scaling chart."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT
from bench.startup import line as startup_line


def versions() -> dict:
    sys.path.insert(0, str(ROOT))
    env = {}
    for line in (ROOT / "hack/versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value.split(":-", 1)[-1].split("}", 1)[0]
    kubectl = subprocess.run(
        ["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True
    )
    from pipeline import __version__

    return {
        "ship": __version__,
        **env,
        "kubectl": json.loads(kubectl.stdout)["clientVersion"]["gitVersion"]
        if kubectl.returncode == 0
        else None,
    }


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["objects"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.plot(
        n,
        [r["kubectl_full_s"] for r in rows],
        "o-",
        label="kubectl apply --server-side (full)",
        color="#6b7280",
    )
    ax.plot(n, [r["ship_full_s"] for r in rows], "o-", label="ship sync (full)", color="#2563eb")
    ax.plot(
        n,
        [r["kubectl_noop_s"] for r in rows],
        "s--",
        label="kubectl apply (no change)",
        color="#9ca3af",
    )
    ax.plot(
        n, [r["ship_noop_s"] for r in rows], "s--", label="ship sync (no change)", color="#16a34a"
    )
    ax.set_xlabel("objects in the environment")
    ax.set_ylabel("seconds")
    ax.set_title("Sync time against object count (local KWOK cluster, same run)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def table(results: dict) -> str:
    out: list[str] = [startup_line(results["startup"])] if results.get("startup") else []
    if results.get("sync"):
        out += [
            "",
            "| objects | ship full | kubectl full | ratio "
            "(target ≤ 0.4) | bare SSA | ship / bare (target ≤ 2 "
            "at 1,000) | ship no-op | ratio to kubectl full (target ≤ 0.05) | no-op requests |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["sync"]:
            bare = (
                f"{r['bare_ssa_s']:.2f}s | {r['ratio_to_bare']:.1f}×"
                if "bare_ssa_s" in r
                else "- | -"
            )
            out.append(
                f"| {r['objects']} | {r['ship_full_s']:.2f}s | "
                f"{r['kubectl_full_s']:.2f}s | {r['ratio_full']:.2f}× "
                f"| {bare} | {r['ship_noop_s']:.2f}s | "
                f"{r['ratio_noop']:.3f}× | {r['ship_noop_requests']} |"
            )
    out.append("")
    if results.get("failure_detection"):
        f = results["failure_detection"]
        out.append(
            f"failure detection: ProgressDeadlineExceeded → ship reports the failed gate: "
            f"{f['deadline_to_reported_s']:.3f}s (target ≤ 1s); → previous release healthy again: "
            f"{f['reported_to_previous_healthy_s']:.2f}s"
        )
    if results.get("promotion"):
        p = results["promotion"]
        out.append(
            "promotion dev → uat → prod canary → prod: "
            f"{p['wall_s']:.1f}s wall, {p['waiting_on_cluster_s']:.1f}s "
            "waiting on the cluster (gates and bakes), "
            f"{p['ship_s']:.1f}s ship ({p['ship_share']:.0%})"
        )
    if results.get("many_apps"):
        m = results["many_apps"]
        out.append(
            f"{m['apps']} apps × {m['environments']} environments, "
            f"{m['edge']}: 1 promote of {m['apps']} apps: "
            f"{m['unit_s']:.1f}s; {m['apps']} promotes: "
            f"{m['separate_s']:.1f}s; {m['speedup']:.1f}× faster "
            f"(gates: {m['unit_gate_s']:.1f}s once against {m['separate_gates_s']:.1f}s in all)"
        )
    for label, phases in (
        ("no-op sync at 100 objects", (results.get("sync") or [{}])[0].get("breakdown_noop")),
        (
            "lone promote uat → prod (20-app environment)",
            (results.get("many_apps") or {}).get("breakdown_lone_promote"),
        ),
    ):
        if phases:
            out.append(
                f"{label}, by phase: " + ", ".join(f"{k} {v:.2f}s" for k, v in phases.items())
            )
    if results.get("sync"):
        big = max(results["sync"], key=lambda r: r["objects"])
        out += [
            f"peak memory of ship in the {big['objects']}-object "
            f"sync: {big['ship_peak_rss_mib']:.0f} MiB "
            "(max RSS, kustomize included)",
            "scaling: ship's full sync per object: "
            + ", ".join(
                f"{r['objects']} objects {r['ship_full_s'] / r['objects'] * 1000:.1f}ms"
                for r in results["sync"]
            ),
        ]
    return "\n".join(out)
