"""`ship sync ENV`, `ship diff ENV`: render ENV's overlay from git and reconcile or compare.

Renders with the real kustomize, adds the apps' Secrets from SHIP_SECRET_* variables and the
image pull secret from the run's registry credentials (gitops/pull_secret.py), holds
ENV's lock while changing anything, and hands the objects to apply.reconcile. `diff` uses the
same path with a server-side dry-run and prints a unified diff per object, secrets redacted.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, replace

from pipeline import names, yamlsafe
from pipeline.config import Environment, Slot
from pipeline.context import Context
from pipeline.gitops.inputs import refuse_rendered_secrets
from pipeline.kube import apply, hooks, normalize, ownership
from pipeline.kube import lock as lock_mod
from pipeline.kube import plan as planning
from pipeline.kube.api import ClusterApi
from pipeline.policy import images
from pipeline.rollout import hookjobs
from pipeline.rollout.gate import GateResult
from pipeline.state.desired import apps_in, desired_objects, namespace_exists


def ensure_namespace(cluster: ClusterApi, env: Environment) -> None:
    """The lock lives in ENV's namespace, so it must exist before anything else."""
    if not namespace_exists(cluster, env):
        ns = ownership.with_ownership(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": env.namespace,
                    "labels": names.pod_security_labels(env.pod_security),
                },
            },
            env.name,
        )
        cluster.apply(ns, force=True)


def sync_environment(
    ctx: Context,
    env: Environment,
    options: apply.SyncOptions = apply.SyncOptions(),
    lock_options: lock_mod.LockOptions | None = None,
) -> apply.SyncResult:
    """Make ENV's namespace match git, under ENV's lock (or only dry-run it): always the whole
    environment, every app in it, so a prune never takes another app's objects. A rehearsal
    (--dry-run) only dry-runs. `lock_options`: the context's unless given."""
    cfg, cluster = ctx.config, ctx.cluster(env)
    # Secrets are read by name (never listed): every app's that ship.yaml or ENV's ledgers know.
    known = {*cfg.apps, *ctx.workspace.ledger_apps(env)}
    options = replace(
        options,
        takeover=cfg.takeover_managers,
        pod_security=env.pod_security,
        secret_names=tuple(sorted(names.secret_name(app) for app in known)),
    )
    # a Secret with data in git is never applied
    ctx.workspace.guard_secrets(env, apps_in(cfg, env))
    # a bad overlay fails before the lock
    rendered = ctx.workspace.render_overlay(env)
    refuse_rendered_secrets(rendered, str(env.folder))
    images.admit(ctx, env, rendered)  # every image that will run: pinned, and signed where ENV asks
    if ctx.rehearsal:
        options = replace(options, dry_run=True)
    if options.dry_run:
        return apply.reconcile(
            cluster,
            env.name,
            env.namespace,
            desired_objects(cfg, env, cluster, rendered, ctx.credentials),
            options,
            ctx.progress,
        )
    ensure_namespace(cluster, env)
    with lock_mod.EnvironmentLock(
        cluster, env.name, env.namespace, lock_options or ctx.lock, ctx.progress
    ):
        desired = hooks.split(desired_objects(cfg, env, cluster, rendered, ctx.credentials))
        failed = _pre_hooks(ctx, env, desired)
        if failed is not None:  # a failed migration stops the release before any workload moves
            return apply.SyncResult([], planning.Plan(), environment=env.name, hook=failed)
        result = apply.reconcile(
            cluster, env.name, env.namespace, list(desired.objects), options, ctx.progress
        )
        return replace(result, post_hooks=desired.post)


def _pre_hooks(
    ctx: Context, env: Environment, desired: hooks.HookPlan
) -> tuple[str, GateResult] | None:
    """Apply the pre hooks' own objects, then run each pre hook Job: (its app, the failure), or
    None."""
    cluster = ctx.cluster(env)
    for obj in desired.pre_objects:
        cluster.apply(
            ownership.with_ownership(
                {**obj, "metadata": {**obj["metadata"], "namespace": env.namespace}}, env.name
            ),
            force=True,
        )
    for job in desired.pre:
        options = hookjobs.HookOptions(env.gates.timeout, progress=ctx.progress, clock=ctx.clock)
        failed = hookjobs.run_hooks(cluster, env.name, env.namespace, [job], options)
        if failed is not None:
            return hooks.app_of(job), failed
    return None


@dataclass(frozen=True)
class ObjectDiff:
    subject: str
    action: str  # created, configured, pruned
    diff: str

    def to_json(self) -> dict:
        return {"subject": self.subject, "action": self.action, "diff": self.diff}


def diff_environment(ctx: Context, env: Environment) -> list[ObjectDiff]:
    """What a sync of ENV would change, as unified diffs of normalized YAML, secrets redacted."""
    return _diff(ctx, env, lambda obj: True)


def diff_slot(ctx: Context, slot: Slot) -> list[ObjectDiff]:
    """diff_environment, for the objects of the slot's app only."""
    return _diff(
        ctx,
        slot.env,
        lambda obj: (obj["metadata"].get("labels") or {}).get(names.APP_LABEL) == slot.app,
    )


def _diff(ctx: Context, env: Environment, mine: Callable[[dict], bool]) -> list[ObjectDiff]:
    cluster = ctx.cluster(env)
    desired = desired_objects(ctx.config, env, cluster, credentials=ctx.credentials)

    options = apply.SyncOptions(dry_run=True, takeover=ctx.config.takeover_managers)
    result = apply.reconcile(cluster, env.name, env.namespace, desired, options)
    out = []
    for obj in filter(mine, result.plan.to_apply):
        k = planning.key(obj)
        live = result.live.get(k)
        after = result.applied.get(k, obj)
        before_text = yamlsafe.dumps(normalize.normalized(live), sort_keys=True) if live else ""
        after_text = yamlsafe.dumps(
            _changed_values_marked(normalize.normalized(after), live, after), sort_keys=True
        )
        if before_text == after_text:
            continue
        out.append(
            ObjectDiff(
                planning.subject(obj),
                "configured" if live else "created",
                _unified(planning.subject(obj), before_text, after_text),
            )
        )
    for obj in filter(mine, result.plan.prune):
        out.append(
            ObjectDiff(
                planning.subject(obj),
                "pruned",
                _unified(
                    planning.subject(obj),
                    yamlsafe.dumps(normalize.normalized(obj), sort_keys=True),
                    "",
                ),
            )
        )
    return out


def _changed_values_marked(redacted: dict, live: dict | None, after: dict) -> dict:
    """A redacted Secret whose values changed shows which did (never what they are): without
    this, a new value reads as no change at all."""
    if after.get("kind") != "Secret" or not live:
        return redacted
    before_data, after_data = live.get("data") or {}, after.get("data") or {}
    for key in redacted.get("data") or {}:
        if after_data.get(key) != before_data.get(key):
            redacted["data"][key] = f"{normalize.REDACTED} (changed)"
    return redacted


def _unified(name: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"live/{name}",
            tofile=f"git/{name}",
        )
    )
