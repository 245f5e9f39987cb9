"""pipeline/refs.py: an object's subject line and JSON-pointer escaping (RFC 6901)."""

from __future__ import annotations

import pytest

from pipeline.refs import escape, pointer, subject


@pytest.mark.parametrize("obj, expected", [
    ({"kind": "Deployment", "metadata": {"name": "web", "namespace": "dev"}}, "Deployment/dev/web"),
    ({"kind": "Namespace", "metadata": {"name": "dev"}}, "Namespace/dev"),
    ({"kind": "ClusterRole", "metadata": {"name": "reader", "namespace": None}}, "ClusterRole/reader"),
    ({"metadata": {"name": "web"}}, "/web"),
    ({}, "/"),
])
def test_subject(obj, expected):
    assert subject(obj) == expected


@pytest.mark.parametrize("key, expected", [
    ("ship.dev/track", "ship.dev~1track"), ("a~b", "a~0b"), ("~1", "~01"), ("a/~", "a~1~0"), ("plain", "plain"),
])
def test_escape_turns_tilde_first_then_slash(key, expected):
    assert escape(key) == expected


def test_pointer_joins_escaped_keys():
    assert pointer("spec", "selector", "matchLabels", "ship.dev/track") == "/spec/selector/matchLabels/ship.dev~1track"
    assert pointer("spec", "containers", 0, "image") == "/spec/containers/0/image"
    assert pointer() == ""
