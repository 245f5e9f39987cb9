"""Performs a reconcile: dry-run everything, apply in stages, prune, report a change set.

    validate ─► list live ─► plan (plan.py) ─► dry-run all ─► apply by stage ─► prune
                                                  │ any failure: apply nothing, name each object

Server-side apply with field manager `ship`. Objects ship owns are applied with force, so a
hand edit of a field git sets is put back; an object of the same name that ship does not own
is refused unless adopted, and an adopted object's fields held by another manager are
refused (naming manager and fields) unless --force-conflicts. Prune runs only after every
apply succeeded, and keeps ConfigMaps that a Pod or a ReplicaSet with replicas still uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pipeline import names
from pipeline.errors import ApiError, ClusterError, ConflictError, DryRunError, ValidationError
from pipeline.kube import fields, ownership
from pipeline.kube import plan as planning
from pipeline.kube.api import ClusterApi
from pipeline.kube.client import FIELD_MANAGER
from pipeline.kube.lock import check_held
from pipeline.kube.plan import Action, ChangeSetEntry, Plan
from pipeline.progress import Progress, quiet


@dataclass(frozen=True)
class SyncOptions:
    """How a sync treats the cluster."""

    prune: bool = True  # delete ship's objects that git no longer renders
    adopt: bool = False  # take over same-named objects that ship does not own yet
    force_conflicts: bool = False  # take fields that other field managers own on adopted objects
    dry_run: bool = False  # plan and server-side dry-run only; change nothing
    # concurrent requests within a stage (the API server takes 32 at once well)
    parallelism: int = 32
    # field managers whose fields ship takes over (hand edits)
    takeover: tuple[str, ...] = fields.TAKEOVER
    # Pod Security level labelled on the Namespace ("": none; sync sets ENV's)
    pod_security: str = ""
    # Secrets ship may have written here: read by name, pruned when git no longer has them
    secret_names: tuple[str, ...] = ()


@dataclass
class SyncResult:
    changes: list[ChangeSetEntry]
    plan: Plan
    live: dict = field(default_factory=dict)
    applied: dict = field(default_factory=dict)  # key -> object as the server returned it
    requests: int = 0
    gate: Any = None  # rollout.gate.GateResult, when the sync was gated
    environment: str = ""
    # (app, rollout.gate.GateResult) of a pre hook that failed: nothing else was applied
    hook: Any = None
    post_hooks: tuple[dict, ...] = ()  # hook Jobs to run once the gate passed (kube/hooks.py)

    @property
    def changed(self) -> bool:
        return any(c.action is not Action.UNCHANGED for c in self.changes)

    def to_json(self) -> dict:
        return {
            "environment": self.environment,
            "changes": [c.to_json() for c in self.changes],
            "requests": self.requests,
            "gate": self.gate.to_json() if self.gate else None,
        }

    def text(self) -> str:
        return "\n".join([str(c) for c in self.changes] + ([str(self.gate)] if self.gate else []))


def _parallel(fn, items: list, parallelism: int) -> list:
    if len(items) <= 1 or parallelism <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(parallelism, len(items))) as pool:
        return list(pool.map(fn, items))


NAMESPACE_FORBIDDEN = "forbidden"


def namespace_state(cluster: ClusterApi, namespace: str) -> dict | str | None:
    """The Namespace, None when absent, or NAMESPACE_FORBIDDEN for a deployer whose namespaced
    Role cannot read namespaces (the platform team created it; ship leaves it alone)."""
    try:
        return cluster.get("v1", "Namespace", namespace)
    except ApiError as exc:
        if exc.status == 403:
            return NAMESPACE_FORBIDDEN
        raise


def live_state(
    cluster: ClusterApi,
    namespace: str,
    kinds: set[tuple[str, str]],
    parallelism: int = 8,
    required: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset(),
    *,
    ns: dict | str | None | bool = False,
) -> dict:
    """Every live object of `kinds` in `namespace`, plus the Namespace itself, by plan key.
    `ns`: the namespace's state when the caller read it already (False: read it here)."""
    live: dict = {}
    ns = namespace_state(cluster, namespace) if ns is False else ns
    if ns is None:
        return live
    if isinstance(ns, dict):
        live[planning.key(ns)] = ns

    def list_kind(kind):
        try:
            return cluster.list(kind[0], kind[1], namespace)
        except ApiError as exc:
            if exc.status == 403 and kind not in required:
                return []  # a kind the deployer may not read is one ship never applied here
            raise
        except ClusterError as exc:
            if "does not serve" in str(exc) or "has no kind" in str(exc):
                return []  # e.g. no Gateway API here: nothing of that kind to prune
            raise

    for items in _parallel(list_kind, sorted(kinds), parallelism):
        for obj in items:
            live[planning.key(obj)] = obj
    return live


def conflict_message(obj: dict, exc: ApiError) -> str:
    """`Deployment/ns/x: fields owned by another field manager: kubectl-edit (.spec.replicas)`."""
    managers: dict[str, list[str]] = {}
    for cause in exc.causes:
        match = re.search(r'conflict with "([^"]+)"', cause.get("message", ""))
        managers.setdefault(match.group(1) if match else "another manager", []).append(
            str(cause.get("field", "?"))
        )
    owners = "; ".join(f"{m} ({', '.join(fs)})" for m, fs in managers.items()) or exc.body.get(
        "message", ""
    )
    return (
        f"{planning.subject(obj)}: fields owned by another field "
        f"manager: {owners}; pass --force-conflicts to take them"
    )


def dry_run_message(obj: dict, exc: ApiError) -> str:
    msg = exc.body.get("message") or str(exc)
    if exc.status == 422 and "immutable" in msg:
        fields = [
            str(c.get("field")) for c in exc.causes if "immutable" in c.get("message", "")
        ] or ["a field"]
        return (
            f"{planning.subject(obj)}: {', '.join(fields)} is immutable and git changed it; "
            "delete the object (kubectl delete -n "
            f"{obj['metadata'].get('namespace')} {planning.kubectl_ref(obj)}) "
            "or give it a new name, then sync again"
        )
    return f"{planning.subject(obj)}: {exc.reason or exc.status}: {msg}"


def reconcile(
    cluster: ClusterApi,
    env: str,
    namespace: str,
    desired: list[dict],
    options: SyncOptions = SyncOptions(),
    progress: Progress = quiet,
) -> SyncResult:
    """Make `namespace` match `desired` (objects as rendered from git, secrets added).
    `desired` is not changed: ship works on copies carrying its ownership labels."""
    start_requests = cluster.requests
    ns = namespace_state(cluster, namespace)  # read once for both below
    owned = [
        _with_pod_security(o, options.pod_security)
        for o in _owned_objects(cluster, env, namespace, desired, progress, ns)
    ]
    required = {
        (o["apiVersion"], o["kind"]) for o in owned if o["kind"] not in ("Namespace", "Secret")
    }
    live = live_state(
        cluster, namespace, required | set(planning.PRUNABLE), options.parallelism, required, ns=ns
    )
    live.update(_secrets_by_name(cluster, namespace, owned, options.secret_names) if live else {})
    needed: set[str] = set()
    if options.prune and live:
        workloads = cluster.list("apps/v1", "ReplicaSet", namespace) + cluster.list(
            "v1", "Pod", namespace
        )
        needed = planning.referenced_configmaps(workloads, _leaving_deployments(owned, live, env))
    foreign = {
        k: f
        for k, o in live.items()
        if ownership.owned(o, env) and (f := fields.foreign_fields(o, options.takeover))
    }
    planned_as = planning.PlanOptions(
        adopt=options.adopt, prune=options.prune, needed_configmaps=needed, takeover=set(foreign)
    )
    first = planning.make_plan(owned, live, env, planned_as)
    if first.refused:
        raise ConflictError(f"{env}: " + "; ".join(first.refused))

    def force_for(obj: dict) -> bool:
        have = live.get(planning.key(obj))
        return have is None or ownership.owned(have, env) or options.force_conflicts

    applied: dict = {}
    # The Namespace goes first for real (when not a dry run): namespaced dry-runs need it to exist.
    for obj in first.stages[0]:
        _dry_run_all(cluster, [obj], force_for, options.parallelism)
        if not options.dry_run:
            applied[planning.key(obj)] = cluster.apply(obj, force=True)
    rest = [o for stage in first.stages[1:] for o in stage]
    if rest and options.dry_run and not live:
        # nothing can be dry-run in a namespace not there yet
        results = {planning.key(o): o for o in rest}
    else:
        results = _dry_run_all(cluster, rest, force_for, options.parallelism)
    desired_by_key = {planning.key(o): o for o in owned}
    for k, taken in foreign.items():
        if k in results and k in desired_by_key:  # what the apply after the takeover leaves
            results[k] = fields.strip(results[k], taken, desired_by_key[k])
    the_plan = planning.settle(first, results, live, env, keep=set(foreign) & set(desired_by_key))
    progress(
        f"plan: {len(the_plan.to_apply)} to apply, "
        f"{len(the_plan.unchanged)} unchanged, {len(the_plan.prune)} to prune"
    )
    if options.dry_run:
        applied.update(results)
    else:
        check_held(namespace)  # a run that lost its lock stops here, before changing anything
        for k in sorted(set(foreign) & set(desired_by_key)):
            _take_over(cluster, live[k], options.takeover, progress)
        applied.update(_perform(cluster, the_plan, force_for, options.parallelism))
    return SyncResult(
        _change_set(the_plan, live, owned),
        the_plan,
        live,
        applied,
        cluster.requests - start_requests,
        environment=env,
    )


def _take_over(
    cluster: ClusterApi, obj: dict, managers: tuple[str, ...], progress: Progress
) -> None:
    """Fold the fields of `managers` into ship's Apply entry, so the apply that follows removes
    the ones git does not set (Flux's ssa does the same before applying)."""
    owners = sorted(
        {
            e.get("manager")
            for e in obj["metadata"].get("managedFields") or []
            if e.get("manager") in managers
        }
    )
    progress(f"{planning.subject(obj)}: taking over fields set by {', '.join(owners)}")
    cluster.json_patch(
        obj,
        [
            {
                "op": "replace",
                "path": "/metadata/managedFields",
                "value": fields.taken_over(obj, managers, FIELD_MANAGER),
            }
        ],
    )


def _leaving_deployments(owned: list[dict], live: dict, env: str) -> set[str]:
    """Names of ship's live Deployments that git no longer renders: this sync prunes them."""
    wanted = {planning.key(o) for o in owned}
    return {
        k[3]
        for k, o in live.items()
        if k[1] == "Deployment" and k not in wanted and ownership.owned(o, env)
    }


def _secrets_by_name(
    cluster: ClusterApi, namespace: str, owned: list[dict], more: tuple[str, ...]
) -> dict:
    """The live Secrets ship renders or may have written, read one by one: the deployer may not
    list Secrets (kube/rbac.py). One it may not read is one it never wrote here."""
    found = {}
    for name in sorted({o["metadata"]["name"] for o in owned if o["kind"] == "Secret"} | set(more)):
        try:
            obj = cluster.get("v1", "Secret", name, namespace)
        except ApiError as exc:
            if exc.status != 403:
                raise
            obj = None
        if obj is not None:
            found[planning.key(obj)] = obj
    return found


def _with_pod_security(obj: dict, level: str) -> dict:
    if obj.get("kind") != "Namespace" or not names.pod_security_labels(level):
        return obj
    meta = obj.get("metadata") or {}
    return {
        **obj,
        "metadata": {
            **meta,
            "labels": {**(meta.get("labels") or {}), **names.pod_security_labels(level)},
        },
    }


def _owned_objects(
    cluster: ClusterApi,
    env: str,
    namespace: str,
    desired: list[dict],
    progress: Progress,
    ns: dict | str | None,
) -> list[dict]:
    """Copies of `desired` in `namespace` with ship's ownership, the Namespace first when ship may
    manage it."""
    problems = planning.validate(desired, env, namespace, lambda o: cluster.info_for(o).namespaced)
    if problems:
        raise ValidationError(f"{env}: {len(problems)} object(s) refused: " + "; ".join(problems))
    placed = [
        o
        if o.get("kind") == "Namespace"
        else {**o, "metadata": {"namespace": namespace, **o.get("metadata", {})}}
        for o in desired
    ]
    owned = [ownership.with_ownership(o, env) for o in placed]
    if not any(o["kind"] == "Namespace" for o in owned):
        owned.insert(
            0,
            ownership.with_ownership(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, env
            ),
        )
    if ns == NAMESPACE_FORBIDDEN:
        progress(
            f"namespace {namespace} is managed outside ship "
            "(no access to Namespaces); leaving it as it is"
        )
        owned = [o for o in owned if o["kind"] != "Namespace"]
    return owned


def _perform(
    cluster: ClusterApi, the_plan: Plan, force_for: Callable[[dict], bool], parallelism: int
) -> dict:
    """Apply the plan's stages after the Namespace, in order, then prune: what the server
    returned."""
    applied = {}
    for stage_objects in the_plan.stages[1:]:
        if stage_objects:
            check_held(stage_objects[0]["metadata"].get("namespace", ""))
        results = _parallel(
            lambda o: cluster.apply(o, force=force_for(o)), stage_objects, parallelism
        )
        applied.update({planning.key(o): out for o, out in zip(stage_objects, results)})
    if the_plan.prune:
        _parallel(
            lambda o: cluster.delete(
                o["apiVersion"], o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")
            ),
            sorted(the_plan.prune, key=lambda o: -planning.stage_of(o)),
            parallelism,
        )
    return applied


def _change_set(the_plan: Plan, live: dict, owned: list[dict]) -> list[ChangeSetEntry]:
    changes = [
        ChangeSetEntry(
            planning.subject(o),
            planning.kubectl_ref(o),
            Action.CONFIGURED if planning.key(o) in live else Action.CREATED,
        )
        for o in the_plan.to_apply
    ]
    changes += [
        ChangeSetEntry(planning.subject(o), planning.kubectl_ref(o), Action.UNCHANGED)
        for o in the_plan.unchanged
    ]
    changes += [
        ChangeSetEntry(planning.subject(o), planning.kubectl_ref(o), Action.PRUNED)
        for o in the_plan.prune
    ]
    order = {planning.subject(o): (planning.stage_of(o), i) for i, o in enumerate(owned)}
    return sorted(changes, key=lambda c: (c.action is Action.PRUNED, order.get(c.subject, (99, 0))))


def _dry_run_all(cluster: ClusterApi, objects: list[dict], force_for, parallelism: int) -> dict:
    """Server-side dry-run every object; if any fails, raise naming each one (nothing applied)."""

    def attempt(obj):
        try:
            return obj, cluster.apply(obj, dry_run=True, force=force_for(obj)), None
        except ApiError as exc:
            return obj, None, exc

    results, failures = {}, []
    for obj, out, exc in _parallel(attempt, objects, parallelism):
        if exc is None:
            results[planning.key(obj)] = out
        elif exc.status == 409 and exc.causes:
            failures.append(conflict_message(obj, exc))
        elif exc.status in (401, 403):
            raise exc
        else:
            failures.append(dry_run_message(obj, exc))
    if failures:
        kind = ConflictError if all("field manager" in f for f in failures) else DryRunError
        raise kind(
            f"dry-run failed for {len(failures)} object(s), nothing applied: " + "; ".join(failures)
        )
    return results
