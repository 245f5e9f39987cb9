"""The workflow files against GitHub's real semantics, read as data (no runner needed):

- GitHub skips a job when any job above it, directly or not, was skipped, unless its `if:` starts
  with `!cancelled()` (actions/runner#491, #2205): every job below a skippable one must, and must
  check each of its needs' results itself;
- least privilege: the token only reads by default, `contents: write` only in jobs that commit,
  no persisted credentials where nothing pushes, no kubeconfig or app secret before dev, signing in
  a job that checks out no repository code;
- every action pinned by a commit SHA, its version in a comment.
"""

from __future__ import annotations

import re

import pytest
import yaml

from pipeline import scaffold
from tests.conftest import ROOT

WORKFLOWS = {p.name: p.read_text() for p in sorted((ROOT / ".github/workflows").glob("*.yml"))}
WRITTEN = scaffold.workflow_files({"shop": ("API_KEY",)})
ALL = {**WORKFLOWS, **{f"init:{name.rsplit('/', 1)[1]}": text for name, text in WRITTEN.items()}}
PINNED = re.compile(r"^\s*(?:-\s*)?uses:\s*[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def needs(job: dict) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def skippable(jobs: dict) -> set[str]:
    """Jobs GitHub may skip: those with an `if:`, and every job below one (the transitive skip)."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, job in jobs.items():
            if name not in found and ("if" in job or any(n in found for n in needs(job))):
                found.add(name)
                changed = True
    return found


def transitive_skip_problems(jobs: dict) -> list[str]:
    """Jobs below a skippable job whose `if:` does not start with `!cancelled() &&` and check each
    need's result: GitHub would skip them whenever anything above was skipped."""
    below = skippable(jobs)
    problems = []
    for name, job in jobs.items():
        if not any(n in below for n in needs(job)):
            continue
        condition = str(job.get("if", "")).strip().removeprefix("${{").strip()
        if not condition.startswith("!cancelled() &&"):
            problems.append(f"{name}: `if:` must start with `!cancelled() &&` (below a skippable job)")
        problems += [f"{name}: `if:` does not check needs.{n}.result" for n in needs(job) if f"needs.{n}.result" not in condition]
    return problems


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_job_below_a_skippable_job_survives_githubs_transitive_skip(name):
    assert transitive_skip_problems(yaml.safe_load(ALL[name])["jobs"]) == []


def test_the_graph_walk_finds_the_defect_it_guards_against():
    """The pipeline as it was: uat ran after a skipped dev (`!cancelled() && !failure()`), but prod,
    with no `if:`, was skipped by GitHub although uat succeeded."""
    jobs = {"changes": {}, "build": {"needs": "changes", "if": "needs.changes.outputs.count != '0'"},
            "dev": {"needs": "build"}, "uat": {"needs": "dev", "if": "${{ !cancelled() && !failure() }}"},
            "prod": {"needs": "uat"}}
    assert transitive_skip_problems(jobs) == [
        "dev: `if:` must start with `!cancelled() &&` (below a skippable job)", "dev: `if:` does not check needs.build.result",
        "uat: `if:` does not check needs.dev.result",
        "prod: `if:` must start with `!cancelled() &&` (below a skippable job)", "prod: `if:` does not check needs.uat.result"]


@pytest.mark.parametrize("name", sorted({**ALL, "action.yml": (ROOT / "action.yml").read_text()}))
def test_every_action_is_pinned_by_sha_with_its_version(name):
    text = ALL.get(name) or (ROOT / "action.yml").read_text()
    own = scaffold.action_ref()
    unpinned = [line.strip() for line in text.splitlines() if re.match(r"^\s*(-\s*)?uses:", line)
                and not PINNED.match(line) and line.split("uses:")[1].strip() != own]
    assert unpinned == []


def commits(job: dict) -> bool:
    return any(str((step.get("with") or {}).get("commits")) == "true" for step in job.get("steps", []))


@pytest.mark.parametrize("name", sorted(ALL))
def test_least_privilege(name):
    wf = yaml.safe_load(ALL[name])
    assert wf["permissions"] == {"contents": "read"}, "the token reads by default"
    assert not any(k.startswith("SHIP_SECRET_") for k in wf.get("env", {})), "app secrets belong to the deploying jobs"
    for job_name, job in wf["jobs"].items():
        writes = (job.get("permissions") or {}).get("contents") == "write"
        assert writes == commits(job), f"{job_name}: contents: write exactly when the job commits"
        checkout = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
        for step in checkout:
            assert (step.get("with") or {}).get("persist-credentials", True) is not False or not writes
            assert (step.get("with") or {}).get("persist-credentials") is False or writes, \
                f"{job_name}: nothing pushes, so the checkout keeps no credentials"
        if "environment" not in job:
            text = yaml.safe_dump(job)
            assert "secrets.KUBECONFIG" not in text and "SHIP_SECRET_" not in text, f"{job_name}: no cluster or app secret"
        if "SHIP_COSIGN_KEY" in yaml.safe_dump(job):
            assert checkout == [] and not any(s.get("uses", "").startswith(scaffold.action_ref()) for s in job["steps"]), \
                f"{job_name}: the signing key never shares a job with the repository's code"


def test_the_pipeline_signs_in_a_job_of_its_own_and_app_secrets_reach_only_the_environments():
    wf = yaml.safe_load(WRITTEN[".github/workflows/pipeline.yml"])
    assert list(wf["jobs"]) == ["changes", "build", "sign", "dev", "uat", "prod"]
    assert wf["jobs"]["sign"]["needs"] == "build" and "sign" in wf["jobs"]["dev"]["needs"]
    for env in ("dev", "uat", "prod"):
        job = wf["jobs"][env]
        assert job["environment"] == env and job["env"]["SHIP_SECRET_SHOP_API_KEY"] == "${{ secrets.SHIP_SECRET_SHOP_API_KEY }}"
        assert job["concurrency"] == {"group": f"ship-{env}", "cancel-in-progress": False}
    assert "env" not in wf["jobs"]["changes"] and "SHIP_REGISTRY_PASSWORD" not in wf["env"]  # no registry login before build
    assert not any(p.startswith("environments") for p in wf[True]["push"]["paths"])  # ship's commits do not re-trigger
