"""`make bench`: ship against `kubectl apply --server-side` on the local cluster, side by side.

Every figure is a ratio against a baseline run in the same invocation on the same cluster,
because these machines are noisy. Measures:

  1. full sync of a generated environment (40% ConfigMaps, 30% headless Services, 30%
     Deployments with 0 replicas, so the apply path is measured rather than KWOK's pods)
     into a fresh namespace: `ship sync ENV --no-gate` vs `kubectl apply --server-side
     --force-conflicts` of the same rendered manifests into another fresh namespace;
  2. no-op sync (nothing changed) against kubectl's full apply;
  3. scaling: both at 100, 1,000 and 3,000 objects;
  4. failure detection: a Deployment's ProgressDeadlineExceeded as a watch sees it → ship
     reporting the failed gate; and → the previous release healthy again;
  5. promotion: dev → uat → prod canary → prod with a short bake, ship's time vs waiting;
  6. ship's peak memory (max RSS, kustomize included) in the 3,000-object sync;
  7. many apps: 20 apps × 3 environments, one `ship promote uat prod app01 … app20` (one
     unit: one commit, one sync, one gate) against 20 `ship promote uat prod APP`;
  8. start-up: `ship version` and `ship --help` beside `python -c pass` and `kubectl version
     --client` (bench/startup.py);
and profiles a 1,000-object sync. Writes bench/results.json and bench/scaling.png.

`bench/run.py --case apps20` (repeatable; sync, profile, promotion, apps20) runs only some
cases and updates their figures in bench/results.json, keeping the others.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.apps20 import many_apps  # noqa: E402
from bench.breakdown import breakdown, startup_seconds  # noqa: E402
from bench.common import RUN, SHIP, namespaces, say, timed  # noqa: E402
from bench.promotion import failure_and_promotion  # noqa: E402
from bench.report import chart, machine, table, versions  # noqa: E402
from bench.ssa import bare_apply  # noqa: E402
from bench.startup import startup  # noqa: E402

# Pinned by digest, as ship requires of every image it applies; 0 replicas, so never pulled.
BENCH_IMAGE = "127.0.0.1:15000/bench:1@sha256:" + "0" * 64
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "100,1000,3000").split(",")]


# ── generated environments ───────────────────────────────────────────────────────────────────


def generate(n: int) -> list[dict]:
    """n objects: 40% ConfigMaps, 30% headless Services, 30% Deployments (0 replicas)."""
    cms, svcs = int(n * 0.4), int(n * 0.3)
    deps = n - cms - svcs
    out: list[dict] = []
    for i in range(cms):
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cm-{i}"},
                "data": {"index": str(i), "payload": "x" * 200},
            }
        )
    for i in range(svcs):
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"svc-{i}"},
                "spec": {
                    "clusterIP": "None",
                    "selector": {"app": f"app-{i}"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                },
            }
        )
    for i in range(deps):
        labels = {"app": f"app-{i}"}
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": f"app-{i}"},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {
                                    "name": "app",
                                    "image": BENCH_IMAGE,
                                    "ports": [{"containerPort": 8080}],
                                    "envFrom": [
                                        {"configMapRef": {"name": f"cm-{i % max(cms, 1)}"}}
                                    ],
                                }
                            ]
                        },
                    },
                },
            }
        )
    return out


def bench_repo(tmp: Path, n: int, role: str = "ship") -> tuple[Path, str, Path]:
    """A git repo whose environment `bench` renders the n objects; (work, namespace, rendered
    file)."""
    import yaml

    work = tmp / f"repo-{role}-{n}"
    ns = f"bench-{role}-{n}-{RUN}"
    overlay = work / "environments/bench"
    overlay.mkdir(parents=True)
    shutil.copytree(ROOT / "apps", work / "apps", ignore=shutil.ignore_patterns("bin"))
    (work / "ship.yaml").write_text(
        "registry: 127.0.0.1:15000\napps:\n  hellok8s: {path: apps/hellok8s, image: hellok8s}\n"
        f"environments:\n  bench: {{namespace: {ns}}}\n"
    )
    objects = generate(n)
    (overlay / "objects.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: "
        f"Kustomization\nnamespace: {ns}\nresources: [objects.yaml]\n"
    )
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=work, check=True)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"],
        cwd=work,
        check=True,
    )
    rendered = tmp / f"rendered-{n}.yaml"
    rendered.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    namespaces.append(ns)
    return work, ns, rendered


def timed_with_rss(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    """Like timed, but also the peak RSS (KiB) of the command and the children it waited for."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(
                f"bench: {' '.join(cmd[:6])} failed (exit {proc.returncode}):\n{err.read()[-2000:]}"
            )
        return elapsed, usage.ru_maxrss, out.read()


def ship_sync(work: Path) -> tuple[float, int, dict]:
    elapsed, rss, out = timed_with_rss(
        [*SHIP, "sync", "bench", "--no-gate", "--output", "json"], work
    )
    return elapsed, rss, json.loads(out)


def kubectl_apply(rendered: Path, ns: str) -> float:
    return timed(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-n", ns, "-f", str(rendered)]
    )


def sync_run(tmp: Path, n: int) -> dict:
    work, ns, rendered = bench_repo(tmp, n)
    kns = f"bench-kubectl-{n}-{RUN}"
    namespaces.append(kns)
    subprocess.run(["kubectl", "create", "namespace", kns], check=True, capture_output=True)
    say(f"{n} objects: ship sync (full) into {ns}")
    ship_full, rss, full = ship_sync(work)
    say(f"{n} objects: kubectl apply --server-side (full) into {kns}")
    kubectl_full = kubectl_apply(rendered, kns)
    bns = f"bench-bare-{n}-{RUN}"
    namespaces.append(bns)
    say(
        f"{n} objects: bare parallel server-side apply "
        f"(32 workers, no dry-run, no discovery) into {bns}"
    )
    bare = bare_apply(generate(n), bns)
    say(f"{n} objects: no-op runs")
    ship_noop, _, noop = ship_sync(work)
    kubectl_noop = kubectl_apply(rendered, kns)
    noop_phases = noop_breakdown(work) if n == min(SIZES) else None
    return {
        "breakdown_noop": noop_phases,
        "objects": n,
        "ship_full_s": round(ship_full, 3),
        "kubectl_full_s": round(kubectl_full, 3),
        "ship_noop_s": round(ship_noop, 3),
        "kubectl_noop_s": round(kubectl_noop, 3),
        "ratio_full": round(ship_full / kubectl_full, 3),
        "ratio_noop": round(ship_noop / kubectl_full, 3),
        "bare_ssa_s": round(bare, 3),
        "ratio_to_bare": round(ship_full / bare, 2),
        "ship_full_requests": full.get("requests"),
        "ship_noop_requests": noop.get("requests"),
        "ship_peak_rss_mib": round(rss / 1024, 1),
    }


def noop_breakdown(work: Path) -> dict:
    """A no-op sync of the bench environment, in-process, by phase (bench/breakdown.py)."""
    from pipeline.commands.context import open_context
    from pipeline.kube.apply import SyncOptions
    from pipeline.rollout.sync import sync_environment

    say("no-op sync: where its time goes")
    with open_context(root=work) as ctx:
        phases = breakdown(lambda: sync_environment(ctx, ctx.config.env("bench"), SyncOptions()))
    return {"start-up": round(startup_seconds(), 3), **phases}


def profile_sync(tmp: Path, n: int = 1000) -> list[dict]:
    """Where ship spends its time in a full sync of n objects (in-process, cProfile)."""
    from pipeline.commands.context import open_context
    from pipeline.kube.apply import SyncOptions
    from pipeline.rollout.sync import sync_environment

    work, ns, _ = bench_repo(tmp, n, "profile")
    with open_context(root=work) as ctx:
        profiler = cProfile.Profile()
        profiler.enable()
        sync_environment(ctx, ctx.config.env("bench"), SyncOptions())
        profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _) in sorted(
        stats.stats.items(), key=lambda kv: -kv[1][3]
    )[:40]:
        where = f"{Path(file).name}:{line}:{func}" if file != "~" else func
        rows.append(
            {"function": where, "calls": nc, "cumulative_s": round(ct, 3), "own_s": round(tt, 3)}
        )
    return rows


CASES = ("startup", "sync", "profile", "promotion", "apps20")


def main() -> None:
    parser = argparse.ArgumentParser(
        description="ship against kubectl apply --server-side, side by side"
    )
    parser.add_argument(
        "--case",
        action="append",
        choices=CASES,
        help="run only this case (repeatable): sync (the sizes of $BENCH_SIZES), profile, "
        "promotion (failure detection and promotion), apps20; the figures of the cases not run "
        "are kept from bench/results.json",
    )
    cases = set(parser.parse_args().case or CASES)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="ship-bench-"))
    out = ROOT / "bench"
    try:
        full = cases == set(CASES)
        results: dict = {"machine": machine(), "versions": versions()}
        if not full and (out / "results.json").exists():
            # a partial run: the figures of the other cases, and the machine and versions of the
            # last full run, stay; the cases run now say when, where and with what under "partial"
            results = json.loads((out / "results.json").read_text())
        runs = {
            "startup": lambda: {"startup": startup()},
            "sync": lambda: {"sync": [sync_run(tmp, n) for n in SIZES]},
            "profile": lambda: {"profile_1000": profile_sync(tmp)},
            "promotion": lambda: dict(
                zip(("failure_detection", "promotion"), failure_and_promotion(tmp))
            ),
            "apps20": lambda: {"many_apps": many_apps(tmp)},
        }
        for case in CASES:
            if case not in cases:
                continue
            if case == "profile":
                say("profiling a 1000-object full sync")
            case_started = time.perf_counter()
            results.update(runs[case]())
            if not full:
                results.setdefault("partial", {})[case] = {
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "duration_s": round(time.perf_counter() - case_started, 1),
                    "machine": machine(),
                    "versions": versions(),
                }
        elapsed = round(time.perf_counter() - started, 1)
        if full:
            results["duration_s"] = elapsed
            results.pop("partial", None)
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        if "sync" in cases:
            chart(results["sync"], out / "scaling.png")
        print(table(results))
        if "profile" in cases:
            print("\nwhere ship spends its time in a 1000-object full sync (cumulative):")
            for row in results["profile_1000"][:25]:
                print(
                    f"  {row['cumulative_s']:7.3f}s  {row['own_s']:7.3f}s "
                    f"own  {row['calls']:>7} calls  {row['function']}"
                )
        wrote = (
            "bench/results.json and bench/scaling.png" if "sync" in cases else "bench/results.json"
        )
        print(f"\nwrote {wrote} in {elapsed:.0f}s ({', '.join(c for c in CASES if c in cases)})")
    finally:
        for ns in namespaces:
            subprocess.run(
                ["kubectl", "delete", "namespace", ns, "--wait=false"], capture_output=True
            )
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
