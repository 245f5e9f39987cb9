"""What the workspace reads of an app for a release: its plain config per environment, and the
guard that keeps a Secret with data out of everything ship commits or applies. Reads files only.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import names
from pipeline.config import App, Environment
from pipeline.errors import ConfigError, ValidationError
from pipeline.gitops import yamlsafe
from pipeline.gitops.records import parse_env_file


class AppInputs:
    """Mixed into Workspace: `root` is the repository's working tree."""

    root: Path

    def config_data(self, app: App, env: Environment) -> dict[str, str]:
        """APP's plain config for ENV (`<config>/<env>.env`); a secret key in it is refused."""
        path = app.path / app.config / f"{env.name}.env"
        if not (self.root / path).is_file():
            raise ConfigError(f"{path}: config for environment {env.name} not found")
        size = (self.root / path).stat().st_size
        if size > names.MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {size:,} bytes; a ConfigMap holds at most {names.MAX_CONFIG_BYTES:,} bytes "
                              "(keep large data out of config)")
        data = parse_env_file((self.root / path).read_text(), str(path))
        for key in data:
            if key in app.secrets:
                raise ValidationError(f"{path}: {key} is one of {app.name}'s secrets; it must never be in git "
                                      f"(set {names.secret_variable(app.name, key)} at sync time instead)")
        return data

    def secrets_with_data(self, folders: list[Path]) -> list[str]:
        """Files under `folders` holding a Secret with data or stringData (never allowed in git)."""
        offending = []
        for folder in folders:
            for path in sorted((self.root / folder).rglob("*")):
                if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
                    continue
                text = path.read_text(errors="replace")
                if "Secret" not in text:
                    continue  # cannot hold one: parsing every manifest was most of a no-op sync's own time
                try:
                    docs = yamlsafe.loads_all(text, str(path.relative_to(self.root)))
                except (ConfigError, UnicodeDecodeError):
                    continue  # not a manifest; kustomize reports it if it matters
                if any(isinstance(d, dict) and d.get("kind") == "Secret" and (d.get("data") or d.get("stringData"))
                       for d in docs):
                    offending.append(str(path.relative_to(self.root)))
        return offending

    def guard_secrets(self, env: Environment, apps: list[App]) -> None:
        offending = self.secrets_with_data([env.overlay, *[a.path / a.base for a in apps]])
        if offending:
            raise ValidationError(f"{offending[0]}: a Secret with data must never be committed; remove it "
                                  "(ship supplies secret values at sync time from SHIP_SECRET_* variables)")

