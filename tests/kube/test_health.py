"""Health assessment: one YAML fixture per object state, each checked for (code, reason)."""

from pathlib import Path

import pytest
import yaml

from pipeline.kube import health
from pipeline.kube.health import Health, HealthCode

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "health"

H, P, D, S, U = (
    HealthCode.HEALTHY,
    HealthCode.PROGRESSING,
    HealthCode.DEGRADED,
    HealthCode.SUSPENDED,
    HealthCode.UNKNOWN,
)


def load(name: str) -> dict:
    return yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())


EXPECTED = {
    "deployment-paused": (S, "Paused"),
    "deployment-unobserved": (P, "NotObserved"),
    "deployment-deadline-exceeded": (D, "ProgressDeadlineExceeded"),
    "deployment-updating": (P, "Updating"),
    "deployment-old-replicas": (P, "OldReplicas"),
    "deployment-unavailable": (P, "NotAvailable"),
    "deployment-healthy": (H, ""),
    "deployment-scaled-to-zero": (H, ""),
    "pod-crashloop": (D, "CrashLoopBackOff"),
    "pod-imagepull": (D, "ImagePullBackOff"),
    "pod-init-crashloop": (D, "CrashLoopBackOff"),
    "pod-config-error": (D, "CreateContainerConfigError"),
    "pod-restarts": (D, "Restarts"),
    "pod-not-ready": (P, "NotReady"),
    "pod-unschedulable": (P, "NotReady"),
    "pod-ready": (H, ""),
    "pod-failed": (D, "Failed"),
    "pod-evicted": (D, "Evicted"),
    "pod-succeeded": (H, ""),
    "pod-terminating": (P, "Terminating"),
    "replicaset-unobserved": (P, "NotObserved"),
    "replicaset-failure": (D, "FailedCreate"),
    "replicaset-unavailable": (P, "NotAvailable"),
    "replicaset-healthy": (H, ""),
    "statefulset-unobserved": (P, "NotObserved"),
    "statefulset-not-ready": (P, "NotReady"),
    "statefulset-updating": (P, "Updating"),
    "statefulset-partition-done": (H, ""),
    "statefulset-revision-pending": (P, "Updating"),
    "statefulset-ondelete": (H, ""),
    "statefulset-healthy": (H, ""),
    "daemonset-unobserved": (P, "NotObserved"),
    "daemonset-updating": (P, "Updating"),
    "daemonset-unavailable": (P, "NotAvailable"),
    "daemonset-ondelete": (H, ""),
    "daemonset-healthy": (H, ""),
    "namespace-active": (H, ""),
    "namespace-terminating": (P, "Terminating"),
    "service": (H, ""),
    "httproute": (H, ""),
    "job-complete": (H, ""),
    "job-failed": (D, "BackoffLimitExceeded"),
    "job-failure-target": (D, "DeadlineExceeded"),
    "job-running": (P, "Running"),
    "job-suspended": (S, "Suspended"),
    "cronjob-healthy": (H, ""),
    "cronjob-suspended": (S, "Suspended"),
    "cronjob-last-failed": (D, "LastRunFailed"),
    "cronjob-never-run": (H, ""),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_state(name):
    result = health.assess(load(name))
    assert (result.code, result.reason) == EXPECTED[name]


def test_every_fixture_is_checked():
    assert sorted(p.stem for p in FIXTURES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize(
    "name, message",
    [
        ("deployment-updating", "2/3 updated, 1/3 ready"),
        ("deployment-updating", "2 out of 3 new replicas have been updated"),
        ("deployment-old-replicas", "1 old replicas are pending termination"),
        ("deployment-unavailable", "2 of 3 updated replicas are available"),
        ("deployment-deadline-exceeded", 'deployment "hellok8s" exceeded its progress deadline'),
        ("deployment-paused", "1/3 updated, 3/3 ready"),
        ("deployment-unobserved", "waiting for rollout to be observed"),
        ("statefulset-not-ready", "Waiting for 1 pods to be ready"),
        ("statefulset-updating", "1 out of 3 new pods have been updated"),
        ("daemonset-updating", "1/2 updated, 1/2 ready"),
        ("replicaset-failure", "exceeded quota"),
        ("pod-crashloop", "container app: CrashLoopBackOff (back-off 1m20s restarting"),
        ("pod-crashloop", "after 4 restarts"),
        ("pod-init-crashloop", "init container migrate: CrashLoopBackOff"),
        ("pod-imagepull", 'container app: ImagePullBackOff (Back-off pulling image "127.0.0.1'),
        ("pod-restarts", "container app restarted 5 times (more than 3), last: OOMKilled"),
        ("pod-unschedulable", "pending, 0/1 containers ready: 0/1 nodes are available"),
        ("pod-failed", "smoke exited 2"),
        ("pod-evicted", "The node was low on resource: memory."),
    ],
)
def test_message_says(name, message):
    assert message in health.assess(load(name)).message


def test_healthy_messages_are_the_counts():
    assert health.assess(load("deployment-healthy")).message == "3/3 updated, 3/3 ready"
    assert health.assess(load("deployment-scaled-to-zero")).message == "0/0 updated, 0/0 ready"
    assert health.assess(load("daemonset-healthy")).message == "2/2 updated, 2/2 ready"


def test_deployment_defaults_missing_fields():
    unobserved = {"kind": "Deployment", "metadata": {"name": "x", "generation": 1}}
    result = health.assess_deployment(unobserved)
    assert (result.code, result.reason) == (P, "NotObserved")
    result = health.assess_deployment({"kind": "Deployment", "metadata": {"name": "x"}})
    assert (result.code, result.reason, result.message) == (
        P,
        "Updating",
        "Waiting for rollout to finish: 0 out of 1 new replicas have been updated "
        "(0/1 updated, 0/1 ready)",
    )


def test_pod_restart_limit_is_a_parameter():
    pod = load("pod-restarts")
    assert health.assess_pod(pod).reason == "Restarts"
    assert health.assess_pod(pod, max_restarts=5).code is H


def test_ok_and_subject():
    result = health.assess(load("deployment-healthy"))
    assert result.ok and result.subject == "Deployment/prod/hellok8s"
    assert not health.assess(load("deployment-updating")).ok
    assert health.assess(load("pod-ready")).subject == "Pod/prod/hellok8s-7d9f8c6b5-r2d2a"
    assert health.subject(load("namespace-active")) == "Namespace/prod"


def test_unknown_kinds_are_none():
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert health.assess(widget) is None
    assert health.assess({"metadata": {"name": "no-kind"}}) is None


def test_kinds_reused_by_crds_are_none():
    knative = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "s"}}
    assert health.assess(knative) is None


def test_list_items_without_api_version_dispatch_by_kind():
    item = load("deployment-healthy")
    del item["apiVersion"]
    assert health.assess(item).ok


def test_worst():
    def h(code):
        return Health(code, code.value)

    assert health.worst([]) is None
    assert health.worst([h(H), h(P), h(D), h(S)]).code is D
    assert health.worst([h(H), h(S), h(P)]).code is P
    assert health.worst([h(U), h(S), h(H)]).code is S
    assert health.worst([h(H), h(U)]).code is U
    assert health.worst(iter([h(H)])).code is H
    first, second = Health(D, "first"), Health(D, "second")
    assert health.worst([first, second]) is first
