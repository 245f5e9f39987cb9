#!/usr/bin/env python3
"""Push a one-layer FROM-scratch image made of local files to a plain-HTTP registry.

Used for the pod sandbox (pause) image of ship's real node: it needs no build engine, so the
real node does not depend on podman, and it uses only the standard library, so it runs before
ship's virtualenv exists. The layer is a reproducible gzip tar (fixed owner and mtime), so the
same binary always gives the same digest. Uploads are monolithic (POST, then PUT with the digest).

  oci_push.py 127.0.0.1:15000 pause:3.10 /path/to/pause:/pause --entrypoint /pause

Prints the pushed reference with its manifest digest.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import sys
import tarfile
import urllib.error
import urllib.request

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: list[tuple[str, str]]) -> tuple[bytes, bytes]:
    """(uncompressed tar, gzip of it) holding each SRC at DST."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for src, dst in files:
            info = tar.gettarinfo(src, arcname=dst.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with open(src, "rb") as f:
                tar.addfile(info, f)
    plain = raw.getvalue()
    return plain, gzip.compress(plain, mtime=0)


def call(method: str, url: str, data: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def push_blob(base: str, repo: str, blob: bytes) -> str:
    d = digest(blob)
    if call("HEAD", f"{base}/v2/{repo}/blobs/{d}")[0] == 200:
        return d
    status, headers, body = call("POST", f"{base}/v2/{repo}/blobs/uploads/")
    if status != 202:
        sys.exit(f"oci_push: starting an upload to {base}/{repo} failed: {status} {body[:200]!r}")
    location = headers["Location"]
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    status, _, body = call("PUT", f"{location}{sep}digest={d}", blob, {"Content-Type": "application/octet-stream"})
    if status not in (201, 204):
        sys.exit(f"oci_push: uploading {d} to {base}/{repo} failed: {status} {body[:200]!r}")
    return d


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("registry", help="host:port of a plain-HTTP registry")
    p.add_argument("image", help="repository:tag")
    p.add_argument("files", nargs="+", help="SRC:DST, a file to put in the image")
    p.add_argument("--entrypoint", required=True)
    a = p.parse_args()
    repo, tag = a.image.rsplit(":", 1)
    plain, gz = layer([tuple(f.split(":", 1)) for f in a.files])
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": [a.entrypoint], "Env": ["PATH=/"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(plain)]},
    }, sort_keys=True).encode()
    base = f"http://{a.registry}"
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": push_blob(base, repo, config), "size": len(config)},
        "layers": [{"mediaType": LAYER, "digest": push_blob(base, repo, gz), "size": len(gz)}],
    }, sort_keys=True).encode()
    status, _, body = call("PUT", f"{base}/v2/{repo}/manifests/{tag}", manifest, {"Content-Type": MANIFEST})
    if status != 201:
        sys.exit(f"oci_push: pushing the manifest of {a.image} failed: {status} {body[:300]!r}")
    print(f"{a.registry}/{repo}:{tag}@{digest(manifest)}")


if __name__ == "__main__":
    main()
