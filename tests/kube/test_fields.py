"""Taking over kubectl's fields, pure: managedFields and objects in, new ones out."""

from pipeline.kube import fields

SET_ENV = {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"app"}': {
    "f:env": {".": {}, 'k:{"name":"FAIL_MODE"}': {".": {}, "f:name": {}, "f:value": {}}}}}}}}}
SHIP = {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {'k:{"name":"app"}': {
    ".": {}, "f:image": {}, "f:name": {}}}}}}}


def deployment(env=None, managed=None):
    container = {"name": "app", "image": "img", **({"env": env} if env is not None else {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "managedFields": managed or []},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [container]}}}}


LIVE = deployment([{"name": "FAIL_MODE", "value": "errors"}],
                  [{"manager": "ship", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": SHIP},
                   {"manager": "kubectl-set", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                    "fieldsV1": SET_ENV},
                   {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "fieldsV1": {}}])


def test_foreign_fields_are_the_union_of_the_takeover_managers():
    assert fields.foreign_fields(LIVE, fields.TAKEOVER) == SET_ENV
    assert fields.foreign_fields(LIVE, ("kubectl-edit",)) == {}


def test_taken_over_folds_them_into_ships_apply_entry_and_keeps_the_others():
    entries = fields.taken_over(LIVE, fields.TAKEOVER, "ship")
    assert [e["manager"] for e in entries] == ["ship", "kube-controller-manager"]
    assert entries[0]["operation"] == "Apply" and entries[0]["fieldsV1"] == fields.merge(SHIP, SET_ENV)


def test_strip_removes_what_git_does_not_set_and_keeps_what_it_does():
    desired = deployment()
    assert fields.strip(LIVE, SET_ENV, desired)["spec"]["template"]["spec"]["containers"][0] == {
        "name": "app", "image": "img"}
    in_git = deployment([{"name": "FAIL_MODE", "value": "errors"}])
    assert fields.strip(LIVE, SET_ENV, in_git)["spec"] == LIVE["spec"]  # git sets it too: nothing to remove
    labels = {"metadata": {"name": "x", "labels": {"team": "a", "app": "x"}}}
    assert fields.strip(labels, {"f:metadata": {"f:labels": {"f:team": {}}}}, {"metadata": {"labels": {"app": "x"}}}) == \
        {"metadata": {"name": "x", "labels": {"app": "x"}}}
