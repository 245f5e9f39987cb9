"""Runs the `run:` steps of a GitHub Actions workflow locally, in order, like a runner would.

Jobs run in `needs` order; steps get the workflow, job and step `env:`, `${{ }}` expressions
resolved from a context the test gives (secrets, vars, inputs, needs, steps, matrix, runner.temp);
GITHUB_ENV, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY are temp files honoured between steps, and each
job (each matrix leg) gets a fresh RUNNER_TEMP, as on GitHub. A job's `if:` may compare an
expression with a string (`needs.x.outputs.count != '0'`) or be `!cancelled() && !failure()`;
without a status function a job whose needs were skipped is skipped. `strategy.matrix` may be a
mapping of lists or `${{ fromJSON(...) }}` of one. Local composite actions (`uses: ./...`) are
expanded; actions/upload-artifact and actions/download-artifact (name or pattern, merge-multiple)
are played with a folder; other remote actions (checkout, setup-python, docker login) are
skipped, and so is the step with id `install` (ship is installed already). An expression the
context cannot resolve fails the run: a typo in a workflow fails the suite.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
COMPARE = re.compile(r"^([\w.-]+)\s*(==|!=)\s*'([^']*)'$")
STATUS_ONLY = "!cancelled() && !failure()"  # run when the needs succeeded or were skipped
SKIPPED = "skipped"


@dataclass
class StepRun:
    job: str
    name: str
    returncode: int
    stdout: str
    stderr: str


@dataclass
class WorkflowRun:
    work: Path  # the repository checkout the steps run in
    tmp: Path
    context: dict[str, str]  # e.g. {"secrets.KUBECONFIG": "...", "vars.SHIP_REGISTRY": "...", "github.actor": "t"}
    env: dict[str, str]  # the runner's environment (PATH with ship on it, DOCKER_HOST, ...)
    steps: list[StepRun] = field(default_factory=list)

    def resolve(self, value, ctx: dict[str, str]) -> str:
        def one(match: re.Match) -> str:
            for alternative in match.group(1).split("||"):
                alternative = alternative.strip()
                if alternative.startswith("'") and alternative.endswith("'"):
                    found = alternative[1:-1]
                elif alternative in ctx:
                    found = ctx[alternative]
                elif alternative.startswith("vars."):
                    found = ""  # an unset repository variable is empty on GitHub too
                else:
                    raise AssertionError(f"workflow expression ${{{{ {alternative} }}}} has no value in this run")
                if found:
                    return found
            return ""

        return EXPR.sub(one, str(value))

    def run(self, workflow: Path, inputs: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
        """Run every job; returns each job's outputs ({"result": "skipped"} for a skipped job).
        Raises AssertionError naming a failed step."""
        wf = yaml.safe_load(workflow.read_text())
        ctx = dict(self.context)
        ctx.update({f"inputs.{k}": v for k, v in (inputs or {}).items()})
        dispatch = (wf.get(True, wf.get("on")) or {}).get("workflow_dispatch") or {}  # PyYAML reads `on:` as True
        for name, spec in (dispatch.get("inputs") or {}).items():
            ctx.setdefault(f"inputs.{name}", str(spec.get("default", "")))
        env = {k: self.resolve(v, ctx) for k, v in (wf.get("env") or {}).items()}
        shutil.rmtree(self.tmp / "artifacts", ignore_errors=True)  # artifacts belong to one run
        outputs: dict[str, dict[str, str]] = {}
        for job_id in _in_needs_order(wf["jobs"]):
            job = wf["jobs"][job_id]
            job_ctx = {**ctx, **{f"needs.{n}.outputs.{k}": v for n, o in outputs.items() for k, v in o.items()}}
            if not self._should_run(job_id, job, job_ctx, outputs):
                outputs[job_id] = {"result": SKIPPED}
                continue
            outputs[job_id] = {}
            for leg in self._matrix(job, job_ctx):
                outputs[job_id].update(self._job(job_id, job, {**job_ctx, **leg}, env))
        return outputs

    def _should_run(self, job_id: str, job: dict, ctx: dict[str, str], outputs: dict[str, dict[str, str]]) -> bool:
        condition = EXPR.sub(lambda m: m.group(1), str(job.get("if", ""))).strip()
        needs_ran = all(outputs[n].get("result") != SKIPPED for n in _as_list(job.get("needs")))
        if condition == STATUS_ONLY:
            return True  # a failed need has raised already
        if not needs_ran or not condition:
            return needs_ran
        match = COMPARE.match(condition)
        assert match and match.group(1) in ctx, f"job {job_id}: this runner does not evaluate `if: {condition}`"
        return (ctx[match.group(1)] == match.group(3)) == (match.group(2) == "==")

    def _matrix(self, job: dict, ctx: dict[str, str]) -> list[dict[str, str]]:
        """The matrix legs' contexts ({"matrix.app": "shop"}, ...); one empty leg without a matrix."""
        matrix = (job.get("strategy") or {}).get("matrix")
        if matrix is None:
            return [{}]
        if isinstance(matrix, str):
            inner = EXPR.fullmatch(matrix.strip())
            found = re.fullmatch(r"fromJSON\((.+)\)", inner.group(1)) if inner else None
            assert found and found.group(1) in ctx, f"this runner does not evaluate `matrix: {matrix}`"
            matrix = json.loads(ctx[found.group(1)])
        assert all(isinstance(v, list) for v in matrix.values()), f"matrix {matrix}: only lists (no include/exclude)"
        return [{f"matrix.{k}": str(v) for k, v in zip(matrix, combo)} for combo in itertools.product(*matrix.values())]

    def _job(self, job_id: str, job: dict, ctx: dict[str, str], env: dict[str, str]) -> dict[str, str]:
        temp = self.tmp / "runner" / "-".join([job_id, *(v for k, v in ctx.items() if k.startswith("matrix."))])
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir(parents=True)
        ctx = {**ctx, "runner.temp": str(temp)}
        env = {**env, **{k: self.resolve(v, ctx) for k, v in (job.get("env") or {}).items()}}
        state = {"env": {}, "failed": None, "temp": temp}
        for step in job["steps"]:
            self._step(job_id, step, ctx, env, state)
        if state["failed"]:
            raise AssertionError(f"job {job_id}: step {state['failed']} failed")
        return {k: self.resolve(v, ctx) for k, v in (job.get("outputs") or {}).items()}

    def _artifact(self, uses: str, given: dict[str, str]) -> None:
        """actions/upload-artifact and actions/download-artifact, with a folder for the store."""
        store = self.tmp / "artifacts"
        if uses.startswith("actions/upload-artifact@"):
            source, dest = Path(given["path"]), store / given["name"]
            assert source.exists(), f"upload-artifact: {source} does not exist"
            dest.mkdir(parents=True)  # an artifact name is written once per run
            if source.is_dir():
                shutil.copytree(source, dest, dirs_exist_ok=True)
            else:
                shutil.copy(source, dest / source.name)
            return
        pattern = given.get("name") or given.get("pattern", "*")
        names = sorted(n.name for n in store.iterdir() if fnmatch.fnmatch(n.name, pattern)) if store.exists() else []
        merge = given.get("merge-multiple", "").lower() == "true" or "name" in given
        for name in names:
            shutil.copytree(store / name, Path(given["path"]) / ("" if merge else name), dirs_exist_ok=True)

    def _step(self, job_id: str, step: dict, ctx: dict[str, str], env: dict[str, str], state: dict) -> None:
        condition = str(step.get("if", "")).strip()
        if condition not in ("", "always()", "${{ always() }}"):
            raise AssertionError(f"job {job_id}: this runner does not evaluate `if: {condition}`")
        if state["failed"] and not condition:
            return
        uses = step.get("uses", "")
        if uses.startswith("./"):
            action = yaml.safe_load((self.work / uses / "action.yml").read_text())
            given = {k: self.resolve(v, ctx) for k, v in (step.get("with") or {}).items()}
            declared = action.get("inputs") or {}
            unknown = set(given) - set(declared)
            assert not unknown, f"job {job_id}: {uses} has no input {sorted(unknown)[0]}"
            inner = {**ctx, **{f"inputs.{k}": given.get(k, str(v.get("default", ""))) for k, v in declared.items()}}
            for sub in action["runs"]["steps"]:
                self._step(job_id, sub, inner, env, state)
            return
        if uses.startswith(("actions/upload-artifact@", "actions/download-artifact@")):
            self._artifact(uses, {k: self.resolve(v, ctx) for k, v in (step.get("with") or {}).items()})
            return
        if uses or step.get("id") == "install":
            return
        files = {name: self.tmp / f"{job_id}-{name}" for name in ("output", "env")}
        for f in files.values():
            f.write_text("")
        step_env = {**self.env, **env, **state["env"],
                    **{k: self.resolve(v, ctx) for k, v in (step.get("env") or {}).items()},
                    "GITHUB_OUTPUT": str(files["output"]), "GITHUB_ENV": str(files["env"]),
                    "GITHUB_STEP_SUMMARY": str(self.tmp / "summary.md"), "RUNNER_TEMP": str(state["temp"]),
                    "GITHUB_REF_NAME": "main", "GITHUB_ACTOR": ctx.get("github.actor", "")}
        script = self.resolve(step["run"], ctx)
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=self.work, env=step_env,
                              capture_output=True, text=True)
        name = step.get("name") or step.get("id") or script.splitlines()[0]
        self.steps.append(StepRun(job_id, name, proc.returncode, proc.stdout, proc.stderr))
        if proc.returncode != 0:
            state["failed"] = state["failed"] or f"{name!r} (exit {proc.returncode}): {proc.stderr.strip()[-600:]}"
        state["env"].update(_key_values(files["env"].read_text()))
        if step.get("id"):
            for key, value in _key_values(files["output"].read_text()).items():
                ctx[f"steps.{step['id']}.outputs.{key}"] = value

    @property
    def summary(self) -> str:
        path = self.tmp / "summary.md"
        return path.read_text() if path.exists() else ""

    def output(self) -> str:
        return "\n".join(f"[{s.job}] {s.name}: exit {s.returncode}\n{s.stdout}{s.stderr}" for s in self.steps)


def _key_values(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _in_needs_order(jobs: dict) -> list[str]:
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [j for j, spec in jobs.items() if j not in done
                 and all(n in done for n in _as_list(spec.get("needs")))]
        assert ready, f"jobs with circular needs: {sorted(set(jobs) - set(done))}"
        done += ready[:1]
    return done


def _as_list(value) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def runner_env(local_parts: dict[str, str]) -> dict[str, str]:
    """The environment a runner gives steps: ship's venv first on PATH, the local parts' exports."""
    import sys

    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR", "GOPATH", "GOCACHE", "GOMODCACHE")}
    # Not KUBECONFIG nor SHIP_REGISTRY: the workflow must set those from its secret and variable.
    engine = {k: v for k, v in local_parts.items() if k == "DOCKER_HOST"}
    return {**keep, **engine, "PATH": path, "CI": "true", "GITHUB_ACTIONS": "true"}
