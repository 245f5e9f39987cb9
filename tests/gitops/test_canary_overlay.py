"""Canary planning, routing manifests and analysis judgements: pure, no files, git or cluster.
(The same overlays are rendered with the real kustomize in test_canary.py.)"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline import yamlsafe
from pipeline.config import CanaryPolicy, CanaryStep, Environment, Slot
from pipeline.errors import ConfigError
from pipeline.gitops import canary_overlay as canary
from pipeline.gitops import overlay, routing
from tests.gitops.test_overlay import APP, BASE, apply_files, release

POLICY = CanaryPolicy(router="gateway", host="shop.example.com", gateway="infra/edge")
PROD = Slot(Environment(name="prod", namespace="hellok8s-prod", canary=POLICY), "hellok8s")


def stable_overlay(env: Slot = PROD) -> dict:
    rel = replace(release("r20261124-100000-aaaaaaa"), environment=env.env.name)
    return apply_files({}, overlay.plan_release({}, APP, env, rel, overlay.AppBase(BASE, "../../apps/hellok8s/base")))


def state(weight: int = 10, step: int = 0, steps=None) -> canary.CanaryState:
    rel = replace(release("r20261124-110000-bbbbbbb", {"MESSAGE": "new"}), environment="prod")
    return canary.CanaryState(rel, "uat", steps or (CanaryStep(weight, 30.0),), step, canary.Phase.RUNNING, "t0", "t0")


@pytest.mark.parametrize("weight, stable, expected", [(10, 3, 1), (50, 3, 2), (100, 3, 3), (1, 10, 1), (34, 3, 2)])
def test_canary_replicas_are_ceil_of_weight_times_stable_and_at_least_one(weight, stable, expected):
    assert canary.canary_replicas(weight, stable) == expected


def test_stable_release_with_a_gateway_router_gets_a_route_and_stable_track():
    files = stable_overlay()
    kz = yamlsafe.loads(files["kustomization.yaml"])
    assert "route.yaml" in kz["resources"]
    route = yamlsafe.loads(files["route.yaml"])
    assert route["spec"]["parentRefs"] == [{"name": "edge", "namespace": "infra"}]
    assert route["spec"]["hostnames"] == ["shop.example.com"]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "hellok8s", "port": 3000, "weight": 100}]
    ops = yamlsafe.loads(kz["patches"][0]["patch"])
    assert {"op": "add", "path": "/spec/template/metadata/labels/ship.dev~1track", "value": "stable"} in ops
    service = [p for p in kz["patches"] if p["target"]["kind"] == "Service"]
    assert service == [{"target": {"version": "v1", "kind": "Service", "name": "hellok8s",
                                   "labelSelector": "ship.dev/track!=canary"},
                        "patch": yamlsafe.dumps([{"op": "add", "path": "/spec/selector/ship.dev~1track",
                                                  "value": "stable"}])}]


def test_an_environment_without_a_canary_router_has_no_route_and_no_track():
    files = stable_overlay(Slot(Environment(name="dev", namespace="hellok8s-dev"), "hellok8s"))
    assert "route.yaml" not in files and "ship.dev~1track" not in files["kustomization.yaml"]


def test_plan_canary_adds_a_suffixed_kustomization_weights_and_state():
    current = stable_overlay()
    files = apply_files(current, canary.plan_canary(current, APP, PROD, state(), overlay.AppBase(BASE, "../../apps/hellok8s/base")))
    kz = yamlsafe.loads(files["kustomization.yaml"])
    assert kz["resources"][-2:] == ["configs/hellok8s-config-r20261124-110000-bbbbbbb.yaml", "canary"]
    sub = yamlsafe.loads(files["canary/kustomization.yaml"])
    assert sub["resources"] == ["../../../apps/hellok8s/base"] and sub["nameSuffix"] == "-canary"
    assert sub["images"][0]["newTag"] == "bbbbbbb"
    ops = yamlsafe.loads(sub["patches"][0]["patch"])
    assert {"op": "add", "path": "/spec/replicas", "value": 1} in ops
    assert {"op": "add", "path": "/spec/selector/matchLabels/ship.dev~1track", "value": "canary"} in ops
    assert {"op": "replace", "path": "/spec/template/spec/containers/0/envFrom/0/configMapRef/name",
            "value": "hellok8s-config-r20261124-110000-bbbbbbb"} in ops
    route = yamlsafe.loads(files["route.yaml"])
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "hellok8s", "port": 3000, "weight": 90},
                                                        {"name": "hellok8s-canary", "port": 3000, "weight": 10}]
    assert canary.read_state(files, PROD) == state()


def test_a_stable_release_during_a_canary_leaves_the_routing_to_the_canary():
    current = stable_overlay()
    with_canary = apply_files(current, canary.plan_canary(current, APP, PROD, state(), overlay.AppBase(BASE, "../../apps/hellok8s/base")))
    again = overlay.plan_release(with_canary, APP, PROD, state().release, overlay.AppBase(BASE, "../../apps/hellok8s/base"))
    assert "route.yaml" not in again.files
    assert "canary" in yamlsafe.loads(again.files["kustomization.yaml"])["resources"]


def test_weight_zero_then_removal_return_the_overlay_to_stable_only():
    current = stable_overlay()
    with_canary = apply_files(current, canary.plan_canary(current, APP, PROD, state(), overlay.AppBase(BASE, "../../apps/hellok8s/base")))
    zero = apply_files(with_canary, canary.plan_weight_zero(with_canary, APP, PROD, state(), BASE))
    assert [b["weight"] for b in yamlsafe.loads(zero["route.yaml"])["spec"]["rules"][0]["backendRefs"]] == [100, 0]
    stable_config = overlay.current_release(current, PROD).config
    removed = apply_files(zero, canary.plan_removed(zero, APP, PROD, BASE, stable_config))
    assert removed == current  # byte for byte the overlay before the canary


def test_nginx_router_writes_a_stable_ingress_and_a_canary_ingress_with_weight():
    env = Slot(replace(PROD.env, canary=replace(POLICY, router="nginx")), "hellok8s")
    current = stable_overlay(env)
    assert yamlsafe.loads(current["ingress.yaml"])["metadata"] == {"name": "hellok8s"}
    files = apply_files(current, canary.plan_canary(current, APP, env, state(25), overlay.AppBase(BASE, "../../apps/hellok8s/base")))
    ing = yamlsafe.loads(files["canary-ingress.yaml"])
    assert ing["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/canary": "true",
                                              "nginx.ingress.kubernetes.io/canary-weight": "25"}
    assert ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "hellok8s-canary"
    assert routing.live_weights([yamlsafe.loads(files["ingress.yaml"]), ing]) == {"hellok8s": 75, "hellok8s-canary": 25}


def test_replicas_router_needs_no_route_and_keeps_the_stable_service_selector():
    env = Slot(replace(PROD.env, canary=replace(POLICY, router="replicas")), "hellok8s")
    current = stable_overlay(env)
    files = apply_files(current, canary.plan_canary(current, APP, env, state(50), overlay.AppBase(BASE, "../../apps/hellok8s/base")))
    assert not any(p in files for p in ("route.yaml", "ingress.yaml"))
    assert "ship.dev~1track" not in files["kustomization.yaml"]  # no stable track label or selector


def test_canary_state_round_trips_and_describes_itself():
    s = replace(state(steps=(CanaryStep(10, 30), CanaryStep(50, 60))), step=1, status=canary.Phase.HELD)
    assert canary.CanaryState.parse(s.dumps(), "canary.yaml") == s
    assert s.describe() == "r20261124-110000-bbbbbbb canary 50% (step 2/2, held for a decision)"
    with pytest.raises(ConfigError, match="environments/prod/canary.yaml: not a canary state written by ship"):
        canary.CanaryState.parse("release: {}\n", "environments/prod/canary.yaml")
