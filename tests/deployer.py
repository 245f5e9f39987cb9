"""The least-privilege kubeconfig deploying tests use instead of the admin one, made as a platform
team would: `ship rbac ENV | kubectl apply -f -` per environment, then `ship kubeconfig dev`.

act has one set of secrets for a run, where GitHub has one per environment: so dev's deployer
ServiceAccount is also bound to the deployer Role of the other environments' namespaces.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipeline import yamlsafe
from pipeline.kube import rbac


def _run(args: list[str], cwd: Path, admin: str, stdin: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIP_")} | {"KUBECONFIG": admin}
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True)
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc.stdout


def bind_first_deployer(work: Path, admin: str, namespaces: dict[str, str], first: str = "dev") -> None:
    """Bind `first`'s deployer to the deployer Role of the other namespaces too (act's one set of
    secrets); each namespace's `ship rbac` is applied already."""
    for env, namespace in namespaces.items():
        if env != first:
            binding = rbac.deployer_objects(namespace, subject_namespace=namespaces[first])[2]
            _run(["kubectl", "apply", "-f", "-"], work, admin, stdin=yamlsafe.dumps(binding))


def deployer_kubeconfig(ship: list[str], work: Path, admin: str, namespaces: dict[str, str], first: str = "dev") -> str:
    """The kubeconfig of `first`'s deployer, bound in every namespace; `ship` is how to run ship."""
    for env in namespaces:
        _run(["kubectl", "apply", "-f", "-"], work, admin, stdin=_run([*ship, "rbac", env], work, admin))
    bind_first_deployer(work, admin, namespaces, first)
    return _run([*ship, "kubeconfig", first, "--duration", "2h"], work, admin)
