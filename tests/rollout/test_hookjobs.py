"""Running hook Jobs and waiting for other workloads, against the in-memory cluster and a clock
moved by hand: the order, the skip of a Job that already ran, failure and timeout as a GateResult."""

from pipeline.clock import Clock
from pipeline.rollout import hookjobs
from pipeline.rollout.hookjobs import HookOptions
from tests.fakes import FakeCluster


class ManualClock(Clock):
    """Time that moves only when something sleeps on it."""

    def __init__(self):
        self.now_s = 1000.0

    def monotonic(self):
        return self.now_s

    def sleep(self, seconds):
        self.now_s += seconds


def job(name, deadline=None):
    spec = {"template": {"spec": {"containers": [{"name": "m", "image": "x"}]}}}
    if deadline:
        spec["activeDeadlineSeconds"] = deadline
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


class JobController(FakeCluster):
    """Finishes each Job on its second look: Complete, or Failed for the names in `failing`,
    never for the names in `stuck`."""

    def __init__(self, failing=(), stuck=()):
        super().__init__()
        self.failing, self.stuck, self.looks, self.applied = set(failing), set(stuck), {}, []

    def apply(self, obj, **kw):
        self.applied.append(obj["metadata"]["name"])
        return super().apply(obj, **kw)

    def get(self, api_version, kind, name, namespace=None):
        obj = super().get(api_version, kind, name, namespace)
        if obj is None or kind != "Job" or name in self.stuck:
            return obj
        self.looks[name] = self.looks.get(name, 0) + 1
        if self.looks[name] >= 2:
            done = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit"} if name in self.failing \
                else {"type": "Complete", "status": "True"}
            obj["status"] = {"conditions": [done], "succeeded": 0 if name in self.failing else 1}
            self.objects[self._key(api_version, kind, name, namespace)] = obj
        return obj


def test_hooks_run_in_order_and_all_pass():
    cluster = JobController()
    assert hookjobs.run_hooks(cluster, "dev", "ns", [job("a-r1"), job("b-r1")], HookOptions(clock=ManualClock())) is None
    assert cluster.applied == ["a-r1", "b-r1"]
    live = cluster.get("batch/v1", "Job", "a-r1", "ns")
    assert live["metadata"]["labels"]["ship.dev/environment"] == "dev"


def test_a_hook_that_already_ran_for_the_release_is_not_run_again():
    cluster = JobController()
    hookjobs.run_hooks(cluster, "dev", "ns", [job("a-r1")], HookOptions(clock=ManualClock()))
    lines = []
    assert hookjobs.run_hooks(cluster, "dev", "ns", [job("a-r1")], HookOptions(progress=lines.append, clock=ManualClock())) is None
    assert cluster.applied == ["a-r1"] and lines == ["hook Job/ns/a-r1 already ran for this release"]


def test_a_failed_hook_stops_the_hooks_after_it_and_names_the_job():
    cluster = JobController(failing={"a-r1"})
    result = hookjobs.run_hooks(cluster, "dev", "ns", [job("a-r1"), job("b-r1")], HookOptions(clock=ManualClock()))
    assert not result.passed and result.gate == "hook"
    assert str(result) == "Job/ns/a-r1 BackoffLimitExceeded: job failed: Job has reached the specified backoff limit"
    assert cluster.applied == ["a-r1"]


def test_a_hook_that_never_finishes_times_out_at_its_deadline_plus_slack():
    cluster = JobController(stuck={"a-r1"})
    clock = ManualClock()
    result = hookjobs.run_hooks(cluster, "dev", "ns", [job("a-r1", deadline=30)], HookOptions(clock=clock))
    assert (result.reason, result.subject) == ("Timeout", "Job/ns/a-r1")
    assert result.message.startswith("not healthy after 45s") and result.elapsed == 45
    assert hookjobs.timeout_for(job("x"), HookOptions()) == hookjobs.DEFAULT_TIMEOUT
    assert hookjobs.timeout_for(job("x", deadline=30), HookOptions(timeout=10)) == 10


def test_other_workloads_are_gated_by_their_own_rules():
    cluster = FakeCluster()
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "ns", "generation": 1},
           "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 0}}
    cluster.objects[("apps/v1", "StatefulSet", "ns", "db")] = sts
    result = hookjobs.gate_workloads(cluster, [sts], timeout=20, options=HookOptions(clock=ManualClock()))
    assert (result.passed, result.subject, result.reason) == (False, "StatefulSet/ns/db", "Timeout")
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "ns"},
            "spec": {"schedule": "0 3 * * *"}}
    assert hookjobs.gate_workloads(cluster, [cron], timeout=20, options=HookOptions(clock=ManualClock())) is None
