"""A few of `make faults`' trials in the normal suite: kube-apiserver killed and restarted
mid-sync (ship retries through it), and ship killed (SIGKILL) mid-canary, then the next run
converges. They run in the lab's own cluster (tests/faults/lab.py), started here when it is not
up and stopped again afterwards, so the default cluster's API server is never touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults import trials
from tests.faults.lab import Lab, once

pytestmark = [pytest.mark.faults, pytest.mark.cluster, pytest.mark.registry, pytest.mark.binaries]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def lab(local_parts, hellok8s_image, project_repo, tmp_path_factory, monkeypatch_module):
    # A lab of its own, apart from `make faults`' (which may run at the same time on this machine).
    for key, value in (("FAULTS_CLUSTER", "ship-faults-suite"), ("FAULTS_KUBE_PORT", "18743"),
                       ("FAULTS_REGISTRY_PORT", "15900")):
        monkeypatch_module.setenv(key, os.environ.get(key, value))
    monkeypatch_module.setenv("FAULTS_STATE", os.environ.get("FAULTS_STATE", str(Path.home() / ".cache/ship/run-faults-suite")))
    lab = Lab(tmp_path_factory.mktemp("faults"))
    was_running = lab.running()
    lab.up(("kubernetes",))  # the session's registry, engine and image; a cluster of its own
    lab.project, lab.image = project_repo, hellok8s_image
    yield lab
    lab.down(stop_parts=not was_running)


def test_kube_apiserver_killed_mid_sync_is_retried_through(lab):
    story = lab.story("restart")
    try:
        story.new_config()
        result = trials.under_fault(story, "kube-apiserver killed mid-sync", "SIGKILL kube-apiserver",
                                    ("release", "dev", "--image", lab.image),
                                    on_line=once("plan: ", lambda: lab.apiserver.restart(down=1.0)))
        assert result.ok, result.problems
        assert result.notes and "no connection" in result.notes[0], result.notes
    finally:
        story.cleanup()


def test_ship_killed_mid_canary_bake_and_the_next_promote_finishes_it(lab):
    story = lab.story("canary")
    try:
        story.must("release", "dev", "--image", lab.image)
        story.must("promote", "dev", "uat")
        story.must("promote", "uat", "prod")
        story.new_config()
        story.must("release", "dev", "--image", lab.image)
        story.must("promote", "dev", "uat")
        kill = trials.Kill("canary: step 2 baking", ("promote", "uat", "prod"), "baking for", after=(r"step 2/2: canary",))
        result = trials.run_kill(story, kill, ("prod",))
        assert result.ok, result.problems
        converge = [r for r in story.runs if r.args == ("promote", "uat", "prod")][-1]
        assert any("already in progress in prod; continuing it" in line for line in converge.lines), converge.lines
        assert any("took over prod's lock" in line for line in converge.lines), converge.lines
    finally:
        story.cleanup()
