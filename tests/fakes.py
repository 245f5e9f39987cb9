"""In-memory stand-ins for the unit tier: a cluster, a registry and cosign that keep state in dicts.

They speed up the flows' unit tests (release, promote, canary, abort, rollback, the gate's
plumbing); they never replace the tests on the real local parts (tests/*/test_*_live.py), which
prove the same flows against a real API server.

FakeCluster plays the API server and the controllers at once: an applied Deployment is
immediately rolled out and healthy, unless its image's repository ends in `-never-ready`, in
which case it reports ProgressDeadlineExceeded (as ship's KWOK stages make a real cluster do).
"""

from __future__ import annotations

import builtins
import copy
import itertools
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pipeline import names
from pipeline.errors import ApiError, ClusterError, ProxyError
from pipeline.kube.api import ApiRequest, ClusterApi, ResourceInfo, WatchQuery

if TYPE_CHECKING:
    from pipeline.context import Context
    from pipeline.image.registry import Registry
    from pipeline.image.signing import Cosign
    from pipeline.imageref import ImageRef
    from pipeline.kube.client import Cluster

KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False), ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True), ("v1", "Service"): ("services", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True), ("v1", "Pod"): ("pods", True),
    ("apps/v1", "Deployment"): ("deployments", True), ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True), ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): ("httproutes", True),
    ("coordination.k8s.io/v1", "Lease"): ("leases", True),
    ("batch/v1", "Job"): ("jobs", True), ("batch/v1", "CronJob"): ("cronjobs", True),
}


def _matches(obj: dict, selector: str | None) -> bool:
    if not selector:
        return True
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in selector.split(","):
        if "!=" in term:
            key, value = term.split("!=")
            if labels.get(key) == value:
                return False
        else:
            key, value = term.split("=")
            if labels.get(key) != value:
                return False
    return True


class FakeCluster:
    """The ClusterApi ship's flows use (pipeline/kube/api.py), kept in memory; `make lint` holds
    its signatures to the Protocol, as it holds kube/client.Cluster's."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str | None, str], dict] = {}
        self.never_ready: set[str] = set()  # Deployments (by name) that never get ready, whatever their image
        self.requests = 0
        self.host = "fake"
        self._versions = itertools.count(1)

    # ── discovery ────────────────────────────────────────────────────────────────────────────
    def info(self, api_version: str, kind: str) -> ResourceInfo:
        if (api_version, kind) not in KINDS:
            raise ClusterError(f"the cluster has no kind {kind} in API {api_version}")
        plural, namespaced = KINDS[(api_version, kind)]
        return ResourceInfo(api_version=api_version, kind=kind, plural=plural, namespaced=namespaced)

    def info_for(self, obj: dict) -> ResourceInfo:
        return self.info(obj["apiVersion"], obj["kind"])

    # ── objects ──────────────────────────────────────────────────────────────────────────────
    def _key(self, api_version: str, kind: str, name: str, namespace: str | None) -> tuple[str, str, str | None, str]:
        return api_version, kind, namespace if self.info(api_version, kind).namespaced else None, name

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        self.requests += 1
        obj = self.objects.get(self._key(api_version, kind, name, namespace))
        return copy.deepcopy(obj) if obj else None

    def list(self, api_version: str, kind: str, namespace: str | None = None, selector: str | None = None) -> list[dict]:
        self.requests += 1
        self.info(api_version, kind)
        return [copy.deepcopy(o) for (av, k, ns, _), o in sorted(self.objects.items(), key=lambda kv: str(kv[0]))
                if av == api_version and k == kind and (namespace is None or ns == namespace) and _matches(o, selector)]

    def apply(self, obj: dict, *, dry_run: bool = False, force: bool = False, manager: str = names.MANAGER) -> dict:
        self.requests += 1
        meta = obj["metadata"]
        key = self._key(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        live = self.objects.get(key)
        out = copy.deepcopy(obj)
        out["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"] if live and dry_run else str(next(self._versions))
        out["metadata"]["generation"] = (live or {}).get("metadata", {}).get("generation", 0) + 1
        if obj["kind"] == "Deployment":
            out["status"] = self._rolled_out(out)
        if not dry_run:
            self.objects[key] = out
        return copy.deepcopy(out)

    def _rolled_out(self, dep: dict) -> dict:
        replicas = dep["spec"].get("replicas", 1)
        images = [c.get("image", "") for c in dep["spec"]["template"]["spec"].get("containers", [])]
        generation = dep["metadata"]["generation"]
        if any("-never-ready" in i.split("@")[0] for i in images) or dep["metadata"]["name"] in self.never_ready:
            return {"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
                    "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                    "message": f"ReplicaSet \"{dep['metadata']['name']}\" has timed out progressing."}]}
        return {"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": replicas, "availableReplicas": replicas,
                "conditions": [{"type": "Available", "status": "True"}]}

    def json_patch(self, obj: dict, ops: Sequence[dict]) -> dict:
        """Only what ship sends: `replace` of a top-level metadata field (managedFields on take-over)."""
        self.requests += 1
        meta = obj["metadata"]
        live = self.objects[self._key(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))]
        for op in ops:
            _, top, field = op["path"].split("/", 2)
            live[top][field] = copy.deepcopy(op["value"])
        return copy.deepcopy(live)

    def create(self, obj: dict, *, retry_lost: bool = False) -> dict:
        meta = obj["metadata"]
        if self.objects.get(self._key(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))):
            raise ApiError(f"{obj['kind']}/{meta['name']}: AlreadyExists (409)", 409, {"reason": "AlreadyExists"})
        return self.apply(obj)

    def replace(self, obj: dict) -> dict:
        meta = obj["metadata"]
        live = self.objects.get(self._key(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")))
        if live is None or live["metadata"]["resourceVersion"] != meta.get("resourceVersion"):
            raise ApiError(f"{obj['kind']}/{meta['name']}: Conflict (409)", 409, {"reason": "Conflict"})
        return self.apply(obj)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               propagation: str = "Background") -> bool:
        self.requests += 1
        return self.objects.pop(self._key(api_version, kind, name, namespace), None) is not None

    # ── what the gate's watch loop uses ──────────────────────────────────────────────────────
    def request(self, req: ApiRequest) -> dict:
        """Only the gate's lists of Deployments and Pods, with a resourceVersion to watch from."""
        path = req.path
        kind = "Deployment" if "/deployments" in path else "Pod"
        api = "apps/v1" if kind == "Deployment" else "v1"
        namespace = path.split("/namespaces/")[1].split("/")[0]
        return {"metadata": {"resourceVersion": "1"}, "items": self.list(api, kind, namespace)}

    def watch(self, api_version: str, kind: str, namespace: str | None,
              query: WatchQuery = WatchQuery()) -> Iterator[tuple[str, dict]]:
        time.sleep(0.05)  # nothing changes behind ship's back here
        return iter(())

    def proxy_get(self, namespace: str, service: str, port: str, path: str, *, params: dict[str, str] | None = None,
                  timeout: float = 10.0) -> tuple[int, bytes]:
        """No pod answers here: the API server's 503 for a Service without a ready endpoint."""
        self.requests += 1
        if self.get("v1", "Service", service, namespace) is None:
            raise ProxyError(f"Service/{namespace}/{service}:{port}: NotFound (404)", 404, {"reason": "NotFound"})
        raise ProxyError(f"Service/{namespace}/{service}:{port}: ServiceUnavailable (503)", 503,
                         {"reason": "ServiceUnavailable"})

    def fork(self) -> FakeCluster:
        return self

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass

    # ── test helpers ─────────────────────────────────────────────────────────────────────────
    def deployment(self, namespace: str, name: str) -> dict | None:
        return self.objects.get(("apps/v1", "Deployment", namespace, name))

    def names(self, kind: str, namespace: str) -> builtins.list[str]:
        return sorted(k[3] for k in self.objects if k[1] == kind and k[2] == namespace)


class FakeRegistry:
    """A registry whose tags point where `digests` says (repository path, tag) -> digest."""

    def __init__(self, digests: dict[tuple[str, str], str] | None = None, revision: str = ""):
        self.digests = digests or {}
        self.revision = revision  # the commit every image here says it was built from …
        self.revisions: dict[str, str] = {}  # … unless its repository path is here

    def labels(self, path: str, digest: str) -> dict[str, str]:
        revision = self.revisions.get(path, self.revision)
        return {"org.opencontainers.image.revision": revision} if revision else {}

    def manifest_digest(self, path: str, reference: str) -> str | None:
        return self.digests.get((path, reference))

    def resolve(self, repository: str, tag: str) -> ImageRef | None:
        from pipeline.imageref import ImageRef

        digest = self.manifest_digest(repository.split("/", 1)[1], tag)
        return ImageRef(repository, tag, digest) if digest else None

    def close(self) -> None:
        pass


class FakeSigner:
    """cosign in memory. A key file (private or public) holds a key name, e.g. `key-a`; a digest is
    signed by the set of key names in `signatures`. Answers as cosign does."""

    def __init__(self) -> None:
        self.signatures: dict[str, set[str]] = {}
        self.verified: list[str] = []

    def sign(self, ref: ImageRef, key: str) -> None:
        import os

        name = os.environ["SHIP_COSIGN_KEY"] if key.startswith("env://") else Path(key).read_text()
        self.signatures.setdefault(ref.digest, set()).add(name.strip())

    def verify(self, ref: ImageRef, public_key: str | Path) -> str | None:
        from pipeline.errors import SignatureError

        if not Path(public_key).is_file():
            raise SignatureError(f"{public_key}: public key not found")
        self.verified.append(str(ref))
        found = self.signatures.get(ref.digest, set())
        if not found:
            return "no signatures found"
        if Path(public_key).read_text().strip() not in found:
            return "no matching signatures: invalid signature when validating ASN.1 encoded signature"
        return None

    def close(self) -> None:
        pass


SHIP_YAML = """registry: 127.0.0.1:15000
apps:
  hellok8s:
    path: apps/hellok8s
    image: hellok8s
    secrets: [DB_PASSWORD]
    keep_configs: 3
environments:
  dev: {namespace: hk-dev, gates: {timeout: 5s}}
  uat: {namespace: hk-uat, promotes_from: dev, gates: {timeout: 5s}}
  prod:
    namespace: hk-prod
    promotes_from: uat
    gates: {timeout: 5s}
    canary: {router: gateway, host: "{app}.example.com", interval: 1s, steps: [{weight: 10, bake: 0s}, {weight: 50, bake: 0s}]}
"""
DIGEST_GOOD = "sha256:" + "a" * 64
DIGEST_BAD = "sha256:" + "b" * 64
GOOD = f"127.0.0.1:15000/hellok8s:1111111@{DIGEST_GOOD}"
NEVER_READY = f"127.0.0.1:15000/hellok8s-never-ready:1111111@{DIGEST_BAD}"
DIGEST_OTHER = "sha256:" + "c" * 64
OTHER = f"127.0.0.1:15000/hellok8s-other:1111111@{DIGEST_OTHER}"  # another build of the same commit


def fake_project(root: Path) -> None:
    """A git repository holding ship.yaml (with SHIP_YAML), apps/hellok8s and empty overlays: a
    copy of one made once per test process, so every copy has the same first commit."""
    import shutil

    shutil.copytree(_project_template(), root, symlinks=True, dirs_exist_ok=True)


_TEMPLATE: list[Path] = []  # the one made by this process


def _project_template() -> Path:
    """The repository fake_project copies, made on first use and removed when the process ends.
    A copy of a folder costs a fraction of a git init, add and commit."""
    import atexit
    import shutil
    import tempfile

    import git

    if _TEMPLATE:
        return _TEMPLATE[0]
    root = Path(tempfile.mkdtemp(prefix="ship-fake-project-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    here = Path(__file__).resolve().parents[1]
    shutil.copytree(here / "apps/hellok8s", root / "apps/hellok8s", ignore=shutil.ignore_patterns("bin"))
    (root / "ship.yaml").write_text(SHIP_YAML)
    (root / ".gitignore").write_text("apps/hellok8s/bin/\n")
    for env in ("dev", "uat", "prod"):
        (root / "environments" / env).mkdir(parents=True)
        (root / "environments" / env / ".gitkeep").write_text("")
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "ship-test")
        cw.set_value("user", "email", "ship-test@example.com")
    repo.git.add("--all")
    repo.git.commit("-m", "initial")
    repo.close()
    # a quarter of the files every copy would take
    for sample in (root / ".git/hooks").glob("*.sample"):
        sample.unlink()
    _TEMPLATE.append(root)
    return root


def fake_context(root: Path, lines: list[str] | None = None) -> tuple[Context, FakeCluster, FakeRegistry]:
    """A Context over the repository at `root` with an in-memory cluster and registry; progress
    lines go to `lines` when given."""
    import git

    from pipeline import config
    from pipeline.context import Context
    from pipeline.gitops.git import GitRepo
    from pipeline.gitops.workspace import Workspace

    cluster = FakeCluster()
    # The images were built from the project's first commit (their revision label says so).
    first = git.Repo(root).git.rev_list("--max-parents=0", "HEAD").split()[0]
    registry = FakeRegistry({("hellok8s", "1111111"): DIGEST_GOOD, ("hellok8s-never-ready", "1111111"): DIGEST_BAD,
                             ("hellok8s-other", "1111111"): DIGEST_OTHER}, revision=first)
    signer = FakeSigner()  # ctx.signer()
    cfg = config.load(root, environ={})
    # The registry and cosign have no Protocol of their own yet (only the cluster has: ClusterApi),
    # so their fakes are cast; mypy holds FakeCluster to ClusterApi.
    ctx = Context(cfg, Workspace(cfg.root, GitRepo(cfg.root)), connect=lambda _env: cluster,
                  open_registry=lambda _host: cast("Registry", registry), open_signer=lambda: cast("Cosign", signer),
                  progress=(lines.append if lines is not None else print))
    return ctx, cluster, registry


if TYPE_CHECKING:
    def _both_are_cluster_apis(real: Cluster, fake: FakeCluster) -> tuple[ClusterApi, ClusterApi]:
        """Never called: mypy (make lint) fails here when either drifts from the Protocol."""
        return real, fake
