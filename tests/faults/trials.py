"""The trials of `make faults`: one fault each, injected while ship works, then the checks.

A trial runs a ship command with a fault injected at a given progress line (or kills ship
there), then, unless the command itself converged, runs the command a user runs next, and
checks the story (story.Story.check). Groups: api (toxiproxy, APF, webhook, kube-apiserver
restarts), git, registry, kill (SIGKILL at 25 points of release, promote, canary, hold,
resume, abort and rollback).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tests.faults.lab import Lab, Result, after, once, retries
from tests.faults.story import Story


@dataclass(frozen=True)
class Kill:
    """SIGKILL ship when a stderr line matches `at` (after lines matching each of `after`, in order)."""

    name: str
    command: tuple[str, ...]
    at: str
    converge: tuple[str, ...] | None = None  # default: the same command again
    after: tuple[str, ...] = ()


def _kill_pattern(kill: Kill) -> Callable[[str], bool]:
    wanted = [*kill.after, kill.at]
    state = {"i": 0}

    def matches(line: str) -> bool:
        if state["i"] < len(wanted) and re.search(wanted[state["i"]], line):
            state["i"] += 1
            return state["i"] == len(wanted)
        return False

    return matches


def run_kill(story: Story, kill: Kill, envs: tuple[str, ...], **fill: str) -> Result:
    """Kill ship at `kill`'s line, run the next command, check."""
    start = time.monotonic()
    command = tuple(a.format(**fill) for a in kill.command)
    converge = tuple(a.format(**fill) for a in kill.converge) if kill.converge else command
    before = story.remote_head()
    first = story.ship(*command, kill_at=_kill_pattern(kill))
    problems = [] if first.killed_at is not None else [f"never reached the kill point ({first.brief()})"]
    then = story.ship(*converge)
    if then.code != 0:
        problems.append(f"the next command failed: {then.brief()}")
    problems += story.check(before, envs)
    return Result("kill", kill.name, "SIGKILL ship", first.brief(), f"ship {' '.join(converge[:3])}: {then.brief()}",
                  problems, time.monotonic() - start)


def under_fault(story: Story, name: str, fault: str, command: tuple[str, ...], *, group: str = "api",
                on_line: Callable[[str], None] | None = None, env: dict[str, str] | None = None,
                converge: tuple[str, ...] | None = None, must_pass: bool = True, envs: tuple[str, ...] = ("dev",),
                lift: Callable[[], object] | None = None, expect: str = "") -> Result:
    """Run `command` with a fault `on_line` injects (or already in place); it must pass (or, when
    not `must_pass`, fail in one line starting with `expect`); `lift` ends the fault; then
    `converge` (when given) must pass; then the checks."""
    start = time.monotonic()
    before = story.remote_head()
    try:
        first = story.ship(*command, on_line=on_line, env=env)
    finally:
        if lift is not None:
            lift()
    problems = []
    if must_pass and first.code != 0:
        problems.append(f"failed under the fault: {first.brief()}")
    if not must_pass and first.code == 0:
        problems.append("passed although the fault should have stopped it")
    if not must_pass and first.code and not (first.lines and first.lines[-1].startswith(expect)):
        problems.append(f"failed, but not with {expect}: {first.brief()}")
    if first.code and first.lines and not re.match(r"^\w+(Error|Failed): ", first.lines[-1]):
        problems.append(f"not a one-line error: {first.lines[-1][:100]}")
    then = story.ship(*converge) if converge else None
    if then is not None and then.code != 0:
        problems.append(f"the next command failed: {then.brief()}")
    problems += story.check(before, envs)
    return Result(group, name, fault, first.brief(), f"ship {' '.join(converge[:3])}: {then.brief()}" if then and converge
                  else "", problems, time.monotonic() - start, retries(first))


# ── the API server ──────────────────────────────────────────────────────────────────────────

def api_trials(lab: Lab, story: Story) -> Iterator[Result]:
    proxy = lab.proxy
    assert proxy is not None
    release = ("release", "dev", "--image", lab.image)

    def toxic(name: str, kind: str, attributes: dict, stream: str, toxicity: float, seconds: float):
        def inject() -> None:
            proxy.toxic(name, kind, attributes, stream, toxicity)
            after(seconds, proxy.clear)
        return inject

    def latency() -> None:
        proxy.toxic("latency-down", "latency", {"latency": 250, "jitter": 100}, "downstream")
        proxy.toxic("latency-up", "latency", {"latency": 250, "jitter": 100}, "upstream")

    story.new_config()
    latency()
    yield (under_fault(story, "latency 250±100 ms each way, a whole release", "toxiproxy latency", release,
                           lift=proxy.clear))
    story.new_config()
    yield (under_fault(story, "half the connections reset 300 ms in, for 8 s from the commit on",
                           "toxiproxy reset_peer", release, lift=proxy.clear,
                           on_line=once("wrote environments/dev", toxic("reset", "reset_peer", {"timeout": 300},
                                                                       "upstream", 0.5, 8))))
    story.new_config()
    yield (under_fault(story, "the API server stalls, connections cut after 3 s, mid-gate", "toxiproxy timeout",
                           release, lift=proxy.clear,
                           on_line=once("for rollout", toxic("stall", "timeout", {"timeout": 3000}, "downstream", 1.0, 4))))
    story.new_config()
    yield (under_fault(story, "no connection for 6 s (proxy disabled), from the commit on", "toxiproxy down",
                           release, lift=proxy.enable,
                           on_line=once("wrote environments/dev", lambda: (proxy.enable(False), after(6, proxy.enable)))))
    story.new_config()
    yield (under_fault(story, "admission webhook down 5 s: the API server answers 500 to every apply",
                           "kube-apiserver 500", release, lift=lab.webhook.off,
                           on_line=once("wrote environments/dev", lambda: (lab.webhook.on(), after(5, lab.webhook.off)))))
    yield (throttled(lab, story, release))
    for where, line in (("mid-sync", "plan: "), ("mid-gate", "for rollout")):
        story.new_config()
        yield (under_fault(story, f"kube-apiserver killed {where}, started again 1 s later", "SIGKILL kube-apiserver",
                               release, on_line=once(line, lambda: lab.apiserver.restart(down=1.0))))


def throttled(lab: Lab, story: Story, command: tuple[str, ...]) -> Result:
    """ship as a ServiceAccount whose APF priority level has one seat, beside a noisy neighbour."""
    import threading

    from tests.faults import parts

    lab.throttle.prepare()
    token = lab.throttle.identity()
    assert lab.proxy is not None
    config = parts.kubeconfig_copy(lab.admin, f"https://127.0.0.1:{lab.proxy.listen_port}", token)
    neighbour = parts.kubeconfig_copy(lab.admin, f"https://127.0.0.1:{lab.settings['SHIP_KUBE_PORT']}", token)
    stop = threading.Event()

    def noise() -> None:
        while not stop.is_set():
            parts.kubectl(neighbour, "-n", lab.throttle.load_ns, "get", "configmaps", "-o", "name", check=False)

    lab.throttle.on()
    threads = [threading.Thread(target=noise, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    story.new_config()
    try:
        result = under_fault(story, "API Priority and Fairness: one seat, shared with a noisy neighbour",
                             "kube-apiserver 429 + Retry-After", command, env={"KUBECONFIG": config})
    finally:
        stop.set()
        lab.throttle.off()
        for t in threads:
            t.join()
        os.unlink(config)
        os.unlink(neighbour)
    if not any("429" in note for note in result.notes):
        result.problems.append("no 429 reached ship: the throttle did not bite")
    return result


# ── git and the registry ────────────────────────────────────────────────────────────────────

def git_trials(lab: Lab, story: Story) -> Iterator[Result]:
    release = ("release", "dev", "--image", lab.image)
    moved = story.bare.with_name("remote.git.away")

    def away() -> None:
        story.bare.rename(moved)
        after(3, lambda: moved.rename(story.bare))

    story.new_config()
    yield (under_fault(story, "the remote gone mid-push (its folder moved away for 3 s)", "git remote unreachable",
                       release, group="git", on_line=once("wrote environments/dev", away), must_pass=False,
                       expect="GitError", converge=release, lift=lambda: time.sleep(3.5)))
    for hook, what, fails in (("pre-receive", "before the remote took the commit", True),
                              ("post-receive", "after the remote took it", False)):
        story.new_config()
        path = story.bare / "hooks" / hook
        path.write_text("#!/bin/sh\nkill -9 $PPID\n")  # the receiving end dies: the connection drops
        path.chmod(0o755)
        yield (under_fault(story, f"the connection dropped {what}", "git push cut", release, group="git",
                           must_pass=not fails, expect="GitError", converge=release if fails else None, lift=path.unlink))


def registry_trials(lab: Lab, story: Story) -> Iterator[Result]:
    def down_for(seconds: float) -> Callable[[], None]:
        def stop() -> None:
            lab.registry.stop()
            after(seconds, lab.registry.start)
        return stop

    story.must("release", "dev", "--image", lab.image)  # something pinned in dev to verify
    story.touch_source()
    down_for(2)()
    yield (under_fault(story, "registry stopped as a build starts, back 2 s later", "registry killed", ("build",),
                       group="registry", envs=(), lift=lambda: time.sleep(1)))
    story.touch_source()
    yield (under_fault(story, "registry stopped at the push, back 3 s later", "registry killed", ("build",),
                       group="registry", on_line=once("pushing", down_for(3)), must_pass=False, expect="BuildError",
                       converge=("build",),
                       envs=(), lift=lambda: time.sleep(4)))
    down_for(2)()
    yield (under_fault(story, "registry stopped as verify starts, back 2 s later", "registry killed",
                           ("verify", "dev"), group="registry", envs=(), lift=lambda: time.sleep(1)))
    lab.registry.stop()
    yield (under_fault(story, "registry down for good during verify (retries give up after 3 s)", "registry killed",
                           ("verify", "dev"), group="registry", env={"SHIP_RETRY_SECONDS": "3"}, must_pass=False,
                           expect="RegistryError",
                           envs=(), lift=lab.registry.start))


# ── kills ───────────────────────────────────────────────────────────────────────────────────

RELEASE = (
    Kill("release: overlay written, not yet committed", ("release", "dev", "--image", "{image}"), "wrote environments/dev"),
    Kill("release: committed and pushed, sync planned", ("release", "dev", "--image", "{image}"), r"plan: \d+ to apply"),
    Kill("release: mid-gate", ("release", "dev", "--image", "{image}"), "ait.* for rollout"),
    Kill("release: gate passed, healthy not yet recorded", ("release", "dev", "--image", "{image}"), "gate passed"),
    Kill("promote dev→uat: overlay written", ("promote", "dev", "uat"), "wrote environments/uat"),
    Kill("promote dev→uat: mid-gate", ("promote", "dev", "uat"), "ait.* for rollout"),
)
CANARY = (
    Kill("canary: starting, before step 1's commit", ("promote", "uat", "prod"), "canary of .* beside stable"),
    Kill("canary: step 1 synced, routing 10%", ("promote", "uat", "prod"), r"step 1/2: canary at 10%"),
    Kill("canary: step 1 baking", ("promote", "uat", "prod"), "baking for"),
    Kill("canary: step 1 passed", ("promote", "uat", "prod"), r"step 1/2 passed"),
    Kill("canary: step 2 synced, routing 50%", ("promote", "uat", "prod"), r"step 2/2: canary at 50%"),
    Kill("canary: step 2 baking", ("promote", "uat", "prod"), "baking for", after=(r"step 2/2: canary",)),
    Kill("canary: finish, stable being moved (uncommitted)", ("promote", "uat", "prod"), "canary passed; moving stable"),
    Kill("canary: finish, stable's gate", ("promote", "uat", "prod"), "ait.* for rollout", after=("moving stable",)),
    Kill("canary: finish, promote committed, canary being removed", ("promote", "uat", "prod"), r"plan: .*to prune",
         after=("moving stable", r"plan: ")),
)
HOLD = (
    Kill("hold: analysis passed, hold not yet committed", ("promote", "uat", "prod", "--canary", "10", "--hold"),
         r"step 1/1 passed"),
    Kill("hold: held and committed", ("promote", "uat", "prod", "--canary", "10", "--hold"), "held: decide with"),
)
RESUME = (
    Kill("resume: starting", ("promote", "uat", "prod", "--resume"), "resuming"),
    Kill("resume: stable's gate", ("promote", "uat", "prod", "--resume"), "ait.* for rollout"),
)
ABORT = (
    Kill("abort: starting", ("abort", "prod", "--reason", "faults"), "aborting"),
    Kill("abort: weight 0 applied, not yet committed", ("abort", "prod", "--reason", "faults"), "weight 0: live weights"),
    Kill("abort: committed, canary being removed", ("abort", "prod", "--reason", "faults"), r"plan: .*to prune",
         after=("weight 0",)),
)
ROLLBACK = (
    Kill("rollback: starting", ("rollback", "prod", "--to", "{previous}", "--reason", "faults"), "rolling back"),
    Kill("rollback: applied, mid-gate (uncommitted)", ("rollback", "prod", "--to", "{previous}", "--reason", "faults"),
         "ait.* for rollout"),
    Kill("rollback: gate passed, commit being written", ("rollback", "prod", "--to", "{previous}", "--reason", "faults"),
         "wrote environments/prod"),
    Kill("rollback: committed", ("rollback", "prod", "--to", "{previous}", "--reason", "faults"), "gate passed"),
)


def kill_trials(lab: Lab, story: Story) -> Iterator[Result]:
    """26 kill points; each trial's next command leaves the state the following trial starts from."""
    image = lab.image
    for kill in RELEASE:
        story.new_config()
        if kill.command[0] == "promote":
            story.must("release", "dev", "--image", image)
        yield (run_kill(story, kill, ("dev", "uat"), image=image))
    if not (story.work / "environments/prod/release.yaml").is_file():
        story.must("promote", "uat", "prod")
    for kill in CANARY:
        _canary_ready(story, image)
        yield (run_kill(story, kill, ("prod",)))
    for i, kill in enumerate(RESUME + ABORT):
        _canary_ready(story, image)
        if i < len(HOLD):
            yield (run_kill(story, HOLD[i], ("prod",)))
        else:
            story.must(*HOLD[0].command)
        yield (run_kill(story, kill, ("prod",)))
    for kill in ROLLBACK:
        yield (run_kill(story, kill, ("prod",), previous=story.previous_release("prod")))


def _canary_ready(story: Story, image: str) -> None:
    """A new release healthy in uat, ready to be promoted to prod as a canary."""
    story.new_config()
    story.must("release", "dev", "--image", image)
    story.must("promote", "dev", "uat")
