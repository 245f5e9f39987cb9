"""The release record: what was released where, from which commit, with which image and config.

A release is immutable; promotion copies it to the next environment with that environment's
own config. Its config travels with it as plain `KEY=value` data (never secrets), read from the
app's dotenv file for the environment. Pure.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.errors import ConfigError

_ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$")


@dataclass(frozen=True)
class Release:
    """An immutable record of one release in one environment."""

    id: str  # r<YYYYMMDD>-<HHMMSS>-<short sha>: unique, sorts in time order, names its commit
    app: str
    environment: str
    commit: str  # the app's last change when it was released: its code, base and config

    image: str  # repo:tag@sha256:<digest>
    config: str  # name of the versioned ConfigMap
    created_at: str
    created_by: str
    promoted_from: str | None = None
    # the commit the image was built from (its tag or revision label)
    image_commit: str | None = None
    chart: str | None = None  # an app from a chart: NAME-VERSION of the chart its base renders
    # …and sha256 of that base (the chart's files, the merged values, ship's wiring)
    chart_digest: str | None = None
    # a remote chart: oci://HOST/PATH/NAME:VERSION@sha256:… of its archive
    chart_source: str | None = None
    config_data: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def ref(self) -> str:
        """`APP@ID`: ids are unique per app, so this names a release across an environment."""
        return f"{self.app}@{self.id}"

    def trailers(self) -> dict[str, str | None]:
        """The fields every commit about this release carries (names.commit_message)."""
        return {
            "Release": self.id,
            "App": self.app,
            "Environment": self.environment,
            "Commit": self.commit,
            "Image-Commit": self.image_commit,
            "Image": self.image,
            "Config": self.config,
            "Chart": self.chart,
            "Chart-Source": self.chart_source,
        }

    def record(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("config_data")
        for key in ("chart", "chart_digest", "chart_source"):  # only an app from a chart has them
            if out[key] is None:
                out.pop(key)
        return out

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Release:
        known: dict[str, Any] = {
            k: data.get(k) for k in cls.__dataclass_fields__ if k != "config_data" and k in data
        }
        return cls(**known)


def release_id(commit_time: dt.datetime, short_sha: str) -> str:
    """Release id from the source commit: the same commit always gives the same id."""
    return f"r{commit_time.astimezone(dt.UTC):%Y%m%d-%H%M%S}-{short_sha[:7]}"


def parse_env_file(text: str, source: str) -> dict[str, str]:
    """A dotenv file: `KEY=value` lines, `#` comments and blank lines; no interpolation."""
    data: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if not match:
            raise ConfigError(f"{source}:{number}: expected KEY=value")
        key, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key in data:
            raise ConfigError(f"{source}:{number}: {key} is set twice")
        data[key] = value
    return data
