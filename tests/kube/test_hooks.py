"""Release hooks, pure: which objects are hooks, their phase and order, and each release's Job name."""

import pytest

from pipeline import names
from pipeline.errors import ValidationError
from pipeline.kube import hooks
from pipeline.kube.hooks import Phase


def job(name, notes=None, app="web"):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": {names.APP_LABEL: app}, "annotations": dict(notes or {})},
            "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "x"}]}}}}


def deployment(name, release, app="web"):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {names.APP_LABEL: app}, "annotations": {names.RELEASE: release}},
            "spec": {}}


@pytest.mark.parametrize("notes, phase", [
    ({}, None),
    ({hooks.HELM_HOOK: "pre-install,pre-upgrade"}, Phase.PRE),
    ({hooks.HELM_HOOK: "pre-upgrade"}, Phase.PRE),
    ({hooks.HELM_HOOK: "post-install, post-upgrade"}, Phase.POST),
    ({hooks.HELM_HOOK: "pre-install,post-upgrade"}, Phase.PRE),
    ({hooks.HELM_HOOK: "test"}, False),
    ({hooks.HELM_HOOK: "pre-delete"}, False),
    ({names.HOOK: "pre-release"}, Phase.PRE),
    ({names.HOOK: "post-release"}, Phase.POST),
])
def test_phase_of(notes, phase):
    assert hooks.phase_of(job("migrate", notes)) == phase


@pytest.mark.parametrize("notes, field", [
    ({names.HOOK: "before"}, "ship.dev/hook: 'before'"),
    ({hooks.HELM_HOOK: "pre-instal"}, "unknown hook 'pre-instal'"),
    ({hooks.HELM_HOOK: "pre-install", hooks.HELM_WEIGHT: "first"}, "'first' is not an integer"),
])
def test_bad_annotations_name_the_object(notes, field):
    with pytest.raises(ValidationError, match=f"^Job/migrate: annotation .*{field}"):
        hooks.split(hooks.prepare([job("migrate", notes)]))


def test_job_name_carries_the_release_and_fits_a_label():
    assert hooks.job_name("migrate", "r20261207-202832-abc1234") == "migrate-r20261207-202832-abc1234"
    assert hooks.job_name("migrate", "r20261207-202832-abc1234.2") == "migrate-r20261207-202832-abc1234-2"
    long = hooks.job_name("a" * 60, "r20261207-202832-abc1234")
    assert len(long) == 63 and long.endswith("-r20261207-202832-abc1234")


def test_prepare_renames_hook_jobs_by_their_apps_release_and_leaves_out_other_hooks():
    objects = [deployment("web", "r1-aaa"), deployment("api", "r2-bbb", app="api"),
               job("migrate", {hooks.HELM_HOOK: "pre-upgrade", hooks.HELM_WEIGHT: "1"}),
               job("seed", {names.HOOK: "pre-release"}, app="api"),
               job("smoke", {hooks.HELM_HOOK: "test"}), job("plain")]
    out = {o["metadata"]["name"]: o for o in hooks.prepare(objects)}
    assert sorted(out) == ["api", "migrate-r1-aaa", "plain", "seed-r2-bbb", "web"]
    notes = out["migrate-r1-aaa"]["metadata"]["annotations"]
    assert notes == {names.HOOK: "pre-release", names.RELEASE: "r1-aaa", hooks.HELM_WEIGHT: "1"}  # helm.sh/hook dropped


def test_a_canary_release_names_the_hooks_and_its_copy_of_the_base_runs_none():
    copy = job("migrate-canary", {names.HOOK: "pre-release"})
    copy["metadata"]["labels"][names.TRACK] = names.CANARY
    objects = [deployment("web", "r1-aaa"), deployment("web-canary", "r2-bbb"), job("migrate", {names.HOOK: "pre-release"}),
               copy]
    assert [o["metadata"]["name"] for o in hooks.prepare(objects)] == ["web", "web-canary", "migrate-r2-bbb"]


def test_a_hook_of_no_known_release_is_named_by_its_content():
    first = hooks.prepare([job("migrate", {names.HOOK: "pre-release"})])[0]["metadata"]["name"]
    again = hooks.prepare([job("migrate", {names.HOOK: "pre-release"})])[0]["metadata"]["name"]
    changed = job("migrate", {names.HOOK: "pre-release"})
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "y"
    assert first == again != hooks.prepare([changed])[0]["metadata"]["name"]
    assert first.startswith("migrate-h")


def test_split_orders_by_weight_then_name_and_keeps_non_job_hooks_with_the_rest():
    sa = {"apiVersion": "v1", "kind": "ServiceAccount",
          "metadata": {"name": "migrator", "annotations": {hooks.HELM_HOOK: "pre-install", hooks.HELM_WEIGHT: "-5"}}}
    objects = hooks.prepare([deployment("web", "r1"), sa,
                             job("b-migrate", {hooks.HELM_HOOK: "pre-install"}),
                             job("a-migrate", {hooks.HELM_HOOK: "pre-install", hooks.HELM_WEIGHT: "5"}),
                             job("c-first", {hooks.HELM_HOOK: "pre-install", hooks.HELM_WEIGHT: "-1"}),
                             job("notify", {names.HOOK: "post-release"})])
    plan = hooks.split(objects)
    assert [o["metadata"]["name"] for o in plan.pre] == ["c-first-r1", "b-migrate-r1", "a-migrate-r1"]
    assert [o["metadata"]["name"] for o in plan.post] == ["notify-r1"]
    assert [o["metadata"]["name"] for o in plan.objects] == ["web", "migrator"]
    assert plan.pre_objects == (sa,)


def test_split_of_objects_without_hooks_is_the_objects():
    objects = [deployment("web", "r1"), job("plain")]
    assert hooks.split(hooks.prepare(objects)) == hooks.HookPlan(objects=tuple(objects))


def test_a_sync_never_prunes_the_hook_jobs_that_ran():
    from pipeline.kube import ownership
    from pipeline.kube import plan as planning

    ran = ownership.with_ownership({**hooks.prepare([deployment("web", "r1"), job("migrate", {names.HOOK: "pre-release"})])[1],
                                   "metadata": {"name": "migrate-r1", "namespace": "ns",
                                                "annotations": {names.HOOK: "pre-release"}}}, "dev")
    plain = ownership.with_ownership({**job("old-batch"), "metadata": {"name": "old-batch", "namespace": "ns"}}, "dev")
    live = {planning.key(o): o for o in (ran, plain)}
    made = planning.make_plan([], live, "dev")
    assert [o["metadata"]["name"] for o in made.prune] == ["old-batch"]
