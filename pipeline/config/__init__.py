"""ship.yaml: the one configuration file, loaded into typed dataclasses with a strict schema.

    model.py    the types: ShipConfig, App, Environment, Slot, GateOptions, CanaryPolicy, checks,
                Policy
    schema.py   reading the YAML into them, naming file:line:key on every error (reader.py);
                an environment's part in environments.py, single values' checks in checks.py
    windows.py  freeze windows (weekly or dated, in a time zone): frozen at T, and by which (pure)

Loading reads files and the environment; it never touches git or a cluster.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import yamlsafe
from pipeline.config.checks import parse_duration
from pipeline.config.model import (
    CONFIG_FILE,
    REQUESTS_PER_ROUND,
    ROUTERS,
    TRAFFIC_PROVIDERS,
    URL_PLACEHOLDERS,
    App,
    CanaryPolicy,
    CanaryStep,
    ChartSource,
    Environment,
    GateOptions,
    HttpCheck,
    Policy,
    PrometheusCheck,
    ShipConfig,
    Slot,
    TrafficInput,
    unknown_placeholders,
)
from pipeline.config.schema import parse
from pipeline.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "REQUESTS_PER_ROUND",
    "ROUTERS",
    "URL_PLACEHOLDERS",
    "App",
    "CanaryPolicy",
    "CanaryStep",
    "ChartSource",
    "Environment",
    "GateOptions",
    "HttpCheck",
    "Policy",
    "PrometheusCheck",
    "ShipConfig",
    "Slot",
    "TRAFFIC_PROVIDERS",
    "TrafficInput",
    "find_root",
    "load",
    "parse",
    "parse_duration",
    "unknown_placeholders",
]


def find_root(start: Path | None = None) -> Path:
    """The nearest folder holding ship.yaml, from `start` (default: the working directory) up."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        # a ship.yaml that cannot be read is said so, not passed by
        if (folder / CONFIG_FILE).exists():
            return folder
    raise ConfigError(
        f"no {CONFIG_FILE} in {here} or any folder above it (run ship from your repository)"
    )


def load(root: Path | None = None, environ: dict[str, str] | None = None) -> ShipConfig:
    root = find_root(root)
    return parse(yamlsafe.load_file(root / CONFIG_FILE, CONFIG_FILE), root, CONFIG_FILE, environ)
