"""Credentials that stay fresh and kubeconfig's tls-server-name, against the real API server.

A kubeconfig whose user runs an exec plugin (a small script printing an ExecCredential with a
real ServiceAccount token from `kubectl create token`) shows that ship re-runs the plugin when the
token expires, and reloads once when the server answers 401."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
import yaml

from pipeline.errors import ClusterError
from pipeline.kube.client import Cluster

pytestmark = pytest.mark.cluster

PLUGIN = """#!/bin/sh
# An exec credential plugin: call N prints a token (call 1 may be bogus) valid for TTL seconds.
n=$(($(cat "{counter}" 2>/dev/null || echo 0) + 1)); echo "$n" > "{counter}"
if [ "$n" = 1 ] && [ "{first_bogus}" = yes ]; then token=bogus; else
  token=$(kubectl --kubeconfig "{admin}" create token default -n default --duration 10m); fi
expiry=$(date -u -d "+{ttl} seconds" +%Y-%m-%dT%H:%M:%SZ)
printf '{{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{{"token":"%s"%s}}}}' \\
  "$token" "$([ {ttl} -gt 0 ] && echo ",\\"expirationTimestamp\\":\\"$expiry\\"")"
"""


def kubeconfig_with(tmp_path: Path, admin: str, *, ttl: int = 0, first_bogus: bool = False,
                    tls_server_name: str | None = None) -> tuple[str, Path]:
    counter = tmp_path / "calls"
    plugin = tmp_path / "plugin.sh"
    plugin.write_text(PLUGIN.format(counter=counter, admin=admin, ttl=ttl, first_bogus="yes" if first_bogus else "no"))
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    conf = yaml.safe_load(Path(admin).read_text())
    cluster = conf["clusters"][0]["cluster"]
    if tls_server_name:
        cluster["tls-server-name"] = tls_server_name
    conf["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                                         "interactiveMode": "Never"}}
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(json.dumps(conf))
    return str(path), counter


def test_an_expired_exec_token_is_refreshed_before_the_next_request(tmp_path, kubeconfig):
    # The kubernetes package refreshes a token 5 minutes before it expires: 303 s leaves 3 s.
    path, calls = kubeconfig_with(tmp_path, kubeconfig, ttl=303)
    cluster = Cluster(path)
    try:
        cluster.ping()
        assert calls.read_text().strip() == "1"
        time.sleep(4)  # now inside the 5 minutes before expiry
        cluster.ping()
        assert calls.read_text().strip() == "2"
    finally:
        cluster.close()


def test_a_token_the_server_refuses_is_reloaded_once(tmp_path, kubeconfig):
    path, calls = kubeconfig_with(tmp_path, kubeconfig, first_bogus=True)
    cluster = Cluster(path)
    try:
        cluster.ping()  # 401 with the bogus token, then the plugin again, then 200
        assert calls.read_text().strip() == "2"
    finally:
        cluster.close()


def test_tls_server_name_is_what_the_certificate_is_checked_against(tmp_path, kubeconfig):
    good, _ = kubeconfig_with(tmp_path, kubeconfig, tls_server_name="kubernetes")
    Cluster(good).ping()
    (tmp_path / "bad").mkdir()
    bad, _ = kubeconfig_with(tmp_path / "bad", kubeconfig, tls_server_name="not-the-apiserver.example")
    with pytest.raises(ClusterError, match="unreachable.*(certificate|hostname)"):
        Cluster(bad).ping()
