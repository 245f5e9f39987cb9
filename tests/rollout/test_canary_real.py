"""The canary judge on real pods: ship's HTTP analysis reaches the canary and the stable through the
API server's service proxy (as it would from a CI runner outside the cluster), compares them over
the same window, and aborts a canary that answers 12% of requests with 500, or promotes a healthy
one. Real traffic meanwhile flows through the real gateway at the HTTPRoute's weights."""

from __future__ import annotations

import re
import threading
import time

import pytest

from tests.conftest import commit_all
from tests.test_real_node import (
    delete_namespaces,
    host_for,
    kubectl_json,
    load,
    new_repo,
    set_canary,
    set_config,
    ship,
    through_gateway,
    wait_routed,
)

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine]

CHECK = "http:\n  - {url: 'http://{service}.{namespace}.svc:3000/', max_latency_ms: 1000}"


def prod_with_a_canary(work, ns, local_parts, image, error_rate: str | None):
    """prod on r1; r2 (with ERROR_RATE in prod when given) released to dev and uat, ready to promote."""
    set_canary(work, f"router: gateway\ngateway: {local_parts['SHIP_GATEWAY']}\nhost: {host_for(ns)}\ninterval: 2s\n"
                     "steps:\n  - {weight: 10, bake: 30s}\n" + CHECK)
    commit_all(work, "prod: a canary judged by HTTP checks through the service proxy")
    for step in (["release", "dev", "--image", image], ["promote", "dev", "uat"], ["promote", "uat", "prod"]):
        out = ship(work, *step)
        assert out.returncode == 0, (step, out.stderr)
    set_config(work, "dev", MESSAGE="Hello again from dev")
    if error_rate:
        set_config(work, "prod", ERROR_RATE=error_rate)
    commit_all(work, "the next release")
    for step in (["release", "dev", "--image", image], ["promote", "dev", "uat"]):
        out = ship(work, *step)
        assert out.returncode == 0, (step, out.stderr)


def promote_under_load(work, gateway: str, ns: str, answers: list | None = None):
    wait_routed(gateway, ns)
    stop = threading.Event()
    loader = threading.Thread(target=load, args=(gateway, ns, stop, answers), daemon=True)
    loader.start()
    try:
        return ship(work, "promote", "uat", "prod")
    finally:
        stop.set()
        loader.join()


@pytest.mark.parametrize("error_rate", ["0.12", None], ids=["12% errors: aborted", "healthy: promoted"])
def test_the_http_judge_on_real_pods(real_node, local_parts, hellok8s_image, project_repo, tmp_path, error_rate):
    work, _, namespaces = new_repo(tmp_path, project_repo)
    ns, gateway = namespaces["prod"], local_parts["SHIP_GATEWAY_URL"]
    try:
        prod_with_a_canary(work, ns, local_parts, hellok8s_image, error_rate)
        r1 = kubectl_json("-n", ns, "get", "deployment", "hellok8s")["metadata"]["annotations"]["ship.dev/release"]
        answers: list[tuple[int, str | None]] = []
        out = promote_under_load(work, gateway, ns, answers)
        rounds = [line for line in out.stderr.splitlines() if "analysis round" in line]
        print("\n".join(rounds[-2:]))
        assert rounds and all(f"http GET http://hellok8s-canary.{ns}.svc:3000/" in line for line in rounds)
        assert all(re.search(r"canary \d+/\d+ errors .* vs stable \d+/\d+", line) for line in rounds), rounds
        if error_rate:
            assert out.returncode != 0, out.stderr
            assert "[FAIL]" in rounds[-1] and "confidence" in rounds[-1], rounds
            assert f"stable {r1} untouched" in out.stderr, out.stderr
            assert "draining: the canary keeps serving" in out.stderr, out.stderr
            # Traefik applies the route's change a moment after the API server has it: wait for
            # that (at most 15 s), then every answer must come from the stable.
            deadline = time.monotonic() + 15
            while {a.headers.get("X-Track") for a in through_gateway(gateway, ns, 10)} != {"stable"} \
                    and time.monotonic() < deadline:
                time.sleep(0.5)
            after = through_gateway(gateway, ns, 40)
            assert {(a.status_code, a.headers.get("X-Track")) for a in after} == {(200, "stable")}
        else:
            assert out.returncode == 0, out.stderr
            assert "[PASS]" in rounds[-1] and "[ok]" in rounds[-1], rounds
            stable = kubectl_json("-n", ns, "get", "deployment", "hellok8s")["metadata"]["annotations"]["ship.dev/release"]
            assert stable != r1
        # Every answer came from a pod: the canary was drained before its pods went, so the gateway
        # never sent a user to a backend with no endpoints (Traefik's own 503, without X-Track).
        assert answers and not [a for a in answers if a[1] is None], sorted(set(answers))
    finally:
        delete_namespaces(namespaces.values())
