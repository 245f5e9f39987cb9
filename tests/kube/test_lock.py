"""The environment lock on an in-memory cluster: a stolen or unrenewable lease stops the run
before its next change. tests/kube/test_lock_live.py steals a real Lease mid-run."""

from __future__ import annotations

import time

import pytest

from pipeline.errors import LockError
from pipeline.kube.apply import reconcile
from pipeline.kube.lock import EnvironmentLock, LockOptions, check_held
from tests.fakes import FakeCluster

CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}


def steal(cluster: FakeCluster, namespace: str) -> None:
    lease = cluster.get("coordination.k8s.io/v1", "Lease", "ship-lock-dev", namespace)
    lease["spec"]["holderIdentity"] = "ship/elsewhere/1/thief"
    cluster.replace(lease)


def wait_lost(lock: EnvironmentLock) -> None:
    deadline = time.monotonic() + 5
    while not lock.lost and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_stolen_lease_stops_the_next_change_and_says_who_holds_it():
    cluster = FakeCluster()
    with EnvironmentLock(cluster, "dev", "ns", LockOptions(renew_every=0.05)) as lock:
        reconcile(cluster, "dev", "ns", [CONFIG])  # held: applies
        steal(cluster, "ns")
        wait_lost(lock)
        with pytest.raises(LockError, match="dev: lost the environment's lock \\(Lease ns/ship-lock-dev is now held by "
                                            "ship/elsewhere/1/thief\\); stopped before the next change"):
            reconcile(cluster, "dev", "ns", [{**CONFIG, "data": {"a": "2"}}])
    assert cluster.get("v1", "ConfigMap", "c", "ns")["data"] == {"a": "1"}
    check_held("ns")  # released: nothing is held, nothing to check


class Unreachable(FakeCluster):
    def replace(self, obj):
        if obj["kind"] == "Lease" and getattr(self, "down", False):
            raise OSError("connection refused")
        return super().replace(obj)


def test_a_lease_that_cannot_be_renewed_until_it_expires_is_lost():
    cluster = Unreachable()
    with EnvironmentLock(cluster, "dev", "ns", LockOptions(renew_every=0.05, duration=1)) as lock:
        cluster.down = True
        wait_lost(lock)
        with pytest.raises(LockError, match="not renewed for 1s \\(connection refused\\)"):
            check_held("ns")
