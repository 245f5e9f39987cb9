"""What the workspace reads of an app for a release: its plain config per environment, and the
guard that keeps a Secret with data out of everything ship commits or applies. Reads files only.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import names, paths, yamlsafe
from pipeline.config import App, Environment
from pipeline.errors import ConfigError, ValidationError
from pipeline.gitops.records import parse_env_file


def refuse_rendered_secrets(objects: list[dict], where: str) -> None:
    """No Secret with data in what kustomize rendered: whether it came from a file, a
    secretGenerator's literals or files, or a patch. ship adds its own Secrets, built from
    SHIP_SECRET_* variables, after this check."""
    for obj in objects:
        if (
            isinstance(obj, dict)
            and obj.get("kind") == "Secret"
            and (obj.get("data") or obj.get("stringData"))
        ):
            meta = obj.get("metadata") or {}
            raise ValidationError(
                f"{where}: Secret/{meta.get('namespace', '-')}/{meta.get('name', '?')} renders "
                "with data (from a file, a secretGenerator or a patch); a Secret's values never "
                "come from git: ship supplies them at sync time from SHIP_SECRET_* variables"
            )


class AppInputs:
    """Mixed into Workspace: `root` is the repository's working tree."""

    root: Path

    def config_data(self, app: App, env: Environment) -> dict[str, str]:
        """APP's plain config for ENV (`<config>/<env>.env`); a secret key in it is refused. An
        app from a chart may have none (its values configure it): its ConfigMap is then empty."""
        path = app.path / app.config / f"{env.name}.env"
        try:
            # Read, not stat'ed: a symlink to /proc/self/environ has size 0 and holds CI's secrets.
            text = paths.read_text(self.root, path, cap=names.MAX_CONFIG_BYTES)
        except FileNotFoundError:
            if app.chart is not None:
                return {}
            raise ConfigError(f"{path}: config for environment {env.name} not found") from None
        except ConfigError as exc:
            if "larger than" not in str(exc):
                raise
            raise ConfigError(
                f"{path}: more than {names.MAX_CONFIG_BYTES:,} bytes; a ConfigMap holds at most "
                f"{names.MAX_CONFIG_BYTES:,} bytes (keep large data out of config)"
            ) from None
        data = parse_env_file(text, str(path))
        for key in data:
            if key in app.secrets:
                raise ValidationError(
                    f"{path}: {key} is one of {app.name}'s secrets; it must never be in git "
                    f"(set {names.secret_variable(app.name, key)} at sync time instead)"
                )
        return data

    def secrets_with_data(self, folders: list[Path]) -> list[str]:
        """Files under `folders` holding a Secret with data or stringData (never allowed in git)."""
        # the real root: regular_files gives real paths
        offending, top = [], paths.contained(self.root, ".")
        for folder in folders:
            for path in paths.regular_files(self.root, folder):
                if path.suffix not in (".yaml", ".yml", ".json"):
                    continue
                try:
                    # read guarded: no symlink out of the repository, size capped
                    text = paths.read_text(self.root, path)
                    if "Secret" not in text:
                        # cannot hold one: parsing every manifest was most of a no-op sync's own
                        # time
                        continue
                    docs = yamlsafe.loads_all(text, str(path.relative_to(top)))
                except (ConfigError, UnicodeDecodeError):
                    continue  # not a manifest; kustomize reports it if it matters
                if any(
                    isinstance(d, dict)
                    and d.get("kind") == "Secret"
                    and (d.get("data") or d.get("stringData"))
                    for d in docs
                ):
                    offending.append(str(path.relative_to(top)))
        return offending

    def guard_secrets(self, env: Environment, apps: list[App]) -> None:
        offending = self.secrets_with_data([env.folder, *[a.path / a.base for a in apps]])
        if offending:
            raise ValidationError(
                f"{offending[0]}: a Secret with data must never be committed; remove it "
                "(ship supplies secret values at sync time from SHIP_SECRET_* variables)"
            )
