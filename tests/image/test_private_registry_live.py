"""ship against the lab's private registries (hack/private-registry.sh): TLS from a CA of the lab's,
token auth (Bearer, verified by docker-registry itself) and htpasswd Basic auth.

`ship build` (build, push through the engine, pin), the revision label, `ship release --no-sync`
(which re-checks the tag) and `ship verify`, with the credential from each source: the
environment, docker config `auths`, a credential helper on PATH speaking docker's protocol, an
identity token; cosign signs and verifies with the same login; anonymous pulls of public/*.
Bad credentials, an expired token, an untrusted CA and a bad `registry:` each give one line,
exit 1, and nothing in git. The pull secret on the real node: tests/test_real_node_private.py."""

from __future__ import annotations

import base64
import json
import os
import ssl
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import git
import httpx
import pytest

from pipeline.image.credentials import Credential, Lookup
from pipeline.image.registry import Access, Registry
from pipeline.imageref import ImageRef
from tests.conftest import ROOT, bare_and_clone

pytestmark = [pytest.mark.registry, pytest.mark.engine]


@pytest.fixture(scope="session")
def private(tmp_path_factory) -> dict[str, str]:
    """The exports of the private registries and the engine (started if needed)."""
    proc = subprocess.run([str(ROOT / "hack/cluster-up.sh"), "registry", "private", "engine"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {k: v for k, _, v in (line[len("export "):].partition("=") for line in proc.stdout.splitlines()
                                 if line.startswith("export "))}


@pytest.fixture(scope="session")
def repo(tmp_path_factory, project_repo) -> tuple[Path, Path]:
    """A clone of the session's project repository with a remote, so `release` can push."""
    bare, work, clone = bare_and_clone(tmp_path_factory.mktemp("private"), "repo")
    clone.git.fetch(str(project_repo), "main")
    clone.git.reset("--hard", "FETCH_HEAD")
    for env in ("dev", "uat", "prod"):
        (work / "environments" / env).mkdir(parents=True, exist_ok=True)
        (work / "environments" / env / ".gitkeep").write_text("")
    clone.git.add("--all")
    clone.index.commit("environments")
    clone.git.push("origin", "HEAD:main")
    clone.git.branch("--set-upstream-to=origin/main", "main")
    return work, bare


def clean_env(private: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    """The user's environment with no registry login of the host's, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIP_REGISTRY", "DOCKER_CONFIG", "SSL_CERT",
                                                                       "GITHUB_TOKEN", "SHIP_COSIGN_KEY"))}
    empty = tmp_path / "no-docker-config"
    empty.mkdir(exist_ok=True)
    return {**env, "DOCKER_HOST": private["DOCKER_HOST"], "DOCKER_CONFIG": str(empty), "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@e", **extra}


def ship(work: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=900)


def prefix() -> str:
    return f"team-{uuid.uuid4().hex[:6]}"


def login(private: dict[str, str]) -> Lookup:
    host = private["SHIP_PRIVATE_REGISTRY"]
    return Lookup(host, Credential("test", private["SHIP_PRIVATE_REGISTRY_USERNAME"],
                                   private["SHIP_PRIVATE_REGISTRY_PASSWORD"]), ())


def build(work: Path, env: dict[str, str]) -> ImageRef:
    out = ship(work, env, "build", "--output", "json")
    assert out.returncode == 0, out.stderr
    return ImageRef.parse(json.loads(out.stdout)["image"])


def revision(private: dict[str, str], ref: ImageRef) -> str:
    reg = Registry(ref.registry, lookup=lambda: login(private), access=Access(ca_file=private["SHIP_PRIVATE_REGISTRY_CA"]))
    try:
        return reg.labels(ref.path, ref.digest)["org.opencontainers.image.revision"]
    finally:
        reg.close()


def test_build_release_verify_with_env_credentials_and_a_path(private, repo, tmp_path):
    work, bare = repo
    where = f"{private['SHIP_PRIVATE_REGISTRY']}/{prefix()}"
    env = clean_env(private, tmp_path, SHIP_REGISTRY=where, SSL_CERT_FILE=private["SHIP_PRIVATE_REGISTRY_CA"],
                    SHIP_REGISTRY_USERNAME=private["SHIP_PRIVATE_REGISTRY_USERNAME"],
                    SHIP_REGISTRY_PASSWORD=private["SHIP_PRIVATE_REGISTRY_PASSWORD"])
    ref = build(work, env)
    assert ref.repository == f"{where}/hellok8s"  # host, the path once, then the image
    assert revision(private, ref) == git.Repo(work).git.log("-1", "--format=%H", "--", "apps/hellok8s")
    again = build(work, env)  # found in the registry through the handshake: not rebuilt
    assert again == ref
    out = ship(work, env, "release", "dev", "--image", str(ref), "--no-sync")
    assert out.returncode == 0, out.stderr
    out = ship(work, env, "verify", "dev")
    assert out.returncode == 0 and out.stdout.startswith(f"ok  {ref}"), out.stdout + out.stderr
    assert private["SHIP_PRIVATE_REGISTRY_PASSWORD"] not in out.stdout + out.stderr


def clone_with_ca(bare: Path, tmp_path: Path, where: str, ca: str) -> Path:
    """A clone whose ship.yaml names the registry and its CA (`registry: {url, ca_file}`), committed."""
    work = tmp_path / "clone"
    clone = git.Repo.clone_from(str(bare), work)
    config = work / "ship.yaml"
    config.write_text(config.read_text().replace("registry: 127.0.0.1:15000", f"registry: {{url: '{where}', ca_file: '{ca}'}}"))
    clone.git.commit("-qam", "the private registry, its CA in ship.yaml", "--author", "t <t@e>")
    return work


def test_docker_config_auths_and_ca_file_in_ship_yaml(private, repo, tmp_path):
    _, bare = repo
    host = private["SHIP_PRIVATE_REGISTRY"]
    folder = tmp_path / "docker"
    folder.mkdir()
    basic = base64.b64encode(f"{private['SHIP_PRIVATE_REGISTRY_USERNAME']}:{private['SHIP_PRIVATE_REGISTRY_PASSWORD']}"
                             .encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {f"https://{host}": {"auth": basic}}}))
    where = f"{host}/{prefix()}"
    work = clone_with_ca(bare, tmp_path, where, private["SHIP_PRIVATE_REGISTRY_CA"])
    ref = build(work, clean_env(private, tmp_path, DOCKER_CONFIG=str(folder)))
    assert ref.repository == f"{where}/hellok8s"


def test_credential_helper_on_path(private, repo, tmp_path):
    work, _ = repo
    host = private["SHIP_PRIVATE_REGISTRY"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-shiplab"
    # docker's protocol: `get`, the server URL on stdin, JSON on stdout; unknown servers exit 1.
    helper.write_text(f"""#!/bin/sh
[ "$1" = get ] || exit 2
read server
[ "$server" = "{host}" ] || {{ echo "credentials not found in native keychain"; exit 1; }}
printf '{{"ServerURL":"%s","Username":"%s","Secret":"%s"}}' "$server" "$LAB_USER" "$LAB_PASSWORD"
""")
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    folder = tmp_path / "docker"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"credHelpers": {host: "shiplab"}}))
    where = f"{host}/{prefix()}"
    env = clean_env(private, tmp_path, DOCKER_CONFIG=str(folder), SHIP_REGISTRY=where,
                    SSL_CERT_FILE=private["SHIP_PRIVATE_REGISTRY_CA"], PATH=f"{bin_dir}:{os.environ['PATH']}",
                    LAB_USER=private["SHIP_PRIVATE_REGISTRY_USERNAME"], LAB_PASSWORD=private["SHIP_PRIVATE_REGISTRY_PASSWORD"])
    ref = build(work, env)
    assert ref.repository == f"{where}/hellok8s"


def test_identity_token_from_docker_config(private, repo, tmp_path):
    """As `docker login` stores an OAuth refresh token: exchanged at the token service by POST."""
    work, _ = repo
    host = private["SHIP_PRIVATE_REGISTRY"]
    realm = f"https://127.0.0.1:{int(host.rsplit(':', 1)[1]) + 2}/token"
    answer = httpx.post(realm, verify=ssl.create_default_context(cafile=private["SHIP_PRIVATE_REGISTRY_CA"]), data={
        "grant_type": "password", "username": private["SHIP_PRIVATE_REGISTRY_USERNAME"],
        "password": private["SHIP_PRIVATE_REGISTRY_PASSWORD"], "service": "ship-lab-registry", "access_type": "offline",
        "client_id": "test"})
    assert answer.status_code == 200
    folder = tmp_path / "docker"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"identitytoken": answer.json()["refresh_token"]}}}))
    # The push goes through the engine with the identity token too; here the image is already there,
    # so resolve it with ship's client from a fresh repository prefix pushed by env credentials.
    where = f"{host}/{prefix()}"
    pushed = build(work, clean_env(private, tmp_path, SHIP_REGISTRY=where, SSL_CERT_FILE=private["SHIP_PRIVATE_REGISTRY_CA"],
                                   SHIP_REGISTRY_USERNAME=private["SHIP_PRIVATE_REGISTRY_USERNAME"],
                                   SHIP_REGISTRY_PASSWORD=private["SHIP_PRIVATE_REGISTRY_PASSWORD"]))
    env = clean_env(private, tmp_path, DOCKER_CONFIG=str(folder), SHIP_REGISTRY=where,
                    SSL_CERT_FILE=private["SHIP_PRIVATE_REGISTRY_CA"])
    assert build(work, env) == pushed  # found through the identity token's handshake


def test_anonymous_pull_of_a_public_repository(private, repo, tmp_path):
    work, _ = repo
    host = private["SHIP_PRIVATE_REGISTRY"]
    where = f"{host}/public/{prefix()}"
    ref = build(work, clean_env(private, tmp_path, SHIP_REGISTRY=where, SSL_CERT_FILE=private["SHIP_PRIVATE_REGISTRY_CA"],
                                SHIP_REGISTRY_USERNAME=private["SHIP_PRIVATE_REGISTRY_USERNAME"],
                                SHIP_REGISTRY_PASSWORD=private["SHIP_PRIVATE_REGISTRY_PASSWORD"]))
    nobody = Lookup(host, None, ("nowhere",))
    reg = Registry(host, lookup=lambda: nobody, access=Access(ca_file=private["SHIP_PRIVATE_REGISTRY_CA"]))
    try:
        assert reg.manifest_digest(ref.path, ref.tag) == ref.digest  # anonymous token, pull only
    finally:
        reg.close()


def test_basic_auth_registry(private, repo, tmp_path):
    work, _ = repo
    where = f"{private['SHIP_BASIC_REGISTRY']}/{prefix()}"
    ref = build(work, clean_env(private, tmp_path, SHIP_REGISTRY=where, SSL_CERT_FILE=private["SHIP_PRIVATE_REGISTRY_CA"],
                                SHIP_REGISTRY_USERNAME=private["SHIP_PRIVATE_REGISTRY_USERNAME"],
                                SHIP_REGISTRY_PASSWORD=private["SHIP_PRIVATE_REGISTRY_PASSWORD"]))
    assert ref.repository == f"{where}/hellok8s"
    assert revision(private, ref)


@pytest.mark.parametrize("case", ["wrong password", "expired token", "untrusted CA", "no credentials", "bad registry"])
def test_bad_credentials_and_settings_give_one_line_and_change_nothing(private, repo, tmp_path, case):
    work, bare = repo
    host = private["SHIP_PRIVATE_REGISTRY"]
    user, password, ca = private["SHIP_PRIVATE_REGISTRY_USERNAME"], private["SHIP_PRIVATE_REGISTRY_PASSWORD"], \
        private["SHIP_PRIVATE_REGISTRY_CA"]
    image = f"{host}/team/hellok8s:1111111@sha256:{'0' * 64}"
    env, expected = {
        "wrong password": ({"SHIP_REGISTRY_USERNAME": user, "SHIP_REGISTRY_PASSWORD": "not-" + password, "SSL_CERT_FILE": ca},
                           f"RegistryError: {host}: 401 for repository team/hellok8s at its token service (credentials "
                           f"from $SHIP_REGISTRY_USERNAME/SHIP_REGISTRY_PASSWORD; run docker login {host} or set "
                           "SHIP_REGISTRY_USERNAME/SHIP_REGISTRY_PASSWORD)"),
        "expired token": ({"SHIP_REGISTRY_USERNAME": user + "-expired", "SHIP_REGISTRY_PASSWORD": password, "SSL_CERT_FILE": ca},
                          f"RegistryError: {host}: 401 for repository team/hellok8s: it refused the token its token service "
                          "gave (expired?) (credentials from $SHIP_REGISTRY_USERNAME/SHIP_REGISTRY_PASSWORD; run docker "
                          f"login {host} or set SHIP_REGISTRY_USERNAME/SHIP_REGISTRY_PASSWORD)"),
        "untrusted CA": ({"SHIP_REGISTRY_USERNAME": user, "SHIP_REGISTRY_PASSWORD": password},
                         f"RegistryError: registry {host}: its TLS certificate is not trusted; give its CA with `ca_file:` "
                         "under `registry:` in ship.yaml or $SSL_CERT_FILE (or mark it insecure)"),
        "no credentials": ({"SSL_CERT_FILE": ca}, f"RegistryError: {host}: 401 for repository team/hellok8s (no credentials "
                           f"(looked in $SHIP_REGISTRY_USERNAME/SHIP_REGISTRY_PASSWORD, {tmp_path}/no-docker-config/config.json); "
                           f"run docker login {host} or set SHIP_REGISTRY_USERNAME/SHIP_REGISTRY_PASSWORD)"),
        "bad registry": ({"SHIP_REGISTRY": "127.0.0.1:15443/Team"},
                         "ConfigError: $SHIP_REGISTRY: expected host[:port][/path] with a lowercase path (not '127.0.0.1:15443/Team')"),
    }[case]
    head = git.Repo(bare).head.commit.hexsha
    out = ship(work, clean_env(private, tmp_path, SHIP_REGISTRY=env.pop("SHIP_REGISTRY", f"{host}/team"), **env),
               "release", "dev", "--image", image, "--no-sync")
    assert (out.returncode, out.stdout, out.stderr.strip().splitlines()[-1]) == (1, "", expected)
    assert password not in out.stderr
    assert git.Repo(bare).head.commit.hexsha == head
    assert not git.Repo(work).is_dirty(untracked_files=True)


@pytest.mark.binaries
def test_cosign_signs_and_verifies_with_the_same_login(private, repo, tmp_path, cosign_keys):
    """`ship build --key` signs through ship's login (a docker config of its own for cosign) and the
    lab's CA; verification through the same; without a login cosign is refused."""
    from pipeline.image.credentials import Credentials
    from pipeline.image.signing import Cosign

    _, bare = repo
    key, public = cosign_keys("private")
    where = f"{private['SHIP_PRIVATE_REGISTRY']}/{prefix()}"
    work = clone_with_ca(bare, tmp_path, where, private["SHIP_PRIVATE_REGISTRY_CA"])  # cosign gets the CA too
    creds = {"SHIP_REGISTRY_USERNAME": private["SHIP_PRIVATE_REGISTRY_USERNAME"],
             "SHIP_REGISTRY_PASSWORD": private["SHIP_PRIVATE_REGISTRY_PASSWORD"]}
    env = clean_env(private, tmp_path, COSIGN_PASSWORD="", **creds)
    out = ship(work, env, "build", "--key", str(key), "--output", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["signed"] is True
    assert private["SHIP_PRIVATE_REGISTRY_PASSWORD"] not in out.stderr + out.stdout
    ref = ImageRef.parse(json.loads(out.stdout)["image"])
    ca = Access(ca_file=private["SHIP_PRIVATE_REGISTRY_CA"])
    signed = Cosign(credentials=Credentials(ref.registry, creds), access=lambda host: ca)
    assert signed.verify(ref, public) is None
    anonymous = Cosign(credentials=Credentials(ref.registry, {"DOCKER_CONFIG": str(tmp_path)}), access=lambda host: ca)
    assert anonymous.verify(ref, public)  # a reason: the registry wants a login
