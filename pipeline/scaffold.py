"""`ship init APP`: scaffold ship into an existing repository, for the user's own app.

Writes ship.yaml, `environments/{dev,uat,prod}/`, a kustomize base and per-environment config
for the app when it has none, the deployer RBAC for each environment (`deploy/rbac/ENV.yaml`,
applied once by a platform team), and the GitHub Actions workflows (pipeline.yml, rollback.yml,
and preview.yml for pull requests) with their setup action. Refuses to overwrite anything
without --force, checking every file before writing any, so a refused init changes nothing.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pipeline import names
from pipeline.errors import ConfigError
from pipeline.gitops import yamlsafe
from pipeline.kube import rbac

ENVIRONMENTS = ("dev", "uat", "prod")


def template(name: str) -> str:
    return resources.files("pipeline").joinpath("templates", name).read_text()


def secrets_env(app: str, secrets: tuple[str, ...]) -> str:
    """Workflow-level env lines passing each app secret to ship as SHIP_SECRET_<APP>_<KEY>."""
    lines = [f"  {names.secret_variable(app, k)}: ${{{{ secrets.{names.secret_variable(app, k)} }}}}" for k in secrets]
    return "\n".join(lines)


def workflow(name: str, app_secrets: dict[str, tuple[str, ...]]) -> str:
    """pipeline.yml or rollback.yml, with the apps' secrets wired in."""
    lines = "\n".join(filter(None, (secrets_env(a, s) for a, s in sorted(app_secrets.items()))))
    text = template(name)
    return text.replace("__SECRETS_ENV__\n", lines + "\n" if lines else "")


def workflow_files(app_secrets: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {
        ".github/workflows/pipeline.yml": workflow("pipeline.yml", app_secrets),
        ".github/workflows/rollback.yml": workflow("rollback.yml", app_secrets),
        ".github/workflows/preview.yml": template("preview.yml"),
        ".github/actions/setup-ship/action.yml": template("setup-ship.yml"),
    }


def planned_files(root: Path, app: str, path: str, port: int, registry: str) -> dict[str, str]:
    """Every file `ship init` writes, by path relative to the repository root."""
    if not names.valid_name(app):
        raise ConfigError(f"app name {app!r}: expected {names.NAME_RULE}")
    if not names.inside_repository(path):
        raise ConfigError(f"--path {path!r}: expected {names.PATH_RULE}; nothing written")

    def fill(text: str) -> str:
        return (text.replace("__APP__", app).replace("__PATH__", path).replace("__PORT__", str(port))
                .replace("__REGISTRY__", registry))

    files = {"ship.yaml": fill(template("ship.yaml"))}
    for env in ENVIRONMENTS:
        files[f"environments/{env}/.gitkeep"] = ""
        objects = rbac.deployer_objects(f"{app}-{env}")
        files[f"deploy/rbac/{env}.yaml"] = (f"# The deployer identity for {env}: apply once with cluster-admin rights.\n"
                                            + yamlsafe.dumps_all(objects))
    if not (root / path / "base").exists():
        for name in ("kustomization.yaml", "deployment.yaml", "service.yaml"):
            files[f"{path}/base/{name}"] = fill(template(name))
    for env in ENVIRONMENTS:
        if not (root / path / "config" / f"{env}.env").exists():
            files[f"{path}/config/{env}.env"] = (f"# {app}'s config for {env}: KEY=value lines. Never secrets: those come "
                                                 f"from {names.secret_variable(app, '<KEY>')} at sync time.\nENVIRONMENT={env}\n")
    files.update(workflow_files({app: ()}))
    return files


def init(root: Path, app: str, path: str, port: int, registry: str, force: bool = False) -> list[str]:
    files = planned_files(root, app, path, port, registry)
    existing = [name for name in files if (root / name).exists() and not name.endswith(".gitkeep")]
    if existing and not force:
        raise ConfigError(f"{existing[0]} already exists" + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else "")
                          + "; nothing written; pass --force to overwrite")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return list(files)
