#!/usr/bin/env bash
# make demo: the whole story on the local cluster, in a throw-away copy of this repository
# with a bare git remote. Leaves the cluster up for exploring.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ship="$root/.venv/bin/ship"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# How 50 requests to APP's hostname split between its stable and canary pods (X-Track header).
tracks() {
  for _ in $(seq 50); do curl -s -D - -o /dev/null -H "Host: $1.$host" "$SHIP_GATEWAY_URL/" | sed -n 's/^X-Track: //ip' | tr -d '\r'; done \
    | sort | uniq -c | sed "s/^/  $1: /"
}

eval "$("$root/hack/cluster-up.sh" | grep ^export)"
export KUBECONFIG SHIP_REGISTRY DOCKER_HOST
# With the real node (make cluster's default), the pods are real processes, prod's canary is routed
# by the real gateway and judged on real answers; with SHIP_REAL_NODE=0, KWOK acts them out.
real=${SHIP_REAL_NODE_NAME:+yes}
export SHIP_SECRET_HELLOK8S_DB_PASSWORD=demo-password   # in CI this comes from a GitHub secret
demo=$(mktemp -d /tmp/ship-demo.XXXXXX)
git init -q --bare -b main "$demo/remote.git"
git clone -q "$demo/remote.git" "$demo/repo" 2>/dev/null
cd "$demo/repo"
git config user.name "ship demo"; git config user.email "demo@ship.dev"
cp -r "$root/ship.yaml" "$root/apps" "$root/.gitignore" .
rm -rf apps/hellok8s/bin
suffix=$(date +%s | tail -c 6)
for env in dev uat prod; do   # namespaces of their own, so the demo can run again beside earlier ones
  sed -i "s/namespace: hellok8s-$env\$/namespace: hellok8s-$env-$suffix/" ship.yaml
  mkdir -p "environments/$env"; touch "environments/$env/.gitkeep"
done
# A short progress deadline, so the broken release below fails in seconds, not a minute; a
# shorter canary bake than production would use, so the demo takes a minute or two.
sed -i 's/progressDeadlineSeconds: 60/progressDeadlineSeconds: 10/' apps/hellok8s/base/deployment.yaml
sed -i 's/{weight: 10, bake: 30s}/{weight: 10, bake: 10s}/; s/interval: 5s/interval: 2s/' ship.yaml
host="demo-$suffix.example.com"   # each app gets {app}.$host: hellok8s.demo-….example.com, greeter.demo-…
if [ -n "$real" ]; then
  # Real pods: tolerate the real node's taint and select it; a real start takes a little longer.
  cat > apps/hellok8s/base/real-node.yaml <<'YML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: hellok8s}
spec:
  progressDeadlineSeconds: 20
  template:
    spec:
      nodeSelector: {ship.dev/real-node: "true"}
      tolerations: [{key: ship.dev/real-node, operator: Exists, effect: NoSchedule}]
YML
  printf '\npatches:\n  - path: real-node.yaml\n' >> apps/hellok8s/base/kustomization.yaml
  # prod's canary: routed by the real Gateway, judged against the stable on users' requests as
  # Traefik counts them (the lab's Prometheus scrapes it); rounds in which users are too few are
  # topped up with ship's own GETs through the API server's proxy, and the verdict says so.
  sed -i "s|      host: \"{app}.example.com\".*|      gateway: $SHIP_GATEWAY\n      host: \"{app}.$host\"\n      interval: 2s\n      max_bake: 60s\n      traffic:\n        provider: traefik\n        prometheus: $SHIP_PROMETHEUS_URL\n        top_up: 'http://{service}.{namespace}.svc:3000/'\n        top_up_requests: 6|" ship.yaml
fi
git add -A && git commit -qm "hellok8s and its environments" && git push -q origin main

say "1. ship build: build the image, push it, pin it by digest"
image=$("$ship" build hellok8s)
echo "$image"
say "2. ship release dev: write the overlay, commit, push, sync, gate"
"$ship" release dev hellok8s --image "$image"
say "3. ship promote dev uat: same digest, uat's own config"
"$ship" promote dev uat
say "4. ship promote uat prod: prod's first release (nothing to run a canary beside yet)"
"$ship" promote uat prod
say "5. a broken release in dev: its pods never become ready; ship rolls it back by itself"
if [ -n "$real" ]; then
  broken=$image   # the same build; its config makes it fail its readiness probe, for real
  printf 'MESSAGE=Hello from a broken build\nFAIL_MODE=unready\n' > apps/hellok8s/config/dev.env
else
  broken=$("$root/.venv/bin/python" - "$image" <<'PY'
import sys, docker
from pipeline.image.registry import ImageRef, Registry
ref = ImageRef.parse(sys.argv[1])
client = docker.from_env()
repo = ref.repository + "-never-ready"   # KWOK's stages simulate a build that never gets ready
client.images.get(f"{ref.repository}:{ref.tag}").tag(repo, ref.tag)
for line in client.images.push(repo, tag=ref.tag, stream=True, decode=True):
    pass
print(Registry(ref.registry).resolve(repo, ref.tag))
PY
)
  echo "MESSAGE=Hello from a broken build" > apps/hellok8s/config/dev.env
fi
git commit -qam "config for the broken build" && git push -q origin main
"$ship" release dev hellok8s --image "$broken" || echo "(exit $?: rolled back, as expected)"
say "6. a second good release: dev, uat, then prod with a 10% canary, held for a decision"
echo "MESSAGE=Hello from dev, second edition" > apps/hellok8s/config/dev.env
git commit -qam "second edition" && git push -q origin main
"$ship" release dev hellok8s --image "$image" >/dev/null
"$ship" promote dev uat >/dev/null
"$ship" promote uat prod --canary 10 --hold
ns=$(grep -A1 '^  prod:' ship.yaml | sed -n 's/ *namespace: //p')
kubectl -n "$ns" get httproute hellok8s -o jsonpath='HTTPRoute weights: {range .spec.rules[0].backendRefs[*]}{.name}={.weight} {end}{"\n"}'
if [ -n "$real" ]; then
  echo "50 requests through the real gateway ($SHIP_GATEWAY_URL, Host: hellok8s.$host):"
  tracks hellok8s
  curl -s -H "Host: hellok8s.$host" "$SHIP_GATEWAY_URL/" | head -c 300; echo
fi
"$ship" status prod
say "7. the canary looks good: ship promote uat prod --resume"
"$ship" promote uat prod --resume
say "8. a manual rollback in prod"
"$ship" rollback prod --reason "demo: manual rollback"
if [ -n "$real" ]; then
  say "8b. a canary that fails in part: 12% of its answers are 500s; judged on its users' requests beside the stable's"
  printf 'MESSAGE=Hello from dev, a flaky edition\n' > apps/hellok8s/config/dev.env
  echo "ERROR_RATE=0.12" >> apps/hellok8s/config/prod.env
  git commit -qam "a flaky edition" && git push -q origin main
  "$ship" release dev hellok8s --image "$image" >/dev/null
  "$ship" promote dev uat >/dev/null
  echo "users: 40 requests/s through the real gateway (Host: hellok8s.$host) while the canary bakes"
  (cd "$root" && exec .venv/bin/python -m tests.users "$SHIP_GATEWAY_URL" "hellok8s.$host" 40 120) & users=$!
  { "$ship" promote uat prod 2>&1 || echo "(exit $?: aborted by its users' error rate; the stable never noticed)"; } \
    | tee "$demo/canary-users.log"
  kill "$users" 2>/dev/null; wait "$users" 2>/dev/null || true
  echo "the verdict from users' traffic through the gateway:"
  grep "users' traffic through the gateway" "$demo/canary-users.log" | grep -m1 "FAIL" | sed 's/^.*analysis round/  analysis round/' || true
  sed -i '/^ERROR_RATE=/d' apps/hellok8s/config/prod.env
  git commit -qam "prod: no more flakiness" && git push -q origin main
fi
say "9. stop the line: ship freeze prod (a commit); a third release is held at prod's door"
"$ship" freeze prod --reason "demo: launch week"
echo "MESSAGE=Hello from dev, third edition" > apps/hellok8s/config/dev.env
git commit -qam "third edition" && git push -q origin main
"$ship" release dev hellok8s --image "$image" >/dev/null
"$ship" promote dev uat >/dev/null
"$ship" promote uat prod --no-canary || echo "(exit $?: held by freeze, as expected; rollbacks and aborts still go through)"
"$ship" policy prod
say "10. an override with a reason goes through, and git records who and why"
"$ship" promote uat prod --no-canary --override-freeze --reason "demo: hotfix approved by the on-call"
git log -1 --format='%B' --grep='^promote(prod)' | grep '^Ship-Override' | sed 's/^/  /'
"$ship" unfreeze prod
say "11. a second app, greeter: hellok8s's base and config renamed (no password); ship init adds it to ship.yaml"
mkdir apps/greeter && cp -r apps/hellok8s/base apps/hellok8s/config apps/greeter/
sed -i 's/hellok8s/greeter/g; /- name: DB_PASSWORD/,/key: DB_PASSWORD/d' apps/greeter/base/*.yaml apps/greeter/config/*.env
"$ship" init greeter --path apps/greeter
echo "MESSAGE=Hello from dev, fourth edition" > apps/hellok8s/config/dev.env
git add -A && git commit -qm "greeter, a second app; hellok8s's fourth edition" && git push -q origin main
say "12. ship release dev hellok8s greeter: two apps, one commit, one sync, each gated on its own"
# greeter runs the hellok8s image: its base names image greeter, which the overlay's kustomize images: pins
"$ship" release dev hellok8s greeter --image hellok8s="$image" --image greeter="$image"
git log -1 --format='  %s' --grep='^release(dev)'
say "13. ship promote dev uat: both apps as one unit (one commit, one sync, one gate over both)"
"$ship" promote dev uat
git log -1 --format='  %s' --grep='^promote(uat)'
echo "greeter's first release in prod has no stable to run a canary beside: promoted on its own, directly"
"$ship" promote uat prod greeter >/dev/null
"$ship" status
say "14. a unit canary in prod: hellok8s and greeter at 10%, side by side, analysed together, held"
echo "MESSAGE=Hello from greeter, second edition" > apps/greeter/config/dev.env
git commit -qam "greeter, second edition" && git push -q origin main
"$ship" release dev greeter --image "$image" >/dev/null
"$ship" promote dev uat >/dev/null
"$ship" promote uat prod --canary 10 --hold
for app in hellok8s greeter; do
  kubectl -n "$ns" get httproute "$app" -o jsonpath='HTTPRoute {.metadata.name} ({.spec.hostnames[0]}): {range .spec.rules[0].backendRefs[*]}{.name}={.weight} {end}{"\n"}'
done
if [ -n "$real" ]; then
  echo "50 requests to each app's own hostname through the real gateway:"
  tracks hellok8s; tracks greeter
fi
"$ship" status prod
say "15. ship promote uat prod --resume: both stables move, both canaries go, in one unit"
"$ship" promote uat prod --resume
say "16. ship status: environments × apps"
"$ship" status
say "17. ship history prod"
"$ship" history prod
say "18. ship metrics: DORA's four keys, from the commits above"
"$ship" metrics
say "19. podinfo, an app nobody here wrote, from its own Helm chart: ship init podinfo --chart"
# Its binaries come from podinfo's Go module (hack/build-binaries.sh); its chart, unmodified, from
# examples/podinfo; its values per environment from apps/podinfo (docs/charts.md).
cp -r "$root/apps/podinfo" apps/ && rm -rf apps/podinfo/bin
mkdir -p examples && cp -r "$root/examples/podinfo" examples/
"$ship" init podinfo --path apps/podinfo --chart examples/podinfo/charts/podinfo
sed -i '/^  podinfo:/,/build:/ s|build: \[\]|build: ["mkdir -p bin \&\& cp ${SHIP_CACHE:-$HOME/.cache/ship}/bin/podinfo ${SHIP_CACHE:-$HOME/.cache/ship}/bin/podcli bin/"]|' ship.yaml
if [ -n "$real" ]; then
  printf 'nodeSelector: {ship.dev/real-node: "true"}\ntolerations: [{key: ship.dev/real-node, operator: Exists, effect: NoSchedule}]\n' \
    >> apps/podinfo/values.yaml
fi
git add -A && git commit -qm "podinfo from its own chart" && git push -q origin main
pimage=$("$ship" build podinfo)
"$ship" release dev podinfo --image "$pimage"
"$ship" promote dev uat podinfo >/dev/null
"$ship" promote uat prod podinfo >/dev/null   # its first release in prod: no stable to run a canary beside
ls "environments/prod/podinfo/charts/"
say "20. a values-only change is a new release: podinfo's message in dev"
printf 'replicaCount: 1\nui: {message: podinfo in dev, second edition}\n' > apps/podinfo/values/dev.yaml
git commit -qam "podinfo: a new message in dev" && git push -q origin main
"$ship" release dev podinfo --image "$pimage"
"$ship" history dev podinfo
say "What happened"
git log -32 --format='  %s' | grep -v '^  record(' || true
cat <<MSG

In short: one image was built and pinned by digest; it went dev → uat → prod; a broken build
was rolled back in dev without anyone's help; a second release ran as a 10% canary in prod
beside the stable release, was analysed, held, and promoted; then prod was rolled back by hand.
Then prod was frozen: a third release stopped at its door (exit 75) until someone overrode the
freeze with a reason, which the commit's Ship-Override-* trailers and prod's ledger keep.
Then a second app, greeter, joined: released beside hellok8s in one commit, promoted with it as
one unit, and run with it as two canaries side by side in prod, each on its own hostname.
Then podinfo, an app nobody here wrote, went dev → uat → prod from its own Helm chart, unmodified,
with values per environment; a values-only change in dev was a release of its own.
Every step above is a commit in git, and environments/ENV/APP/ledger.yaml says what became of each.

The demo repository is $demo/repo (remote: $demo/remote.git); the cluster stays up.
  export KUBECONFIG=$KUBECONFIG
  kubectl get deploy -A -l app.kubernetes.io/managed-by=ship
Tear everything down with: make cluster-down
MSG
say "The dashboard: what runs where, the canary history, a timeline and the DORA charts"
"$ship" dashboard --out "$demo/dashboard" --live
echo "Dashboard: $demo/dashboard/index.html   (live: cd $demo/repo && $ship serve)"
