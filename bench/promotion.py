"""The failure-detection and promotion cases of `make bench`: how fast a failed rollout is seen
and undone, and a promotion dev → uat → prod canary → prod, ship's time against the cluster's."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

from bench.common import ROOT, RUN, SHIP, git, publish, say, ship_json


def project_copy(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A throw-away copy of this repository with a bare remote, fast deadlines and bakes."""
    work = tmp / "project"
    bare = tmp / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    for name in ("ship.yaml", "apps", ".gitignore"):
        src = ROOT / name
        (
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("bin"))
            if src.is_dir()
            else shutil.copy(src, work / name)
        )
    text = (work / "ship.yaml").read_text()
    envs = {}
    for env in ("dev", "uat", "prod"):
        envs[env] = f"bench-{env}-{RUN}"
        text = text.replace(f"namespace: hellok8s-{env}\n", f"namespace: {envs[env]}\n")
    text = (
        text.replace("bake: 30s", "bake: 3s")
        .replace("bake: 10s", "bake: 0s")
        .replace("bake: 5s", "bake: 0s")
    )
    dep = work / "apps/hellok8s/base/deployment.yaml"
    dep.write_text(
        dep.read_text().replace("progressDeadlineSeconds: 60", "progressDeadlineSeconds: 5")
    )
    return publish(work, text, envs, "bench project")


def new_config(work: Path, message: str) -> None:
    (work / "apps/hellok8s/config/dev.env").write_text(f"MESSAGE={message}\nDB_URL=postgres://db\n")
    git(work, "commit", "-qam", message)
    git(work, "push", "-q", "origin", "HEAD:main")


def never_ready_copy(image: str) -> str:
    import docker

    from pipeline.image.registry import Registry
    from pipeline.imageref import ImageRef

    ref = ImageRef.parse(image)
    client = docker.from_env()
    repo = ref.repository + "-never-ready"
    client.images.get(f"{ref.repository}:{ref.tag}").tag(repo, ref.tag)
    for _ in client.images.push(repo, tag=ref.tag, stream=True, decode=True):
        pass
    return str(Registry(ref.registry).resolve(repo, ref.tag))


def watch_deadline(ns: str, seen: dict, stop: threading.Event) -> None:
    """Record when a watch first sees ProgressDeadlineExceeded on the Deployment."""
    from pipeline.kube.api import WatchQuery
    from pipeline.kube.client import Cluster

    cluster = Cluster()
    try:
        while not stop.is_set() and "deadline" not in seen:
            for _etype, obj in cluster.watch("apps/v1", "Deployment", ns, WatchQuery(timeout=2)):
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
    proc = subprocess.Popen(
        [*SHIP, "release", "dev", "--image", broken],
        cwd=work,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
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
        raise SystemExit(
            f"bench: failure detection incomplete ({sorted(seen)}):\n{''.join(lines.queue)[-2000:]}"
        )
    failure = {
        "deadline_to_reported_s": round(seen["failed"] - seen["deadline"], 3),
        "reported_to_previous_healthy_s": round(seen["healthy"] - seen["failed"], 3),
        "target_deadline_to_reported_s": 1.0,
    }
    say("promotion: r3 through dev → uat → prod canary (10%, 3s bake) → prod")
    new_config(work, "a good third release")
    stages = []
    start = time.perf_counter()
    for args in (
        ("release", "dev", "--image", image),
        ("promote", "dev", "uat"),
        ("promote", "uat", "prod", "--canary", "10"),
    ):
        elapsed, data = ship_json(work, *args)
        gates = [s["gate"]["elapsed"] for s in data.get("steps", [])] + (
            [data["gate"]["elapsed"]] if data.get("gate") else []
        )
        stages.append(
            {
                "command": "ship " + " ".join(args),
                "wall_s": round(elapsed, 3),
                "waiting_on_cluster_s": round(sum(gates), 3),
            }
        )
    total = time.perf_counter() - start
    waiting = sum(s["waiting_on_cluster_s"] for s in stages)
    promotion = {
        "wall_s": round(total, 3),
        "waiting_on_cluster_s": round(waiting, 3),
        "ship_s": round(total - waiting, 3),
        "ship_share": round((total - waiting) / total, 3),
        "stages": stages,
    }
    return failure, promotion
