"""A chart's hooks as the real kustomize (v5.8.1, `--enable-helm`) and helm render them: kustomize
keeps hook objects as plain objects with their `helm.sh/hook` annotations (it drops them only with
`skipHooks`), so ship finds them in the rendered base, runs the pre hooks first and leaves out the
hooks that are no release step."""

from pathlib import Path

import pytest

from pipeline.gitops.render import helm_command, render
from pipeline.kube import hooks

pytestmark = pytest.mark.binaries

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    "values.yaml": "{}\n",
    "templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: "{{ .Release.Name }}", annotations: {ship.dev/release: r1-abc}}
spec:
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec: {containers: [{name: web, image: web}]}
""",
    "templates/migrate.yaml": """\
apiVersion: batch/v1
kind: Job
metadata:
  name: "{{ .Release.Name }}-migrate"
  annotations: {"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-delete-policy": before-hook-creation}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: m, image: web}]}
""",
    "templates/notify.yaml": """\
apiVersion: batch/v1
kind: Job
metadata:
  name: "{{ .Release.Name }}-notify"
  annotations: {"helm.sh/hook": post-upgrade}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: n, image: web}]}
""",
    "templates/cleanup.yaml": """\
apiVersion: batch/v1
kind: Job
metadata:
  name: "{{ .Release.Name }}-cleanup"
  annotations: {"helm.sh/hook": pre-delete}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: web}]}
""",
}


def test_kustomize_keeps_a_charts_hooks_and_ship_sorts_them(tmp_path: Path):
    if helm_command() is None:
        pytest.fail("helm is not installed: run `make binaries`", pytrace=False)
    for name, text in CHART.items():
        (tmp_path / "demo" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "demo" / name).write_text(text)
    (tmp_path / "kustomization.yaml").write_text(
        "helmGlobals: {chartHome: .}\nhelmCharts: [{name: demo, releaseName: web}]\n")
    rendered = render(tmp_path, "demo")
    assert sorted(o["metadata"]["name"] for o in rendered) == ["web", "web-cleanup", "web-migrate", "web-notify"]
    plan = hooks.split(hooks.prepare(rendered))
    migrate = next(o for o in rendered if o["metadata"]["name"] == "web-migrate")
    # no ship.dev/app label here (a release's overlay adds it): named by content, not by a release
    assert [o["metadata"]["name"] for o in plan.pre] == [f"web-migrate-{hooks.content_id(migrate)}"]
    notify = next(o for o in rendered if o["metadata"]["name"] == "web-notify")
    assert [o["metadata"]["name"] for o in plan.post] == [f"web-notify-{hooks.content_id(notify)}"]
    assert [o["metadata"]["name"] for o in plan.objects] == ["web"]  # pre-delete: no release step
