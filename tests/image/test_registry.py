"""Pinned image references, pure."""

import pytest

from pipeline.errors import RegistryError
from pipeline.imageref import ImageRef

DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_parse_splits_registry_path_tag_digest():
    ref = ImageRef.parse(f"127.0.0.1:15000/team/hellok8s:3f2a1bc@{DIGEST}")
    assert (ref.repository, ref.tag, ref.digest) == ("127.0.0.1:15000/team/hellok8s", "3f2a1bc", DIGEST)
    assert (ref.registry, ref.path) == ("127.0.0.1:15000", "team/hellok8s")
    assert str(ref) == f"127.0.0.1:15000/team/hellok8s:3f2a1bc@{DIGEST}"


@pytest.mark.parametrize("text", [
    "127.0.0.1:15000/hellok8s:3f2a1bc",  # no digest
    f"127.0.0.1:15000/hellok8s@{DIGEST}",  # no tag
    "127.0.0.1:15000/hellok8s:3f2a1bc@sha256:short",
    f"127.0.0.1:15000/hellok8s:bad tag@{DIGEST}",
])
def test_parse_refuses_what_is_not_pinned(text):
    with pytest.raises(RegistryError, match="is not a pinned image reference"):
        ImageRef.parse(text)
