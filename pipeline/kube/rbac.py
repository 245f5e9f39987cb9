"""Least privilege for ship: the namespaced Role and RoleBinding a deployer identity needs, and
the admission policy that refuses what RBAC alone cannot.

Only the verbs ship uses: server-side apply needs `create` and `patch`; diffs, health and
prune need `get`, `list`, `watch`; prune needs `delete`. Secrets are the exception: the deployer
may `get`, `patch` and `delete` only the Secrets ship writes (by name: each app's `<app>-secrets`
and the registry pull secret) and `create` them, never `list` or `watch` a namespace's Secrets, so
it can never read a token it did not write. It may not delete ServiceAccounts, and it holds only
its own environment's Lease. No RBAC objects, no cluster-scoped access: a platform team
creates the namespace and these objects once (`ship rbac ENV | kubectl apply -f -`).

RBAC cannot say "no hostPath" or "no token Secret for another ServiceAccount": a built-in
ValidatingAdmissionPolicy, matched to the deployer's user alone, refuses service-account-token
Secrets, Services with externalIPs, and pods (in Pods, workloads, Jobs and CronJobs) that are
privileged, share the host's PID, IPC or network namespaces, mount a hostPath, or run as a
ServiceAccount other than `default` or one named after an app. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline import names

APPLY = ["get", "list", "watch", "create", "patch", "delete"]
READ = ["get", "list", "watch"]
ADMISSION = "admissionregistration.k8s.io/v1"

RULES = [
    {"apiGroups": [""], "resources": ["configmaps", "services"], "verbs": APPLY},
    {
        "apiGroups": [""],
        "resources": ["serviceaccounts"],
        "verbs": ["get", "list", "watch", "create", "patch"],
    },
    # create cannot be limited by name (the name is in the body, not the URL); the policy below
    # refuses a token Secret, and get/patch stay limited to ship's own Secrets (secret_rules).
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": READ},
    # Canary analysis reaches cluster Services through the API server's service proxy.
    {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "daemonsets"],
        "verbs": APPLY,
    },
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": READ},
    # Release hooks (kube/hooks.py) and the Jobs and CronJobs a base or chart brings.
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": APPLY},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": APPLY},
    {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": APPLY},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
]


def secret_names(apps: Iterable[tuple[str, bool]]) -> list[str]:
    """The Secrets ship writes: `<app>-secrets` of each (name, has secrets) app, and the registry
    pull secret (names.PULL_SECRET)."""
    found = [names.secret_name(app) for app, has in apps if has]
    return sorted({*found, names.PULL_SECRET})


def scoped_rules(environment: str, secrets: list[str]) -> list[dict]:
    """Rules limited by resourceNames. An empty resourceNames would mean every name: no rule
    then."""
    rules = [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [names.LEASE_PREFIX + environment],
            "verbs": ["get", "update", "delete"],
        }
    ]
    if secrets:
        # delete: a retired app's Secret is pruned like its other objects, by name.
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": secrets,
                "verbs": ["get", "patch", "delete"],
            }
        )
    return rules


def deployer_objects(
    namespace: str,
    service_account: str = "ship-deployer",
    subject_namespace: str | None = None,
    *,
    environment: str | None = None,
    secrets: Iterable[str] = (),
) -> list[dict]:
    """ServiceAccount, Role and RoleBinding letting `service_account` (in `subject_namespace`,
    by default `namespace`) run ship for `environment` (its Lease) in `namespace`."""
    labels = {names.APP_NAME: "ship-deployer", names.PART_OF: names.MANAGER}
    sa_ns = subject_namespace or namespace
    rules = RULES + scoped_rules(
        environment or namespace, sorted(set(secrets) | set(secret_names([])))
    )
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": service_account, "namespace": sa_ns, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "ship-deployer", "namespace": namespace, "labels": labels},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "ship-deployer", "namespace": namespace, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "ship-deployer",
            },
            "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": sa_ns}],
        },
    ]


def proxy_objects(
    services: Iterable[tuple[str, str, str]],
    namespace: str,
    service_account: str = "ship-deployer",
    subject_namespace: str | None = None,
) -> list[dict]:
    """A Role and RoleBinding in the namespace of each (namespace, name, port) Service the canary
    analysis of `namespace` reads through the API server's service proxy (a Prometheus elsewhere):
    `get` on that Service (ship checks it exists) and on its `services/proxy`, by name, and nothing
    else. The API server authorizes `services/NAME:PORT/proxy` (how ship asks) with resourceName
    `NAME:PORT`, and `services/NAME/proxy` with `NAME`: both are granted."""
    labels = {names.APP_NAME: "ship-deployer", names.PART_OF: names.MANAGER}
    sa_ns = subject_namespace or namespace
    by_namespace: dict[str, list[tuple[str, str]]] = {}
    for ns, service, port in services:
        by_namespace.setdefault(ns, []).append((service, port))
    out = []
    for ns, found in sorted(by_namespace.items()):
        # one per deployer: several environments may read one Prometheus
        role = f"ship-deployer-{namespace}"
        services_named = sorted({service for service, _ in found})
        proxies = sorted({*services_named, *(f"{service}:{port}" for service, port in found)})
        out += [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": role, "namespace": ns, "labels": labels},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["services"],
                        "resourceNames": services_named,
                        "verbs": ["get"],
                    },
                    {
                        "apiGroups": [""],
                        "resources": ["services/proxy"],
                        "resourceNames": proxies,
                        "verbs": ["get"],
                    },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": role, "namespace": ns, "labels": labels},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [
                    {"kind": "ServiceAccount", "name": service_account, "namespace": sa_ns}
                ],
            },
        ]
    return out


def _pod_checks(spec: str, accounts: list[str]) -> tuple[list[dict], list[dict]]:
    """(variables, validations) refusing what a pod spec at CEL path `spec` must not do."""
    groups = " + ".join(
        f"(has({spec}.{g}) ? {spec}.{g} : [])"
        for g in ("initContainers", "containers", "ephemeralContainers")
    )
    allowed = ", ".join(f"'{a}'" for a in accounts)
    variables = [{"name": "containers", "expression": groups}]
    host = " || ".join(
        f"(has({spec}.{f}) && {spec}.{f})" for f in ("hostPID", "hostIPC", "hostNetwork")
    )
    validations = [
        {
            "expression": "!variables.containers.exists(c, has(c.securityContext) "
            "&& has(c.securityContext.privileged) "
            "&& c.securityContext.privileged)",
            "message": "ship's deployer may not run a privileged container",
        },
        {
            "expression": f"!({host})",
            "message": "ship's deployer may not share the host's PID, IPC or network namespace",
        },
        {
            "expression": f"!has({spec}.volumes) || !{spec}.volumes.exists(v, has(v.hostPath))",
            "message": "ship's deployer may not mount a hostPath volume",
        },
        {
            "expression": f"(!has({spec}.serviceAccountName) || "
            f"{spec}.serviceAccountName in [{allowed}]) && "
            f"(!has({spec}.serviceAccount) || {spec}.serviceAccount in [{allowed}])",
            "message": f"ship's deployer may run pods only as ServiceAccount {', '.join(accounts)}",
        },
    ]
    return variables, validations


def _policy(
    name: str,
    namespace: str,
    user: str,
    resources: list[tuple[str, list[str]]],
    variables: list[dict],
    validations: list[dict],
) -> list[dict]:
    labels = {names.APP_NAME: "ship-deployer", names.PART_OF: names.MANAGER}
    rules = [
        {
            "apiGroups": [group],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": kinds,
        }
        for group, kinds in resources
    ]
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    spec = {
        "failurePolicy": "Fail",
        "matchConstraints": {"namespaceSelector": selector, "resourceRules": rules},
        "matchConditions": [
            {"name": "the-deployer", "expression": f"request.userInfo.username == '{user}'"}
        ],
        "validations": validations,
    }
    if variables:
        spec["variables"] = variables
    return [
        {
            "apiVersion": ADMISSION,
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        },
        {
            "apiVersion": ADMISSION,
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": selector},
            },
        },
    ]


def admission_objects(
    namespace: str,
    service_account: str = "ship-deployer",
    subject_namespace: str | None = None,
    accounts: Iterable[str] = (),
) -> list[dict]:
    """The ValidatingAdmissionPolicies (and bindings) that hold the deployer of `namespace` to
    what ship does; pods may run as `default` or one of `accounts` (the apps' own)."""
    user = f"system:serviceaccount:{subject_namespace or namespace}:{service_account}"
    allowed = sorted({"default", *accounts})
    prefix = f"ship-deployer-{namespace}"
    out = _policy(
        f"{prefix}-secrets",
        namespace,
        user,
        [("", ["secrets"])],
        [],
        [
            {
                "expression": "!has(object.type) || object.type != "
                "'kubernetes.io/service-account-token'",
                "message": "ship's deployer may not create a ServiceAccount token Secret",
            }
        ],
    )
    out += _policy(
        f"{prefix}-services",
        namespace,
        user,
        [("", ["services"])],
        [],
        [
            {
                "expression": "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
                "message": "ship's deployer may not set a Service's externalIPs",
            }
        ],
    )
    for suffix, spec, resources in (
        ("pods", "object.spec", [("", ["pods"])]),
        (
            "workloads",
            "object.spec.template.spec",
            [
                ("apps", ["deployments", "statefulsets", "daemonsets", "replicasets"]),
                ("batch", ["jobs"]),
            ],
        ),
        ("cronjobs", "object.spec.jobTemplate.spec.template.spec", [("batch", ["cronjobs"])]),
    ):
        variables, validations = _pod_checks(spec, allowed)
        out += _policy(f"{prefix}-{suffix}", namespace, user, resources, variables, validations)
    return out
