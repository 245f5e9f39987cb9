"""What the tests of a new team share (tests/test_new_team.py, and the README's quickstart in
tests/test_readme.py): ship installed from its wheel as a user has it, a fresh repository holding
a small Go app, ship.yaml made quick for the lab, the pipeline run under nektos/act with the
lab's registry, and the clean-up of the team's namespaces.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.act import Act, export_source, runner_env
from tests.conftest import ROOT


def install_user_ship(tmp: Path) -> Path:
    """`ship` as a user has it: the wheel built from this repository, installed in a venv of its own
    (its dependencies are the test venv's, so nothing is downloaded). The path of its `ship`."""
    source = export_source(tmp / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
                    str(source)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("ship-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = subprocess.run([venv / "bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([venv / "bin/python", "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    where = subprocess.run([venv / "bin/python", "-c", "import pipeline; print(pipeline.__file__)"], capture_output=True,
                           text=True, check=True, cwd=tmp).stdout
    assert where.startswith(site), where  # the wheel's copy, not the source tree
    return venv / "bin/ship"


def add_go_app(work: Path, app: str) -> None:
    """A small Go app (hellok8s' source, without its Dockerfile, base or config) in apps/APP."""
    (work / "apps" / app).mkdir(parents=True)
    for name in ("main.go", "go.mod"):
        shutil.copy(ROOT / "apps/hellok8s" / name, work / "apps" / app / name)


def quick_for_the_lab(ship_yaml: Path) -> None:
    """Short bakes, for the test's sake; and no users' traffic to judge the canary on: KWOK pods get
    none, so `traffic:` would leave each step undecided (the deployer's access to Prometheus is
    proven by tests/security/test_rbac_prometheus_live.py)."""
    text = ship_yaml.read_text().replace("bake: 30s", "bake: 1s").replace("bake: 1m", "bake: 1s").replace("bake: 5m", "bake: 2s")
    text = re.sub(r"\n      traffic:.*?\n(?=      # http:)", "\n", text, flags=re.S)
    assert "traffic:" not in text and "bake: 5m" not in text
    ship_yaml.write_text(text)


def pipeline_act(work: Path, tmp: Path, local_parts: dict[str, str], secrets: dict[str, str],
                 variables: dict[str, str]) -> Act:
    """act for the team's repository: ship's action from this repository as GitHub serves it, the
    secrets and variables given (GITHUB_TOKEN added, as GitHub does), the lab's build engine."""
    return Act(work, tmp, export_source(tmp / "ship-action"), secrets={**secrets, "GITHUB_TOKEN": "a-token"},
               variables=variables, env=runner_env(DOCKER_HOST=local_parts.get("DOCKER_HOST", "")))


def delete_namespaces(namespaces, admin: str) -> None:
    for ns in namespaces:
        subprocess.run(["kubectl", "delete", "namespace", ns, "--wait=false"], env={**os.environ, "KUBECONFIG": admin},
                       capture_output=True)
