"""What `ship build` trusts, pure or against a canned registry: build steps run without ship's
secrets and their failures print none; every registry document is checked against its digest;
tags carry the full commit sha."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import httpx
import pytest

from pipeline.config.model import App
from pipeline.errors import BuildError, RegistryError
from pipeline.image.engine import image_tag, run_build_steps, step_environment
from pipeline.image.registry import Registry

SECRET = "hunter2-very-secret"


def test_a_tag_carries_the_full_commit_sha():
    sha = "0123456789abcdef" * 2 + "01234567"
    assert image_tag(sha) == sha and image_tag(sha, "abcdef012345") == f"{sha}-dirty-abcdef012345"


def test_build_steps_get_an_allow_listed_environment():
    environ = {"PATH": "/usr/bin", "HOME": "/h", "GOCACHE": "/c", "CGO_ENABLED": "0", "SHIP_SECRET_WEB_TOKEN": SECRET,
               "SHIP_COSIGN_KEY": "-----BEGIN", "COSIGN_PASSWORD": SECRET, "GITHUB_TOKEN": SECRET, "KUBECONFIG": "/k"}
    assert step_environment(environ, "t1") == {"PATH": "/usr/bin", "HOME": "/h", "GOCACHE": "/c", "CGO_ENABLED": "0",
                                               "SHIP_TAG": "t1"}


def test_a_failing_build_step_sees_and_prints_no_secret(tmp_path, monkeypatch):
    """Reproduction: a step that fails after printing its environment, plainly and in base64."""
    monkeypatch.setenv("SHIP_SECRET_WEB_TOKEN", SECRET)
    monkeypatch.setenv("COSIGN_PASSWORD", SECRET)
    (tmp_path / "web").mkdir()
    (tmp_path / "leak").write_text(SECRET)  # a secret the step reads from elsewhere is blanked too
    step = f"env; env | base64 -w0; cat {tmp_path / 'leak'}; cat {tmp_path / 'leak'} | base64; exit 3"
    app = App("web", Path("web"), "web", build=(step,))
    with pytest.raises(BuildError) as raised:
        run_build_steps(app, tmp_path, "t1", lambda _line: None)
    message = str(raised.value)
    assert message.startswith("web: build step failed (exit 3): env;")
    assert "SHIP_SECRET" not in message and "COSIGN_PASSWORD" not in message and SECRET not in message
    assert base64.b64encode(SECRET.encode()).decode().rstrip("=") not in message and "SHIP_TAG=t1" in message


def _registry(documents: dict[str, bytes]) -> Registry:
    def answer(request: httpx.Request) -> httpx.Response:
        body = documents.get(request.url.path)
        return httpx.Response(200, content=body) if body is not None else httpx.Response(404)
    return Registry("127.0.0.1:5000", transport=httpx.MockTransport(answer))


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _image(config: bytes, served_config: bytes | None = None) -> tuple[dict[str, bytes], str]:
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": _digest(config)}}).encode()
    return {f"/v2/web/manifests/{_digest(manifest)}": manifest,
            f"/v2/web/blobs/{_digest(config)}": served_config if served_config is not None else config}, _digest(manifest)


def test_labels_come_from_a_config_blob_that_hashes_to_its_digest():
    config = json.dumps({"config": {"Labels": {"org.opencontainers.image.revision": "a" * 40}}}).encode()
    documents, digest = _image(config)
    assert _registry(documents).labels("web", digest) == {"org.opencontainers.image.revision": "a" * 40}


def test_a_config_blob_that_does_not_hash_to_its_digest_is_refused():
    """Reproduction: a registry serves another config (another revision label) under the digest."""
    config = json.dumps({"config": {"Labels": {"org.opencontainers.image.revision": "a" * 40}}}).encode()
    forged = json.dumps({"config": {"Labels": {"org.opencontainers.image.revision": "b" * 40}}}).encode()
    documents, digest = _image(config, served_config=forged)
    with pytest.raises(RegistryError, match=f"GET /v2/web/blobs/{_digest(config)}: the content does not hash to"):
        _registry(documents).labels("web", digest)
