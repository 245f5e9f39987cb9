"""Test harness: the real local parts (cluster, registry, build engine) and real git repos.

Session fixtures start the local parts with hack/cluster-up.sh, or reuse running ones, and only
the parts a test needs: a test marked `registry` starts the registry, `engine` the build engine,
`cluster` the control plane (`kubernetes`); only `local_parts` (and `realnode`, `multicluster`)
starts the whole lab, real node included. Under `make test` everything already runs, and each
start is a quick reuse. Each cluster test gets its own namespace, deleted afterwards, so tests
never see each other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _exports(output: str) -> dict[str, str]:
    env = {}
    for line in output.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            env[key] = value
    return env


def start_parts(*parts: str) -> dict[str, str]:
    """`hack/cluster-up.sh PART...` (every part when none is named): starts what is not running,
    reuses what is; its export lines, also put into os.environ."""
    proc = subprocess.run([str(ROOT / "hack/cluster-up.sh"), *parts], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        pytest.fail(f"hack/cluster-up.sh {' '.join(parts)} failed:\n{proc.stderr[-3000:]}", pytrace=False)
    env = _exports(proc.stdout)
    os.environ.update(env)  # so the code under test finds the parts as a user's shell would
    return env


@pytest.fixture(scope="session")
def local_parts() -> dict[str, str]:
    """The whole lab's exports (KUBECONFIG, SHIP_REGISTRY, DOCKER_HOST, the real node's, the
    gateway's, ...), started if needed: for tests that need the real node or the gateway."""
    return start_parts()


@pytest.fixture(scope="session")
def registry_part() -> dict[str, str]:
    """SHIP_REGISTRY of the local registry, and nothing else started."""
    return start_parts("registry")


@pytest.fixture(scope="session")
def engine_part() -> dict[str, str]:
    """DOCKER_HOST of the build engine, and nothing else started."""
    return start_parts("engine")


@pytest.fixture(scope="session")
def kube_part() -> dict[str, str]:
    """KUBECONFIG of the control plane (KWOK nodes), without the real node, gateway or Prometheus."""
    return start_parts("kubernetes")


# A test's markers say which parts it needs; `faults` runs a cluster of its own (tests/faults).
PARTS_BY_MARKER = {"cluster": "kube_part", "registry": "registry_part", "engine": "engine_part",
                   "realnode": "local_parts", "multicluster": "local_parts"}


@pytest.fixture(autouse=True)
def _parts_by_marker(request) -> None:
    """Start the parts the test's markers name, before its other fixtures run."""
    for marker in sorted({m.name for m in request.node.iter_markers()} & PARTS_BY_MARKER.keys()):
        request.getfixturevalue(PARTS_BY_MARKER[marker])


@pytest.fixture(scope="session")
def kubeconfig(kube_part) -> str:
    return kube_part["KUBECONFIG"]


@pytest.fixture(scope="session")
def api_client(kubeconfig):
    from kubernetes import config as kconfig

    return kconfig.new_client_from_config(config_file=kubeconfig)


@pytest.fixture(scope="session")
def registry(registry_part) -> str:
    return registry_part["SHIP_REGISTRY"]


@pytest.fixture(scope="session")
def docker_client(engine_part):
    import docker

    client = docker.DockerClient(base_url=engine_part["DOCKER_HOST"], timeout=300)
    yield client
    client.close()


@pytest.fixture(scope="session")
def user_ship(tmp_path_factory) -> Path:
    """`ship` as a user has it: installed from the wheel into a venv of its own (tests/newteam.py)."""
    from tests.newteam import install_user_ship

    return install_user_ship(tmp_path_factory.mktemp("user-ship"))


@pytest.fixture
def namespace(api_client, request):
    """A fresh namespace for one test, deleted after it."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    name = f"t-{request.node.name[:30].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    name = "".join(c for c in name if c.isalnum() or c == "-")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def bare_and_clone(tmp_path: Path, name: str = "work"):
    """A bare repository standing in for GitHub and an empty clone of it with a git identity:
    (bare path, clone path, git.Repo of the clone)."""
    import git

    bare = tmp_path / "remote.git"
    git.Repo.init(bare, bare=True, initial_branch="main")
    work = tmp_path / name
    repo = git.Repo.clone_from(str(bare), work)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "ship-test")
        cw.set_value("user", "email", "ship-test@example.com")
    return bare, work, repo


@pytest.fixture
def git_remote(tmp_path):
    """A bare repository standing in for GitHub, and a working clone of it with one commit."""
    bare, work, repo = bare_and_clone(tmp_path)
    (work / "README.md").write_text("test repo\n")
    repo.index.add(["README.md"])
    repo.index.commit("initial")
    repo.git.push("origin", "HEAD:main")
    repo.git.branch("--set-upstream-to=origin/main", "main")
    return bare, work


PROJECT_FILES = ("ship.yaml", "apps", ".gitignore")


def copy_project(dest: Path) -> None:
    """This repository's ship.yaml and apps/ (without build output) into `dest`."""
    import shutil

    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("bin"))
        else:
            shutil.copy(src, dest / name)


def commit_all(work: Path, message: str) -> None:
    """Commit everything in the clone `work` and push it to its remote's main."""
    import git

    repo = git.Repo(work)
    repo.git.add("--all")
    repo.git.commit("-m", message)
    repo.git.push("origin", "HEAD:main")


@pytest.fixture
def ship_repo(tmp_path, monkeypatch, registry_part, engine_part, project_repo):
    """A throw-away copy of this repository (ship.yaml, apps/) with a bare remote, as cwd.

    Returns (working clone path, bare remote path). SHIP_REGISTRY points at the local registry
    and DOCKER_HOST at the build engine, as `make cluster`'s exports would (and KUBECONFIG at
    the local cluster, for a test marked `cluster`).
    """
    bare, work, repo = bare_and_clone(tmp_path, "repo")
    repo.git.fetch(str(project_repo), "main")
    repo.git.reset("--hard", "FETCH_HEAD")
    for env in ("dev", "uat", "prod"):
        (work / "environments" / env).mkdir(parents=True)
        (work / "environments" / env / ".gitkeep").write_text("")
    repo.git.add("--all")
    repo.index.commit("initial")
    repo.git.push("origin", "HEAD:main")
    repo.git.branch("--set-upstream-to=origin/main", "main")
    monkeypatch.chdir(work)
    monkeypatch.setenv("SHIP_REGISTRY", registry_part["SHIP_REGISTRY"])
    return work, bare


def unique_namespaces(cfg_path: Path, suffix: str) -> None:
    """Give a ship.yaml's environments namespaces of their own, so tests never share one."""
    text = cfg_path.read_text()
    for env in ("dev", "uat", "prod"):
        text = text.replace(f"namespace: hellok8s-{env}", f"namespace: hellok8s-{env}-{suffix}")
    cfg_path.write_text(text)


@pytest.fixture(scope="session")
def project_repo(tmp_path_factory) -> Path:
    """A repository with this project's ship.yaml and apps/ in one commit, made once per session.
    Every test repository starts from this commit, so the session's image (built from it) has a
    source commit each of them knows, as a user's images do."""
    import git

    work = tmp_path_factory.mktemp("project")
    repo = git.Repo.init(work, initial_branch="main")
    copy_project(work)
    repo.git.add("--all")
    repo.git.commit("-m", "the project", "--author", "t <t@example.com>")
    return work


@pytest.fixture(scope="session")
def hellok8s_image(registry_part, engine_part, project_repo) -> str:
    """hellok8s built from project_repo and pushed once per test session; its pinned reference."""
    work = project_repo
    proc = subprocess.run([sys.executable, "-m", "pipeline", "build", "--output", "json"], cwd=work,
                          capture_output=True, text=True, env={**os.environ, **registry_part, **engine_part,
                                                              "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["image"]


@pytest.fixture
def env_repo(ship_repo, kubeconfig, request):
    """ship_repo with namespaces unique to this test; returns (work, bare, {env: namespace})."""
    import git

    work, bare = ship_repo
    suffix = uuid.uuid4().hex[:6]
    unique_namespaces(work / "ship.yaml", suffix)
    repo = git.Repo(work)
    repo.git.commit("-am", "namespaces for this test")
    repo.git.push("origin", "HEAD:main")
    namespaces = {env: f"hellok8s-{env}-{suffix}" for env in ("dev", "uat", "prod")}
    yield work, bare, namespaces
    from kubernetes import client
    from kubernetes import config as kconfig

    core = client.CoreV1Api(kconfig.new_client_from_config(config_file=kubeconfig))
    for ns in namespaces.values():
        try:
            core.delete_namespace(ns, propagation_policy="Background")
        except client.ApiException:
            pass


@pytest.fixture(scope="session")
def broken_images(hellok8s_image, docker_client, registry) -> dict[str, str]:
    """The hellok8s image pushed again as hellok8s-never-ready and hellok8s-crashloop: KWOK's
    stages make pods of those repositories never ready, or crash-loop (hack/kwok/stages.yaml)."""
    from pipeline.image.registry import Registry
    from pipeline.imageref import ImageRef

    ref = ImageRef.parse(hellok8s_image)
    image = docker_client.images.get(f"{ref.repository}:{ref.tag}")
    out = {}
    reg = Registry(registry)
    for mode in ("never-ready", "crashloop"):
        repo = f"{registry}/hellok8s-{mode}"
        image.tag(repo, ref.tag)
        for line in docker_client.images.push(repo, tag=ref.tag, stream=True, decode=True):
            assert "error" not in line, line
        out[mode] = str(reg.resolve(repo, ref.tag))
    reg.close()
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {timeout:.0f}s")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def hellok8s_binary(tmp_path_factory) -> Path:
    """The sample app built once per session, to run as a real process on loopback."""
    out = tmp_path_factory.mktemp("hellok8s-bin") / "hellok8s"
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=ROOT / "apps/hellok8s", check=True,
                   env={**os.environ, "CGO_ENABLED": "0"})
    return out


class start_hellok8s:
    """`with start_hellok8s(binary, port, fail_mode):` a real hellok8s process on 127.0.0.1:port."""

    def __init__(self, binary: Path, port: int, fail_mode: str = ""):
        self.binary, self.port, self.fail_mode = binary, port, fail_mode

    def __enter__(self):
        env = {"PATH": os.environ.get("PATH", ""), "PORT": str(self.port), "FAIL_MODE": self.fail_mode,
               "MESSAGE": "hello from a test"}
        self.proc = subprocess.Popen([str(self.binary)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{self.port}/healthz")
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=15)


@pytest.fixture
def prometheus_server(tmp_path):
    """A factory: a real Prometheus (Debian's package) on loopback scraping `targets` every second."""
    import time

    import httpx

    procs = []

    def start(targets: list[str]) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                          "scrape_configs:\n  - job_name: hellok8s\n    static_configs:\n"
                          f"      - targets: {json.dumps(targets)}\n")
        proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/-/ready")
        # Prometheus applies discovered targets a few seconds after start: wait for a first scrape.
        deadline = time.monotonic() + 30
        while not httpx.get(f"{url}/api/v1/query", params={"query": "up == 1"}).json()["data"]["result"]:
            assert time.monotonic() < deadline, "Prometheus scraped nothing within 30s"
            time.sleep(0.2)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="session")
def cosign_keys(tmp_path_factory):
    """A factory: a new cosign key pair (empty password), made by cosign itself; (private, public)."""
    from pipeline.image.signing import cosign_binary

    def make(name: str) -> tuple[Path, Path]:
        folder = tmp_path_factory.mktemp(f"cosign-{name}")
        subprocess.run([cosign_binary(), "generate-key-pair"], cwd=folder, check=True, capture_output=True,
                       env={**os.environ, "COSIGN_PASSWORD": ""}, stdin=subprocess.DEVNULL)
        return folder / "cosign.key", folder / "cosign.pub"

    return make


@pytest.fixture
def fresh_image(hellok8s_image, docker_client, registry):
    """A factory: the session's hellok8s image pushed to a repository of its own, so nothing has
    signed it yet; its pinned reference (same tag, so the same source commit)."""
    from pipeline.image.registry import Registry
    from pipeline.imageref import ImageRef

    ref = ImageRef.parse(hellok8s_image)
    image = docker_client.images.get(f"{ref.repository}:{ref.tag}")

    def make(name: str) -> str:
        repo = f"{registry}/{name}-{uuid.uuid4().hex[:6]}"
        image.tag(repo, ref.tag)
        for line in docker_client.images.push(repo, tag=ref.tag, stream=True, decode=True):
            assert "error" not in line, line
        reg = Registry(registry)
        try:
            return str(reg.resolve(repo, ref.tag))
        finally:
            reg.close()

    return make


def cosign(*args: str, key_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run cosign as a user would (empty key password)."""
    from pipeline.image.signing import cosign_binary

    return subprocess.run([cosign_binary(), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "COSIGN_PASSWORD": "", **(key_env or {})})


@pytest.fixture(scope="session")
def real_node(local_parts) -> str:
    """The real node's name; the tests are skipped where cluster-up runs without it."""
    if os.environ.get("SHIP_REAL_NODE") == "0":
        pytest.skip("SHIP_REAL_NODE=0: no real node")
    name = local_parts.get("SHIP_REAL_NODE_NAME")
    assert name, "hack/cluster-up.sh did not start the real node (no SHIP_REAL_NODE_NAME export)"
    return name
