"""Least privilege for ship: the namespaced Role and RoleBinding a deployer identity needs.

Only the verbs ship uses: server-side apply needs `create` and `patch`; diffs, health and
prune need `get`, `list`, `watch`; prune needs `delete`; the environment lock needs `leases`.
No RBAC objects, no cluster-scoped access: a platform team creates the namespace and this
Role once (`ship rbac ENV | kubectl apply -f -`), and the pipeline runs with the token.
"""

from __future__ import annotations

from pipeline import names

APPLY = ["get", "list", "watch", "create", "patch", "delete"]
READ = ["get", "list", "watch"]

RULES = [
    {"apiGroups": [""], "resources": ["configmaps", "secrets", "services", "serviceaccounts"], "verbs": APPLY},
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": READ},
    # Canary analysis reaches cluster Services through the API server's service proxy.
    {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": APPLY},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": READ},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": APPLY},
    {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": APPLY},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update", "delete"]},
]


def deployer_objects(namespace: str, service_account: str = "ship-deployer",
                     subject_namespace: str | None = None) -> list[dict]:
    """ServiceAccount, Role and RoleBinding letting `service_account` run ship in `namespace`."""
    labels = {names.APP_NAME: "ship-deployer", names.PART_OF: names.MANAGER}
    sa_ns = subject_namespace or namespace
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": service_account, "namespace": sa_ns, "labels": labels}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "ship-deployer", "namespace": namespace, "labels": labels}, "rules": RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "ship-deployer", "namespace": namespace, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ship-deployer"},
         "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": sa_ns}]},
    ]
