"""The many-apps case of `make bench`: 20 apps × 3 environments, one promotion of all 20
against 20 promotions of one, and where a lone promotion's time goes (bench/breakdown.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from bench.breakdown import breakdown, startup_seconds
from bench.common import ROOT, RUN, git, publish, say, ship_json

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
        cfg["apps"][app] = {
            "path": f"apps/{app}",
            "image": app,
            "base": template.get("base", "base"),
            "config": template.get("config", "config"),
            "secrets": template.get("secrets", []),
        }
        for key in template.get("secrets", []):
            os.environ[f"SHIP_SECRET_{app.upper()}_{key}"] = "bench"
    envs = {}
    for name, env in cfg["environments"].items():
        envs[name] = env["namespace"] = f"bench-a20-{name}-{RUN}"
        env["gates"] = {**env.get("gates", {}), "timeout": "300s", "bake": "0s"}
        env.pop("canary", None)  # the plain promotion is measured, not a canary's bake
    return publish(work, yaml.safe_dump(cfg, sort_keys=False), envs, "bench: 20 apps")


def new_configs(work: Path, message: str) -> None:
    """A config change in every environment of every app (so each promotion rolls each
    Deployment)."""
    for app in APPS20:
        for f in sorted((work / "apps" / app / "config").glob("*.env")):
            lines = [line for line in f.read_text().splitlines() if not line.startswith("MESSAGE=")]
            f.write_text("\n".join([*lines, f"MESSAGE={message}", ""]))
    git(work, "commit", "-qam", message)
    git(work, "push", "-q", "origin", "HEAD:main")


def to_uat(work: Path, image: str) -> None:
    """Every app through dev and into uat, in one release and one promotion."""
    ship_json(
        work,
        "release",
        "dev",
        *APPS20,
        *[a for app in APPS20 for a in ("--image", f"{app}={image}")],
    )
    ship_json(work, "promote", "dev", "uat", *APPS20)


def gate_seconds(data: dict, apps: int) -> float:
    """The longest gate in a promotion's JSON (a unit's apps are gated at once), after checking
    that each of the `apps` was promoted (a single app's JSON is its result alone)."""
    results = data.get("results", [data])
    promoted = [r for r in results if r.get("outcome") == "promoted" and r.get("changed")]
    if len(promoted) != apps:
        raise SystemExit(
            f"bench: expected {apps} promoted apps, got "
            f"{len(promoted)}:\n{json.dumps(data)[-2000:]}"
        )
    return max(
        (r["gate"]["elapsed"] for r in results if isinstance(r.get("gate"), dict)), default=0.0
    )


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
    return {
        "breakdown_lone_promote": {"start-up": round(startup_seconds(), 3), **lone},
        "apps": len(APPS20),
        "environments": len(envs),
        "edge": "uat → prod",
        "replicas": 1,
        "canary": False,
        "bake_s": 0,
        "unit_command": "ship promote uat prod app01 … app20",
        "separate_command": "ship promote uat prod APP (× 20, one after another)",
        "unit_s": round(unit_s, 3),
        "separate_s": round(separate_s, 3),
        "speedup": round(separate_s / unit_s, 2),
        "unit_gate_s": round(gate_seconds(unit, len(APPS20)), 3),
        "separate_gates_s": round(gates, 3),
        "separate_each_s": {
            "min": round(min(each), 3),
            "median": round(sorted(each)[len(each) // 2], 3),
            "max": round(max(each), 3),
        },
    }
