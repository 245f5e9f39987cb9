"""kubeconfig read as kubectl reads it: KUBECONFIG's files merged (first definition and first
current-context win, missing files skipped), and every malformed file a one-line ConfigError."""

from __future__ import annotations

import os

import pytest

from pipeline.errors import ConfigError
from pipeline.kube.credentials import (
    choose_context,
    kubeconfig_paths,
    load_kubeconfig,
    read_kubeconfigs,
)

ONE = """apiVersion: v1
kind: Config
clusters: [{name: a, cluster: {server: "https://one.example:6443"}}]
users: [{name: u, user: {token: one-token}}]
contexts: [{name: one, context: {cluster: a, user: u}}, {name: shared, context: {cluster: a, user: u}}]
current-context: one
"""
TWO = """apiVersion: v1
kind: Config
clusters: [{name: a, cluster: {server: "https://ignored.example:6443"}}, {name: b, cluster: {server: "https://two.example:6443"}}]
users: [{name: v, user: {token: two-token}}]
contexts: [{name: two, context: {cluster: b, user: v}}, {name: shared, context: {cluster: b, user: v}}]
current-context: two
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "one").write_text(ONE)
    (tmp_path / "two").write_text(TWO)
    return f"{tmp_path / 'missing'}{os.pathsep}{tmp_path / 'one'}{os.pathsep}{tmp_path / 'two'}"


def test_paths_as_kubectl_reads_them(tmp_path):
    assert kubeconfig_paths("/a:/b", {"KUBECONFIG": "/c"}) == ["/a", "/b"]  # --kubeconfig first
    assert kubeconfig_paths(None, {"KUBECONFIG": "/c::/d"}) == ["/c", "/d"]
    assert kubeconfig_paths(None, {}) == [os.path.expanduser("~/.kube/config")]


def test_several_files_merge_first_definition_and_first_current_context_win(files):
    conf = load_kubeconfig(files, None)
    assert conf.host == "https://one.example:6443"  # the first file's current-context, not the last's
    two = load_kubeconfig(files, "two")
    assert two.host == "https://two.example:6443" and two.bearer() == "two-token"
    shared = load_kubeconfig(files, "shared")  # defined in both: the first file's wins
    assert shared.host == "https://one.example:6443"


def test_a_missing_context_names_the_ones_there_are(files):
    with pytest.raises(ConfigError, match=r"context 'nope' cannot be used: no such context \(it has: one, shared, two\)"):
        choose_context(read_kubeconfigs(files.split(os.pathsep)), "nope")


@pytest.mark.parametrize(("text", "says"), [
    ("clusters: [oops\n", "not valid YAML"),
    ("- a\n", "not a kubeconfig: a YAML mapping with clusters, contexts and users was expected, not a list"),
    ("users: {a: 1}\n", "users must be a list of entries, each with a name"),
    ("contexts: [{context: {}}]\n", "contexts must be a list of entries, each with a name"),
    ("kind: Config\n", "no current context; name one with --context"),
])
def test_a_malformed_kubeconfig_is_one_line_naming_the_file(tmp_path, text, says):
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"kubeconfig {path}") as caught:
        load_kubeconfig(str(path), None)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_an_exec_plugin_that_fails_is_a_config_error_not_a_log_line(tmp_path, capsys):
    path = tmp_path / "config"
    path.write_text(ONE.replace("{token: one-token}", "{exec: {apiVersion: client.authentication.k8s.io/v1, "
                                                      "command: /nonexistent/aws-iam-authenticator}}"))
    with pytest.raises(ConfigError, match="context 'one': credentials failed"):
        load_kubeconfig(str(path), None)
    assert "ERROR" not in capsys.readouterr().err


PLUGIN = """#!/bin/sh
echo x >> "$CALLS"
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t-%s-%s","expirationTimestamp":"%s"}}' \\
  "$1" "$(wc -l < "$CALLS" | tr -d ' ')" "$(date -u -d "+$TTL seconds" +%Y-%m-%dT%H:%M:%SZ)"
"""


def test_an_exec_plugin_runs_natively_beside_its_kubeconfig_and_again_near_expiry(tmp_path):
    (tmp_path / "bin").mkdir()
    plugin = tmp_path / "bin" / "plugin"
    plugin.write_text(PLUGIN)
    plugin.chmod(0o755)
    calls = tmp_path / "calls"
    user = ("{exec: {apiVersion: client.authentication.k8s.io/v1, command: ./bin/plugin, args: [arg], "
            f"env: [{{name: CALLS, value: '{calls}'}}, {{name: TTL, value: '{{ttl}}'}}]}}}}")
    path = tmp_path / "config"
    path.write_text(ONE.replace("{token: one-token}", user.replace("{ttl}", "3600")))
    conf = load_kubeconfig(str(path), None)
    assert conf.bearer() == "t-arg-1" and conf.bearer() == "t-arg-1"  # cached while far from expiry
    path.write_text(ONE.replace("{token: one-token}", user.replace("{ttl}", "60")))  # inside the last 5 minutes
    soon = load_kubeconfig(str(path), None)
    assert soon.bearer() == "t-arg-3" and soon.bearer() == "t-arg-4"


def test_a_token_file_is_read_each_time_and_an_auth_provider_goes_through_the_kubernetes_package(tmp_path):
    from pipeline.kube.kubeconfig import native

    (tmp_path / "token").write_text("first\n")
    path = tmp_path / "config"
    path.write_text(ONE.replace("{token: one-token}", "{tokenFile: token}"))
    conf = load_kubeconfig(str(path), None)
    assert conf.bearer() == "first"
    (tmp_path / "token").write_text("rotated\n")
    assert conf.bearer() == "rotated"
    legacy = ONE.replace("{token: one-token}", "{auth-provider: {name: oidc, config: {}}}")
    import yaml
    assert native([("x", yaml.safe_load(legacy))], "one") is None
