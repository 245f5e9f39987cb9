"""`ship init APP`: scaffold ship into an existing repository, for the user's own app.

In a repository without ship.yaml it writes ship.yaml, `environments/{dev,uat,prod}/`, a
kustomize base and per-environment config for the app when it has none, a `.gitignore` for its
build output, the deployer RBAC for each environment (`deploy/rbac/ENV.yaml`, applied once by a
platform team), and the GitHub Actions workflows (pipeline.yml, rollback.yml, and preview.yml for
pull requests) with their setup action. In a repository that has a ship.yaml with `apps:` it
adds the app: its folder's files (config for every environment ship.yaml names) and its entry
under `apps:`, edited into the text so comments and the other apps stay byte for byte; the
environments, RBAC and workflows are left alone. Refuses to overwrite anything without --force
(and to add an app ship.yaml has), checking every file before writing any, so a refused init
changes nothing. `--chart PATH`: the app's base is that Helm chart, used as it is, and init writes
its values files (values.yaml, values/ENV.yaml) instead of a kustomize base and config.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from pipeline import bootstrap, config, names, paths, yamlsafe
from pipeline.errors import ConfigError
from pipeline.kube import access, rbac
from pipeline.kube.services import proxied_services

ENVIRONMENTS = ("dev", "uat", "prod")
IGNORE = ("**/*.md", "**/docs/**")  # what ship.yaml's `ignore:` starts with
_APPS_LINE = re.compile(r"^apps:[ \t]*(?P<value>[^#\s][^#]*?)?[ \t]*(#.*)?$")


def template(name: str) -> str:
    return resources.files("pipeline").joinpath("templates", name).read_text()


def action_ref() -> str:
    """What a workflow step `uses:` to run ship: its repository (the package's Repository URL) at
    this version of ship, e.g. `ship-dev/ship@v0.1.0`."""
    meta = metadata.metadata("ship")
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL") or [])
    repository = urls.get("Repository", "https://github.com/ship-dev/ship").removeprefix(
        "https://github.com/"
    )
    return f"{repository}@v{meta['Version']}"


def secrets_env(app: str, secrets: tuple[str, ...]) -> str:
    """Job-level env lines passing each app secret to ship as SHIP_SECRET_<APP>_<KEY>."""
    lines = [
        f"      {names.secret_variable(app, k)}: ${{{{ secrets.{names.secret_variable(app, k)} }}}}"
        for k in secrets
    ]
    return "\n".join(lines)


def workflow(
    name: str, app_secrets: dict[str, tuple[str, ...]], ignore: tuple[str, ...] = ()
) -> str:
    """pipeline.yml, rollback.yml or preview.yml, with ship's action and the apps' secrets (an env
    of each deploying job, from its GitHub environment's secrets) wired in."""
    lines = "\n".join(filter(None, (secrets_env(a, s) for a, s in sorted(app_secrets.items()))))
    paths = "\n".join(f'      - "{p}"' for p in ("apps/**", *(f"!{g}" for g in ignore)))
    text = template(name).replace("__ACTION__", action_ref()).replace("__PATHS__", paths)
    return text.replace("__SECRETS_ENV__\n", f"{lines}\n" if lines else "")


def workflow_files(
    app_secrets: dict[str, tuple[str, ...]], ignore: tuple[str, ...] = ()
) -> dict[str, str]:
    return {
        ".github/workflows/pipeline.yml": workflow("pipeline.yml", app_secrets, ignore),
        ".github/workflows/rollback.yml": workflow("rollback.yml", app_secrets),
        ".github/workflows/preview.yml": workflow("preview.yml", {}),
    }


COMMENT_COLUMN = 35  # where the app entry's comments start, as in the template


def _aligned(line: str) -> str:
    """A YAML line `  key: value   # comment` with its comment back at COMMENT_COLUMN once a long
    name or path was filled in."""
    code, sep, comment = line.partition("  # ")
    if not sep or not code.strip():
        return line
    return f"{code.rstrip():<{COMMENT_COLUMN - 1}} # {comment}"


def app_entry(app: str, path: str, build: tuple[str, ...] = (), chart: str | None = None) -> str:
    """APP's entry under ship.yaml's `apps:` (with `build` commands, from `chart`), its comments
    lined up."""
    text = (
        template("app_chart.yaml" if chart else "app.yaml")
        .replace("__APP__", app)
        .replace("__PATH__", path)
    )
    text = text.replace("{path: __CHART__}", chart_entry(chart) if chart else "")
    text = text.replace("build: []", f"build: {json.dumps(list(build))}") if build else text
    return "".join(_aligned(line) + "\n" for line in text.splitlines())


def _filler(
    app: str,
    path: str,
    port: int,
    registry: str,
    build: tuple[str, ...] = (),
    chart: str | None = None,
):
    def fill(text: str) -> str:
        return (
            text.replace("__APP_ENTRY__\n", app_entry(app, path, build, chart))
            .replace("__APP__", app)
            .replace("__MODULE__", app.replace("-", "_"))
            .replace("__PATH__", path)
            .replace("__PORT__", str(port))
            .replace("__REGISTRY__", registry)
            .replace("__IGNORE__", json.dumps(list(IGNORE)))
        )

    return fill


def _build(root: Path, app: str, path: str) -> tuple[str, ...]:
    """The build commands the Dockerfile init writes for APP relies on (none for others)."""
    picked = bootstrap.pick_dockerfile(root / path, app)
    return picked.build if picked else ()


def _check_names(app: str, path: str, root: Path | None = None, chart: str | None = None) -> None:
    if not names.valid_name(app):
        raise ConfigError(f"app name {app!r}: expected {names.NAME_RULE}")
    if not names.inside_repository(path):
        raise ConfigError(f"--path {path!r}: expected {names.PATH_RULE}; nothing written")
    if chart is not None and chart.startswith("oci://"):
        if not _REMOTE_CHART.match(chart):
            raise ConfigError(
                f"--chart {chart!r}: expected oci://HOST/PATH/NAME:VERSION; nothing written"
            )
        return
    if chart is not None and not names.inside_repository(chart):
        raise ConfigError(f"--chart {chart!r}: expected {names.PATH_RULE}; nothing written")
    if chart is not None and root is not None and not (root / chart / "Chart.yaml").is_file():
        raise ConfigError(f"{chart}: no Chart.yaml (--chart names no Helm chart); nothing written")


_REMOTE_CHART = re.compile(
    r"^(oci://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+):([0-9A-Za-z][0-9A-Za-z.+_-]*)$"
)


def chart_entry(chart: str) -> str:
    """ship.yaml's `chart:` for --chart: `{path: P}`, or `{repo: R, version: V}` for oci://R:V."""
    remote = _REMOTE_CHART.match(chart)
    return f"{{repo: {remote[1]}, version: {remote[2]}}}" if remote else f"{{path: {chart}}}"


def chart_values(app: str, environments: list[str]) -> dict[str, str]:
    """The values files of an app from a chart, by path in its folder: commented, empty."""
    files = {
        "values.yaml": f"# {app}'s chart values for every environment, "
        "over the chart's own values.yaml.\n"
        "# The chart is used as it is: these files are its only inputs.\n"
    }
    for env in environments:
        files[f"values/{env}.yaml"] = (
            f"# {app}'s chart values for {env}, over values.yaml (e.g. replicaCount: 2).\n"
        )
    return files


def app_files(
    root: Path, app: str, path: str, environments: list[str], fill, chart: str | None = None
) -> dict[str, str]:
    """The app's own folder: a base when it has none, config per environment (for a chart: its
    values files instead), a .gitignore."""
    files = {}
    if chart is not None:
        files = {
            f"{path}/{rel}": text
            for rel, text in chart_values(app, environments).items()
            if not (root / path / rel).exists()
        }
    elif not (root / path / "base").exists():
        for name in ("kustomization.yaml", "deployment.yaml", "service.yaml"):
            files[f"{path}/base/{name}"] = fill(template(name))
    for env in environments if chart is None else []:
        if not (root / path / "config" / f"{env}.env").exists():
            files[f"{path}/config/{env}.env"] = (
                f"# {app}'s config for {env}: KEY=value lines. Never secrets: those come "
                f"from {names.secret_variable(app, '<KEY>')} at sync time.\nENVIRONMENT={env}\n"
            )
    if not (root / path / ".gitignore").exists():
        files[f"{path}/.gitignore"] = fill(template("gitignore"))
    picked = bootstrap.pick_dockerfile(root / path, app)
    if picked:
        files[f"{path}/Dockerfile"] = fill(template(f"Dockerfile.{picked.kind}"))
    return files


def planned_files(
    root: Path, app: str, path: str, port: int, registry: str, chart: str | None = None
) -> dict[str, str]:
    """Every file `ship init` writes in a repository without ship.yaml, by path relative to the
    root."""
    _check_names(app, path, root, chart)
    fill = _filler(app, path, port, registry, _build(root, app, path), chart)
    files = {"ship.yaml": fill(template("ship.yaml"))}
    written = config.parse(
        yamlsafe.loads(files["ship.yaml"], "ship.yaml"), root, "ship.yaml", environ={}
    )
    for env in ENVIRONMENTS:
        files[f"environments/{env}/.gitkeep"] = ""
        canary = written.env(env).canary
        objects = [
            access.namespace_object(f"{app}-{env}"),
            *rbac.deployer_objects(f"{app}-{env}", environment=env),
            *rbac.admission_objects(f"{app}-{env}", accounts=[app]),
            *rbac.proxy_objects(
                proxied_services(canary.urls() if canary else [], f"{app}-{env}"), f"{app}-{env}"
            ),
        ]
        files[f"deploy/rbac/{env}.yaml"] = (
            f"# The namespace and deployer identity for {env}: "
            "apply once with cluster-admin rights, then\n"
            f"# `ship kubeconfig {env}` mints the KUBECONFIG "
            f"secret of the GitHub environment {env}.\n" + yamlsafe.dumps_all(objects)
        )
    files.update(app_files(root, app, path, list(ENVIRONMENTS), fill, chart))
    files.update(workflow_files({app: ()}, IGNORE))
    return files


def with_app(text: str, entry: str) -> str:
    """ship.yaml's text with `entry` (an app's block, indented 2 and 4) added at the end of `apps:`,
    re-indented like the apps already there; every other line is kept as it is. Pure."""
    lines = text.splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if _APPS_LINE.match(line.rstrip("\n"))]
    if len(found) != 1:
        raise ConfigError(
            "ship.yaml: no top-level `apps:` line to add the app under; add it by hand"
        )
    start = found[0]
    match = _APPS_LINE.match(lines[start].rstrip("\n"))
    value = match.group("value") if match else None
    if value and value.strip() != "{}":
        raise ConfigError("ship.yaml: `apps:` is written inline (flow style); add the app by hand")
    if value:  # `apps: {}`: no apps yet
        lines[start] = re.sub(r"apps:\s*\{\}[ \t]*", "apps:", lines[start], count=1).replace(
            "apps:#", "apps: #"
        )
    end = start + 1  # one past the last indented line of the block
    for i in range(start + 1, len(lines)):
        if lines[i].strip() and not lines[i][0].isspace() and not lines[i].startswith("#"):
            break
        if lines[i].strip() and lines[i][0].isspace():
            end = i + 1
    block = [
        line
        for line in lines[start + 1 : end]
        if line.strip() and not line.lstrip().startswith("#")
    ]
    outer = _indent(block[0]) if block else "  "
    inner = next((_indent(line) for line in block if len(_indent(line)) > len(outer)), outer * 2)

    def reindented(line: str) -> str:
        if _indent(line) == "  ":
            return outer + line[2:]
        return inner + line[4:] if line.strip() else line

    added = "".join(reindented(line) for line in entry.splitlines(keepends=True))
    if end > 0 and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    return "".join(lines[:end]) + added + "".join(lines[end:])


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" "))]


def added_app(
    root: Path, app: str, path: str, port: int, registry: str, chart: str | None = None
) -> dict[str, str]:
    """The files `ship init APP` writes to add APP to the ship.yaml at `root`: the edited
    ship.yaml (checked to differ from the old one by APP alone, and to load) and APP's folder."""
    _check_names(app, path, root, chart)
    old_text = paths.read_text(root, config.CONFIG_FILE)
    before = yamlsafe.loads(old_text, config.CONFIG_FILE)
    old = config.parse(before, root, config.CONFIG_FILE)
    if app in old.apps:
        raise ConfigError(f"app {app!r} is already in {config.CONFIG_FILE}; nothing written")
    taken = [a.name for a in old.apps.values() if a.path == Path(path)]
    if taken:
        raise ConfigError(
            f"--path {path}: app {taken[0]!r} is built from it already; nothing written"
        )
    fill = _filler(app, path, port, registry, _build(root, app, path), chart)
    entry = fill(app_entry(app, path, _build(root, app, path), chart))
    new_text = with_app(old_text, entry)
    after = yamlsafe.loads(new_text, config.CONFIG_FILE)
    if after != {**before, "apps": {**(before.get("apps") or {}), app: yamlsafe.loads(entry)[app]}}:
        raise ConfigError(
            f"{config.CONFIG_FILE}: could not add {app!r} "
            "under `apps:` without changing other lines; "
            "add it by hand; nothing written"
        )
    config.parse(after, root, config.CONFIG_FILE)
    return {
        config.CONFIG_FILE: new_text,
        **app_files(root, app, path, list(old.environments), fill, chart),
    }


def _is_ship_config(root: Path) -> bool:
    """Whether `root` has a ship.yaml with `apps:` to add an app to (else init writes a new one)."""
    try:
        data = yamlsafe.load_file(root / config.CONFIG_FILE, config.CONFIG_FILE)
    except (OSError, ConfigError):
        return False
    return isinstance(data, dict) and "apps" in data


@dataclass(frozen=True)
class InitOptions:
    """What `ship init` scaffolds beside the app's name; every field has a default."""

    path: str | None = None  # the app's folder, relative to the repository root; None: apps/APP
    port: int = 8080  # the port the app listens on (its Service and probes)
    # a new ship.yaml's registry; None: ghcr.io/OWNER of a GitHub repository
    registry: str | None = None
    force: bool = False  # overwrite files that already exist
    chart: str | None = None  # the app's base is this Helm chart (a folder, or oci://…:VERSION)

    def folder(self, app: str) -> str:
        return self.path or f"apps/{app}"


def init(root: Path, app: str, options: InitOptions = InitOptions()) -> list[str]:
    """Scaffold ship at `root`, or add APP to the ship.yaml there (from the Helm chart at `chart`);
    the paths written."""
    path, port, registry, force, chart = (
        options.folder(app),
        options.port,
        options.registry,
        options.force,
        options.chart,
    )
    adding = _is_ship_config(root)
    files = (
        added_app(root, app, path, port, registry or "", chart)
        if adding
        else planned_files(
            root, app, path, port, registry or bootstrap.default_registry(root), chart
        )
    )
    existing = [
        name
        for name in files
        if (root / name).exists()
        and not name.endswith(".gitkeep")
        and not (adding and name == config.CONFIG_FILE)
    ]
    if existing and not force:
        raise ConfigError(
            f"{existing[0]} already exists"
            + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else "")
            + "; nothing written; pass --force to overwrite"
        )
    # Even with --force, never through a symlink or out of the repository: checked before any write.
    targets = {name: paths.writable(root, name) for name in files}
    for name, text in files.items():
        targets[name].parent.mkdir(parents=True, exist_ok=True)
        targets[name].write_text(text)
    return list(files)
