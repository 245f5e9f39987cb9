"""The image pull secret a sync adds: which registries, from which credentials, referenced where. Pure."""

import base64
import json

from pipeline import names
from pipeline.gitops.pull_secret import image_host, pull_secret, registry_hosts, with_references
from pipeline.image.credentials import Credential, Lookup

SECRET = "tok-123"


def deployment(image: str, pull_secrets: list | None = None) -> dict:
    spec: dict = {"containers": [{"name": "app", "image": image}]}
    if pull_secrets is not None:
        spec["imagePullSecrets"] = pull_secrets
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop"},
            "spec": {"template": {"spec": spec}}}


def lookup_with(found: dict[str, Credential]):
    return lambda host: Lookup(host, found.get(host), ("$SHIP_REGISTRY_USERNAME/SHIP_REGISTRY_PASSWORD",))


def config_of(secret: dict) -> dict:
    return json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))


def test_image_host():
    assert image_host("ghcr.io/acme/shop:1@sha256:0") == "ghcr.io"
    assert image_host("127.0.0.1:15443/shop:1") == "127.0.0.1:15443"
    assert image_host("nginx:1.27") == "docker.io" and image_host("library/nginx") == "docker.io"


def test_hosts_of_every_pod_spec():
    cron = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "initContainers": [{"name": "i", "image": "quay.io/x/y:1"}], "containers": [{"name": "c", "image": "busybox"}]}}}}}}
    objects = [deployment("ghcr.io/acme/shop:1"), cron, {"kind": "ConfigMap", "metadata": {"name": "c"}}]
    assert registry_hosts(objects) == ["docker.io", "ghcr.io", "quay.io"]


def test_secret_from_the_credentials_found():
    objects = [deployment("ghcr.io/acme/shop:1"), deployment("quay.io/x/y:1")]
    secret = pull_secret("shop-dev", objects, lookup_with({"ghcr.io": Credential("$GITHUB_TOKEN", "bot", SECRET)}), None)
    assert secret is not None
    assert (secret["type"], secret["metadata"]["name"]) == ("kubernetes.io/dockerconfigjson", names.PULL_SECRET)
    auths = config_of(secret)["auths"]
    assert list(auths) == ["ghcr.io"]
    assert auths["ghcr.io"]["auth"] == base64.b64encode(f"bot:{SECRET}".encode()).decode()


def test_no_credentials_keeps_the_live_secret_or_makes_none():
    objects = [deployment("ghcr.io/acme/shop:1")]
    live = {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "e30="}}
    kept = pull_secret("shop-dev", objects, lookup_with({}), live)
    assert kept is not None and kept["data"] == {".dockerconfigjson": "e30="}
    assert pull_secret("shop-dev", objects, lookup_with({}), None) is None


def test_identity_tokens_are_left_out():
    token = Credential("~/.docker/config.json", identity_token="rt.1")
    assert pull_secret("d", [deployment("ghcr.io/a:1")], lookup_with({"ghcr.io": token}), None) is None


def test_references_added_once_and_others_kept():
    objects = [deployment("ghcr.io/a:1", [{"name": "theirs"}]), deployment("ghcr.io/a:1", [{"name": names.PULL_SECRET}]),
               {"kind": "Service", "metadata": {"name": "s"}}]
    out = with_references(objects)
    assert out[0]["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "theirs"}, {"name": names.PULL_SECRET}]
    assert out[1]["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": names.PULL_SECRET}]
    assert "imagePullSecrets" not in objects[0]["spec"]["template"]["spec"] or \
        objects[0]["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "theirs"}]  # the input is not changed
    assert out[2] is objects[2]
