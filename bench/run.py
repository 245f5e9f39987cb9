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
import platform
import pstats
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.breakdown import breakdown, startup_seconds  # noqa: E402
from bench.ssa import bare_apply  # noqa: E402
from bench.startup import line as startup_line, startup  # noqa: E402
SHIP = [sys.executable, "-m", "pipeline"]
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "100,1000,3000").split(",")]
RUN = uuid.uuid4().hex[:5]
namespaces: list[str] = []


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ── generated environments ───────────────────────────────────────────────────────────────────

def generate(n: int) -> list[dict]:
    """n objects: 40% ConfigMaps, 30% headless Services, 30% Deployments (0 replicas)."""
    cms, svcs = int(n * 0.4), int(n * 0.3)
    deps = n - cms - svcs
    out: list[dict] = []
    for i in range(cms):
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"},
                    "data": {"index": str(i), "payload": "x" * 200}})
    for i in range(svcs):
        out.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}"},
                    "spec": {"clusterIP": "None", "selector": {"app": f"app-{i}"},
                             "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    for i in range(deps):
        labels = {"app": f"app-{i}"}
        out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"app-{i}"},
                    "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                             "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                                 {"name": "app", "image": "127.0.0.1:15000/bench:1", "ports": [{"containerPort": 8080}],
                                  "envFrom": [{"configMapRef": {"name": f"cm-{i % max(cms, 1)}"}}]}]}}}})
    return out


def bench_repo(tmp: Path, n: int, role: str = "ship") -> tuple[Path, str, Path]:
    """A git repo whose environment `bench` renders the n objects; (work, namespace, rendered file)."""
    import yaml

    work = tmp / f"repo-{role}-{n}"
    ns = f"bench-{role}-{n}-{RUN}"
    overlay = work / "environments/bench"
    overlay.mkdir(parents=True)
    shutil.copytree(ROOT / "apps", work / "apps", ignore=shutil.ignore_patterns("bin"))
    (work / "ship.yaml").write_text(
        "registry: 127.0.0.1:15000\napps:\n  hellok8s: {path: apps/hellok8s, image: hellok8s}\n"
        f"environments:\n  bench: {{namespace: {ns}}}\n")
    objects = generate(n)
    (overlay / "objects.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
    (overlay / "kustomization.yaml").write_text(
        f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {ns}\nresources: [objects.yaml]\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=work, check=True)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"], cwd=work, check=True)
    rendered = tmp / f"rendered-{n}.yaml"
    rendered.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    namespaces.append(ns)
    return work, ns, rendered


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd[:6])} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


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
            raise SystemExit(f"bench: {' '.join(cmd[:6])} failed (exit {proc.returncode}):\n{err.read()[-2000:]}")
        return elapsed, usage.ru_maxrss, out.read()


def ship_sync(work: Path) -> tuple[float, int, dict]:
    elapsed, rss, out = timed_with_rss([*SHIP, "sync", "bench", "--no-gate", "--output", "json"], work)
    return elapsed, rss, json.loads(out)


def kubectl_apply(rendered: Path, ns: str) -> float:
    return timed(["kubectl", "apply", "--server-side", "--force-conflicts", "-n", ns, "-f", str(rendered)])


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
    say(f"{n} objects: bare parallel server-side apply (32 workers, no dry-run, no discovery) into {bns}")
    bare = bare_apply(generate(n), bns)
    say(f"{n} objects: no-op runs")
    ship_noop, _, noop = ship_sync(work)
    kubectl_noop = kubectl_apply(rendered, kns)
    noop_phases = noop_breakdown(work) if n == min(SIZES) else None
    return {"breakdown_noop": noop_phases,
            "objects": n, "ship_full_s": round(ship_full, 3), "kubectl_full_s": round(kubectl_full, 3),
            "ship_noop_s": round(ship_noop, 3), "kubectl_noop_s": round(kubectl_noop, 3),
            "ratio_full": round(ship_full / kubectl_full, 3), "ratio_noop": round(ship_noop / kubectl_full, 3),
            "bare_ssa_s": round(bare, 3), "ratio_to_bare": round(ship_full / bare, 2),
            "ship_full_requests": full.get("requests"), "ship_noop_requests": noop.get("requests"),
            "ship_peak_rss_mib": round(rss / 1024, 1)}


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
    for (file, line, func), (_cc, nc, tt, ct, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][3])[:40]:
        where = f"{Path(file).name}:{line}:{func}" if file != "~" else func
        rows.append({"function": where, "calls": nc, "cumulative_s": round(ct, 3), "own_s": round(tt, 3)})
    return rows


# ── failure detection and promotion ──────────────────────────────────────────────────────────

def project_copy(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A throw-away copy of this repository with a bare remote, fast deadlines and bakes."""
    work = tmp / "project"
    bare = tmp / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    for name in ("ship.yaml", "apps", ".gitignore"):
        src = ROOT / name
        (shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("bin")) if src.is_dir()
         else shutil.copy(src, work / name))
    text = (work / "ship.yaml").read_text()
    envs = {}
    for env in ("dev", "uat", "prod"):
        envs[env] = f"bench-{env}-{RUN}"
        text = text.replace(f"namespace: hellok8s-{env}\n", f"namespace: {envs[env]}\n")
        (work / "environments" / env).mkdir(parents=True)
        (work / "environments" / env / ".gitkeep").write_text("")
    text = text.replace("bake: 30s", "bake: 3s").replace("bake: 10s", "bake: 0s").replace("bake: 5s", "bake: 0s")
    (work / "ship.yaml").write_text(text)
    dep = work / "apps/hellok8s/base/deployment.yaml"
    dep.write_text(dep.read_text().replace("progressDeadlineSeconds: 60", "progressDeadlineSeconds: 5"))
    git(work, "add", "-A")
    git(work, "commit", "-qm", "bench project")
    git(work, "push", "-q", "origin", "HEAD:main")
    git(work, "branch", "-q", "--set-upstream-to=origin/main", "main")
    namespaces.extend(envs.values())
    return work, envs


def git(work: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@ship.dev", *args], cwd=work, check=True,
                   capture_output=True)


def ship_json(work: Path, *args: str) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run([*SHIP, *args, "--output", "json"], cwd=work, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench: ship {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start, json.loads(proc.stdout)


def new_config(work: Path, message: str) -> None:
    (work / "apps/hellok8s/config/dev.env").write_text(f"MESSAGE={message}\nDB_URL=postgres://db\n")
    git(work, "commit", "-qam", message)
    git(work, "push", "-q", "origin", "HEAD:main")


def never_ready_copy(image: str) -> str:
    import docker

    from pipeline.image.registry import ImageRef, Registry

    ref = ImageRef.parse(image)
    client = docker.from_env()
    repo = ref.repository + "-never-ready"
    client.images.get(f"{ref.repository}:{ref.tag}").tag(repo, ref.tag)
    for _ in client.images.push(repo, tag=ref.tag, stream=True, decode=True):
        pass
    return str(Registry(ref.registry).resolve(repo, ref.tag))


def watch_deadline(ns: str, seen: dict, stop: threading.Event) -> None:
    """Record when a watch first sees ProgressDeadlineExceeded on the Deployment."""
    from pipeline.kube.client import Cluster

    cluster = Cluster()
    try:
        while not stop.is_set() and "deadline" not in seen:
            for _etype, obj in cluster.watch("apps/v1", "Deployment", ns, timeout=2):
                for c in obj.get("status", {}).get("conditions") or []:
                    if c.get("reason") == "ProgressDeadlineExceeded" and "deadline" not in seen:
                        seen["deadline"] = time.perf_counter()
                if "deadline" in seen or stop.is_set():
                    break
    finally:
        cluster.close()


def failure_and_promotion(tmp: Path) -> tuple[dict, dict]:
    os.environ["SHIP_SECRET_HELLOK8S_DB_PASSWORD"] = "bench"
    work, envs = project_copy(tmp)
    say("failure detection: building hellok8s and releasing a healthy r1 to dev, uat and prod")
    _, built = ship_json(work, "build")
    image = built["image"]
    ship_json(work, "release", "dev", "--image", image)
    ship_json(work, "promote", "dev", "uat")
    ship_json(work, "promote", "uat", "prod")
    broken = never_ready_copy(image)
    new_config(work, "a broken build")
    say("failure detection: releasing a never-ready r2 to dev and timing ship's report")
    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=watch_deadline, args=(envs["dev"], seen, stop), daemon=True)
    watcher.start()
    lines: queue.Queue = queue.Queue()
    proc = subprocess.Popen([*SHIP, "release", "dev", "--image", broken], cwd=work, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    for line in proc.stderr:
        now = time.perf_counter()
        if "gate failed:" in line and "failed" not in seen:
            seen["failed"] = now
        if "rolling back" in line:
            seen["rolling"] = now
        if "gate passed" in line and "rolling" in seen and "healthy" not in seen:
            seen["healthy"] = now
        lines.put(line)
    proc.wait()
    stop.set()
    if not {"deadline", "failed", "healthy"} <= set(seen):
        raise SystemExit(f"bench: failure detection incomplete ({sorted(seen)}):\n{''.join(lines.queue)[-2000:]}")
    failure = {"deadline_to_reported_s": round(seen["failed"] - seen["deadline"], 3),
               "reported_to_previous_healthy_s": round(seen["healthy"] - seen["failed"], 3),
               "target_deadline_to_reported_s": 1.0}
    say("promotion: r3 through dev → uat → prod canary (10%, 3s bake) → prod")
    new_config(work, "a good third release")
    stages = []
    start = time.perf_counter()
    for args in (("release", "dev", "--image", image), ("promote", "dev", "uat"), ("promote", "uat", "prod", "--canary", "10")):
        elapsed, data = ship_json(work, *args)
        gates = [s["gate"]["elapsed"] for s in data.get("steps", [])] + ([data["gate"]["elapsed"]] if data.get("gate") else [])
        stages.append({"command": "ship " + " ".join(args), "wall_s": round(elapsed, 3),
                       "waiting_on_cluster_s": round(sum(gates), 3)})
    total = time.perf_counter() - start
    waiting = sum(s["waiting_on_cluster_s"] for s in stages)
    promotion = {"wall_s": round(total, 3), "waiting_on_cluster_s": round(waiting, 3),
                 "ship_s": round(total - waiting, 3), "ship_share": round((total - waiting) / total, 3),
                 "stages": stages}
    return failure, promotion


# ── many apps: one promotion of 20 apps against 20 promotions ───────────────────────────────

APPS20 = [f"app{i:02d}" for i in range(1, 21)]


def apps20_copy(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A throw-away copy of this project with a bare remote and 20 apps app01…app20, each a copy
    of hellok8s's base and config with `hellok8s` replaced by its name (1 replica); no canary
    policy, no bakes, generous gate timeouts; the environments in namespaces of this run."""
    import yaml

    work, bare = tmp / "apps20", tmp / "apps20-remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    shutil.copytree(ROOT / "apps", work / "apps", ignore=shutil.ignore_patterns("bin"))
    shutil.copy(ROOT / ".gitignore", work / ".gitignore")
    source = work / "apps/hellok8s"
    for app in APPS20:
        for part in ("base", "config"):
            (work / "apps" / app / part).mkdir(parents=True)
            for f in sorted((source / part).iterdir()):
                text = f.read_text().replace("hellok8s", app)
                if f.name == "deployment.yaml":
                    text = text.replace("replicas: 3\n", "replicas: 1\n")
                (work / "apps" / app / part / f.name).write_text(text)
    cfg = yaml.safe_load((ROOT / "ship.yaml").read_text())
    template = cfg["apps"]["hellok8s"]
    for app in APPS20:
        cfg["apps"][app] = {"path": f"apps/{app}", "image": app, "base": template.get("base", "base"),
                            "config": template.get("config", "config"), "secrets": template.get("secrets", [])}
        for key in template.get("secrets", []):
            os.environ[f"SHIP_SECRET_{app.upper()}_{key}"] = "bench"
    envs = {}
    for name, env in cfg["environments"].items():
        envs[name] = env["namespace"] = f"bench-a20-{name}-{RUN}"
        env["gates"] = {**env.get("gates", {}), "timeout": "300s", "bake": "0s"}
        env.pop("canary", None)  # the plain promotion is measured, not a canary's bake
        (work / "environments" / name).mkdir(parents=True)
        (work / "environments" / name / ".gitkeep").write_text("")
    (work / "ship.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    git(work, "add", "-A")
    git(work, "commit", "-qm", "bench: 20 apps")
    git(work, "push", "-q", "origin", "HEAD:main")
    git(work, "branch", "-q", "--set-upstream-to=origin/main", "main")
    namespaces.extend(envs.values())
    return work, envs


def new_configs(work: Path, message: str) -> None:
    """A config change in every environment of every app (so each promotion rolls each Deployment)."""
    for app in APPS20:
        for f in sorted((work / "apps" / app / "config").glob("*.env")):
            lines = [line for line in f.read_text().splitlines() if not line.startswith("MESSAGE=")]
            f.write_text("\n".join([*lines, f"MESSAGE={message}", ""]))
    git(work, "commit", "-qam", message)
    git(work, "push", "-q", "origin", "HEAD:main")


def to_uat(work: Path, image: str) -> None:
    """Every app through dev and into uat, in one release and one promotion."""
    ship_json(work, "release", "dev", *APPS20, *[a for app in APPS20 for a in ("--image", f"{app}={image}")])
    ship_json(work, "promote", "dev", "uat", *APPS20)


def gate_seconds(data: dict, apps: int) -> float:
    """The longest gate in a promotion's JSON (a unit's apps are gated at once), after checking
    that each of the `apps` was promoted (a single app's JSON is its result alone)."""
    results = data.get("results", [data])
    promoted = [r for r in results if r.get("outcome") == "promoted" and r.get("changed")]
    if len(promoted) != apps:
        raise SystemExit(f"bench: expected {apps} promoted apps, got {len(promoted)}:\n{json.dumps(data)[-2000:]}")
    return max((r["gate"]["elapsed"] for r in results if isinstance(r.get("gate"), dict)), default=0.0)


def many_apps(tmp: Path) -> dict:
    work, envs = apps20_copy(tmp)
    say(f"20 apps: building hellok8s once; every app runs it ({', '.join(envs.values())})")
    _, built = ship_json(work, "build", "hellok8s")
    image = built.get("image") or built["images"]["hellok8s"]
    say("20 apps: r1 of all 20 to dev, uat and prod (not timed)")
    to_uat(work, image)
    ship_json(work, "promote", "uat", "prod", *APPS20)
    say("20 apps: r2 to dev and uat; one `ship promote uat prod app01 … app20` (timed)")
    new_configs(work, "r2: one unit")
    to_uat(work, image)
    unit_s, unit = ship_json(work, "promote", "uat", "prod", *APPS20)
    say("20 apps: r3 to dev and uat; 20 × `ship promote uat prod APP` (timed)")
    new_configs(work, "r3: one by one")
    to_uat(work, image)
    each: list[float] = []
    gates = 0.0
    for app in APPS20:
        elapsed, data = ship_json(work, "promote", "uat", "prod", app)
        each.append(elapsed)
        gates += gate_seconds(data, 1)
    separate_s = sum(each)
    say("20 apps: r4 to dev and uat; one `ship promote uat prod app01`, in-process, by phase")
    new_configs(work, "r4: a lone promote")
    to_uat(work, image)
    from pipeline.commands import deploy
    from pipeline.commands.context import open_context

    with open_context(root=work) as ctx:
        lone = breakdown(lambda: deploy.promote(ctx, "uat", "prod", ["app01"]))
    return {"breakdown_lone_promote": {"start-up": round(startup_seconds(), 3), **lone},
            "apps": len(APPS20), "environments": len(envs), "edge": "uat → prod", "replicas": 1,
            "canary": False, "bake_s": 0,
            "unit_command": "ship promote uat prod app01 … app20",
            "separate_command": "ship promote uat prod APP (× 20, one after another)",
            "unit_s": round(unit_s, 3), "separate_s": round(separate_s, 3),
            "speedup": round(separate_s / unit_s, 2),
            "unit_gate_s": round(gate_seconds(unit, len(APPS20)), 3), "separate_gates_s": round(gates, 3),
            "separate_each_s": {"min": round(min(each), 3), "median": round(sorted(each)[len(each) // 2], 3),
                                "max": round(max(each), 3)}}


# ── output ───────────────────────────────────────────────────────────────────────────────────

def versions() -> dict:
    sys.path.insert(0, str(ROOT))
    env = {}
    for line in (ROOT / "hack/versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value.split(":-", 1)[-1].split("}", 1)[0]
    kubectl = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True)
    from pipeline import __version__

    return {"ship": __version__, **env,
            "kubectl": json.loads(kubectl.stdout)["clientVersion"]["gitVersion"] if kubectl.returncode == 0 else None}


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    return {"cpus": os.cpu_count(), "memory_gib": round(mem / 1024 / 1024, 1), "platform": platform.platform(),
            "python": platform.python_version()}


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["objects"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.plot(n, [r["kubectl_full_s"] for r in rows], "o-", label="kubectl apply --server-side (full)", color="#6b7280")
    ax.plot(n, [r["ship_full_s"] for r in rows], "o-", label="ship sync (full)", color="#2563eb")
    ax.plot(n, [r["kubectl_noop_s"] for r in rows], "s--", label="kubectl apply (no change)", color="#9ca3af")
    ax.plot(n, [r["ship_noop_s"] for r in rows], "s--", label="ship sync (no change)", color="#16a34a")
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
        out += ["", "| objects | ship full | kubectl full | ratio (target ≤ 0.4) | bare SSA | ship / bare (target ≤ 2 "
                    "at 1,000) | ship no-op | ratio to kubectl full (target ≤ 0.05) | no-op requests |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["sync"]:
            bare = f"{r['bare_ssa_s']:.2f}s | {r['ratio_to_bare']:.1f}×" if "bare_ssa_s" in r else "- | -"
            out.append(f"| {r['objects']} | {r['ship_full_s']:.2f}s | {r['kubectl_full_s']:.2f}s | {r['ratio_full']:.2f}× "
                       f"| {bare} | {r['ship_noop_s']:.2f}s | {r['ratio_noop']:.3f}× | {r['ship_noop_requests']} |")
    out.append("")
    if results.get("failure_detection"):
        f = results["failure_detection"]
        out.append(f"failure detection: ProgressDeadlineExceeded → ship reports the failed gate: "
                   f"{f['deadline_to_reported_s']:.3f}s (target ≤ 1s); → previous release healthy again: "
                   f"{f['reported_to_previous_healthy_s']:.2f}s")
    if results.get("promotion"):
        p = results["promotion"]
        out.append(f"promotion dev → uat → prod canary → prod: {p['wall_s']:.1f}s wall, {p['waiting_on_cluster_s']:.1f}s "
                   f"waiting on the cluster (gates and bakes), {p['ship_s']:.1f}s ship ({p['ship_share']:.0%})")
    if results.get("many_apps"):
        m = results["many_apps"]
        out.append(f"{m['apps']} apps × {m['environments']} environments, {m['edge']}: 1 promote of {m['apps']} apps: "
                   f"{m['unit_s']:.1f}s; {m['apps']} promotes: {m['separate_s']:.1f}s; {m['speedup']:.1f}× faster "
                   f"(gates: {m['unit_gate_s']:.1f}s once against {m['separate_gates_s']:.1f}s in all)")
    for label, phases in (("no-op sync at 100 objects", (results.get("sync") or [{}])[0].get("breakdown_noop")),
                          ("lone promote uat → prod (20-app environment)",
                           (results.get("many_apps") or {}).get("breakdown_lone_promote"))):
        if phases:
            out.append(f"{label}, by phase: " + ", ".join(f"{k} {v:.2f}s" for k, v in phases.items()))
    if results.get("sync"):
        big = max(results["sync"], key=lambda r: r["objects"])
        out += [f"peak memory of ship in the {big['objects']}-object sync: {big['ship_peak_rss_mib']:.0f} MiB "
                "(max RSS, kustomize included)",
                "scaling: ship's full sync per object: " + ", ".join(
                    f"{r['objects']} objects {r['ship_full_s'] / r['objects'] * 1000:.1f}ms" for r in results["sync"])]
    return "\n".join(out)


CASES = ("startup", "sync", "profile", "promotion", "apps20")


def main() -> None:
    parser = argparse.ArgumentParser(description="ship against kubectl apply --server-side, side by side")
    parser.add_argument("--case", action="append", choices=CASES,
                        help="run only this case (repeatable): sync (the sizes of $BENCH_SIZES), profile, "
                             "promotion (failure detection and promotion), apps20; the figures of the cases not run "
                             "are kept from bench/results.json")
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
        runs = {"startup": lambda: {"startup": startup()},
                "sync": lambda: {"sync": [sync_run(tmp, n) for n in SIZES]},
                "profile": lambda: {"profile_1000": profile_sync(tmp)},
                "promotion": lambda: dict(zip(("failure_detection", "promotion"), failure_and_promotion(tmp))),
                "apps20": lambda: {"many_apps": many_apps(tmp)}}
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
                    "machine": machine(), "versions": versions()}
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
                print(f"  {row['cumulative_s']:7.3f}s  {row['own_s']:7.3f}s own  {row['calls']:>7} calls  {row['function']}")
        wrote = "bench/results.json and bench/scaling.png" if "sync" in cases else "bench/results.json"
        print(f"\nwrote {wrote} in {elapsed:.0f}s ({', '.join(c for c in CASES if c in cases)})")
    finally:
        for ns in namespaces:
            subprocess.run(["kubectl", "delete", "namespace", ns, "--wait=false"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
