"""Live traffic weights as read back from routing objects and Deployments, pure."""

from pipeline.config import CanaryPolicy
from pipeline.gitops import routing
from pipeline.state.traffic import replica_weights, weights_text


def test_httproute_weights():
    route = routing.http_route(CanaryPolicy(), "hellok8s", 3000, 10)
    assert routing.live_weights([route]) == {"hellok8s": 90, "hellok8s-canary": 10}


def test_nginx_stable_takes_what_the_canary_does_not():
    policy = CanaryPolicy(router="nginx")
    objects = [routing.ingress(policy, "hellok8s", 3000), routing.ingress(policy, "hellok8s", 3000, 25)]
    assert routing.live_weights(objects) == {"hellok8s": 75, "hellok8s-canary": 25}


def test_replica_shares():
    deps = [{"metadata": {"name": "hellok8s"}, "spec": {"replicas": 3}},
            {"metadata": {"name": "hellok8s-canary"}, "spec": {"replicas": 1}}]
    assert replica_weights(deps) == {"hellok8s": 75, "hellok8s-canary": 25}
    assert weights_text(replica_weights(deps)) == "hellok8s 75%, hellok8s-canary 25%"
    assert weights_text({}) == "no routes"
