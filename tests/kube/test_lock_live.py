"""The environment lock against the real API server: a Lease stolen mid-run stops the run before
its next change, and the object it would have changed is left alone."""

from __future__ import annotations

import time

import pytest

from pipeline.errors import LockError
from pipeline.kube.apply import reconcile
from pipeline.kube.client import ApiError, Cluster
from pipeline.kube.lock import EnvironmentLock, LockOptions

pytestmark = pytest.mark.cluster


def test_a_lease_stolen_mid_run_stops_the_run(kubeconfig, namespace):
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    ours, thief = Cluster(kubeconfig), Cluster(kubeconfig)
    try:
        with EnvironmentLock(ours, "dev", namespace, LockOptions(renew_every=0.2)) as lock:
            reconcile(ours, "dev", namespace, [config])
            for _ in range(20):  # the holder renews every 0.2 s: a replace may lose the race, so retry
                lease = thief.get("coordination.k8s.io/v1", "Lease", "ship-lock-dev", namespace)
                lease["spec"]["holderIdentity"] = "ship/another-runner/4242/stolen"
                try:
                    thief.replace(lease)
                    break
                except ApiError as exc:
                    if exc.status != 409:
                        raise
            deadline = time.monotonic() + 10
            while not lock.lost and time.monotonic() < deadline:
                time.sleep(0.1)
            with pytest.raises(LockError, match="now held by ship/another-runner/4242/stolen"):
                reconcile(ours, "dev", namespace, [{**config, "data": {"a": "2"}}])
        assert thief.get("v1", "ConfigMap", "c", namespace)["data"] == {"a": "1"}
        # The thief's lease is not ours to delete on the way out.
        assert thief.get("coordination.k8s.io/v1", "Lease", "ship-lock-dev", namespace)["spec"]["holderIdentity"] \
            == "ship/another-runner/4242/stolen"
    finally:
        ours.close()
        thief.close()
