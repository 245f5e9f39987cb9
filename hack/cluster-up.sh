#!/usr/bin/env bash
# Starts ship's local parts on 127.0.0.1, or reuses the ones already running:
#   a registry (Debian docker-registry), a Docker-API build engine (podman system service),
#   and a Kubernetes control plane run by kwokctl's binary runtime with 3 KWOK nodes and the
#   Gateway API CRDs. Safe to run twice, and after a crash that left stale pid files.
# Prints export lines for KUBECONFIG, SHIP_REGISTRY and DOCKER_HOST last.
# Usage: hack/cluster-up.sh [registry] [engine] [kubernetes]   (default: all three)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=(registry engine kubernetes)
want() { [[ " ${parts[*]} " == *" $1 "* ]]; }

want registry && { command -v docker-registry >/dev/null || die "missing Debian package docker-registry (run 'make deps' as root)"; }
want engine && { command -v podman >/dev/null || die "missing Debian package podman (run 'make deps' as root)"; }
if want kubernetes; then
  command -v kubectl >/dev/null || die "kubectl is not installed (it comes with the machine image)"
  "$here/build-binaries.sh" >/dev/null
fi

start_registry() {
  if pid_alive registry; then return; fi
  port_busy "$SHIP_REGISTRY_PORT" && die "port 127.0.0.1:$SHIP_REGISTRY_PORT for the registry is busy (set SHIP_REGISTRY_PORT)"
  # After a crash the registry comes back on the same storage, so pushed images survive.
  local data; data=$(cat "$SHIP_STATE/registry.data" 2>/dev/null || true)
  [ -n "$data" ] && [ -d "$data" ] || data=$(mktemp -d /tmp/ship-registry.XXXXXX)
  cat > "$SHIP_STATE/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $data}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$SHIP_REGISTRY_PORT
YML
  echo "$data" > "$SHIP_STATE/registry.data"
  setsid nohup docker-registry serve "$SHIP_STATE/registry.yml" >"$SHIP_STATE/registry.log" 2>&1 &
  echo $! > "$SHIP_STATE/registry.pid"
  wait_for "registry on 127.0.0.1:$SHIP_REGISTRY_PORT" 20 curl -fsS "http://127.0.0.1:$SHIP_REGISTRY_PORT/v2/"
  log "registry up on 127.0.0.1:$SHIP_REGISTRY_PORT (storage $data)"
}

start_podman() {
  local dir="$SHIP_STATE/podman"
  if pid_alive podman && [ -S "$PODMAN_SOCK" ]; then return; fi
  mkdir -p "$dir/storage" "$dir/runroot"
  # Plain HTTP to the local registry only; nothing else is reachable from here anyway.
  cat > "$dir/registries.conf" <<CONF
unqualified-search-registries = []
[[registry]]
location = "127.0.0.1:$SHIP_REGISTRY_PORT"
insecure = true
[[registry]]
location = "localhost:$SHIP_REGISTRY_PORT"
insecure = true
# The next port is for a second, read-only registry that tests start to see a push refused.
[[registry]]
location = "127.0.0.1:$((SHIP_REGISTRY_PORT + 1))"
insecure = true
CONF
  # vfs works in any sandbox (no overlay mounts needed); images here are one small layer.
  cat > "$dir/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$dir/storage"
runroot = "$dir/runroot"
CONF
  rm -f "$PODMAN_SOCK"
  CONTAINERS_REGISTRIES_CONF="$dir/registries.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf" \
    setsid nohup podman --cgroup-manager=cgroupfs --events-backend=file system service --time=0 \
      "unix://$PODMAN_SOCK" >"$SHIP_STATE/podman.log" 2>&1 &
  echo $! > "$SHIP_STATE/podman.pid"
  wait_for "podman API on $PODMAN_SOCK" 30 curl -fsS --unix-socket "$PODMAN_SOCK" http://d/_ping
  log "podman Docker API up on unix://$PODMAN_SOCK"
}

cluster_ready() { kubectl --kubeconfig "$KUBECONFIG_PATH" get --raw /readyz >/dev/null 2>&1; }

# Every component kwokctl started is alive (a zombie counts as dead).
components_alive() {
  local dir="$HOME/.kwok/clusters/$SHIP_CLUSTER/pids" f pid n=0
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || return 1
    pid=$(cat "$f"); n=$((n + 1))
    kill -0 "$pid" 2>/dev/null && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]] || return 1
  done
  [ "$n" -ge 5 ]
}

start_kubernetes() {
  local kwokctl="$BIN/kwokctl-$KWOK_VERSION"
  # The stages are part of the cluster's config: a changed stages file means a new cluster.
  local stages_sum; stages_sum=$( (cat "$here/kwok/stages.yaml" "$here/versions.env"; [ "$SHIP_KUBE_APF" != 1 ] || echo apf) | sha256sum | cut -c1-16)
  if [ -f "$KUBECONFIG_PATH" ] && [ "$(cat "$SHIP_STATE/kubernetes.config-sum" 2>/dev/null)" = "$stages_sum" ] \
     && components_alive && cluster_ready; then return; fi
  if "$kwokctl" get clusters 2>/dev/null | grep -qx "$SHIP_CLUSTER"; then
    # A component died (a crash, or the session that started it ended). Restarting in place
    # leaves kwok's node leases with the dead controller for minutes, so start afresh: the
    # cluster is a test fixture and creating it takes seconds.
    log "cluster $SHIP_CLUSTER is not healthy or its configuration changed; recreating it"
    "$kwokctl" delete cluster --name "$SHIP_CLUSTER" >"$SHIP_STATE/kwokctl.log" 2>&1 || true
  fi
  port_busy "$SHIP_KUBE_PORT" && die "port 127.0.0.1:$SHIP_KUBE_PORT for kube-apiserver is busy (set SHIP_KUBE_PORT)"
  local conf="$SHIP_STATE/kwokctl.yaml"
  {
    cat <<YML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeApiserverPort: $SHIP_KUBE_PORT
  kubeVersion: $K8S_VERSION
  etcdVersion: ${ETCD_VERSION#v}
  kwokVersion: $KWOK_VERSION
  kubeAuthorization: true
  disableQPSLimits: $([ "$SHIP_KUBE_APF" = 1 ] && echo false || echo true)
  kubeApiserverBinary: $BIN/kube-apiserver-$K8S_VERSION
  kubeControllerManagerBinary: $BIN/kube-controller-manager-$K8S_VERSION
  kubeSchedulerBinary: $BIN/kube-scheduler-$K8S_VERSION
  kwokControllerBinary: $BIN/kwok-$KWOK_VERSION
  etcdBinary: $BIN/etcd-$ETCD_VERSION
  kubectlBinary: $(command -v kubectl)
YML
    echo "---"
    cat "$here/kwok/stages.yaml"
  } > "$conf"
  log "creating cluster $SHIP_CLUSTER (Kubernetes $K8S_VERSION) on 127.0.0.1:$SHIP_KUBE_PORT"
  # Recorded first, so cluster-down cleans up even a half-created cluster; and only its own.
  echo "$SHIP_CLUSTER" > "$SHIP_STATE/kubernetes.cluster"
  echo "$stages_sum" > "$SHIP_STATE/kubernetes.config-sum"
  "$kwokctl" create cluster --name "$SHIP_CLUSTER" --config "$conf" --wait 120s >"$SHIP_STATE/kwokctl.log" 2>&1 \
    || { tail -20 "$SHIP_STATE/kwokctl.log" >&2; die "kwokctl create cluster failed (log: $SHIP_STATE/kwokctl.log)"; }
}

# The controllers lead through leases; after a restart they wait for the old lease to expire,
# and until then nothing rolls out. Ready means both leases were renewed in the last 10s.
controllers_ready() {
  kubectl --kubeconfig "$KUBECONFIG_PATH" -n kube-system get lease kube-controller-manager kube-scheduler -o json 2>/dev/null \
    | python3 -c '
import datetime as dt, json, sys
items = json.load(sys.stdin)["items"]
now = dt.datetime.now(dt.timezone.utc)
fresh = [i for i in items if i["spec"].get("renewTime")
         and (now - dt.datetime.fromisoformat(i["spec"]["renewTime"].replace("Z", "+00:00"))).total_seconds() < 10]
sys.exit(0 if len(fresh) == 2 else 1)'
}


setup_kubernetes() {
  local k=(kubectl --kubeconfig "$KUBECONFIG_PATH")
  local have; have=$("${k[@]}" get nodes -o name 2>/dev/null | wc -l)
  if [ "$have" -lt 3 ]; then
    "$BIN/kwokctl-$KWOK_VERSION" scale node --name "$SHIP_CLUSTER" --replicas 3 >>"$SHIP_STATE/kwokctl.log" 2>&1 \
      || die "kwokctl scale node failed (log: $SHIP_STATE/kwokctl.log)"
  fi
  wait_for "kube-controller-manager and kube-scheduler leadership" 90 controllers_ready
  wait_for "3 Ready nodes" 60 bash -c "[ \$(${k[*]} get nodes --no-headers 2>/dev/null | grep -cw Ready) -ge 3 ]"
  local crds; crds=$(go env GOMODCACHE)/sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION/config/crd/standard
  if ! "${k[@]}" get crd httproutes.gateway.networking.k8s.io >/dev/null 2>&1; then
    [ -d "$crds" ] || go mod download "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" >/dev/null \
      || die "go mod download sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION failed"
    "${k[@]}" apply --server-side -f "$crds" >/dev/null || die "installing the Gateway API CRDs failed"
    "${k[@]}" wait --for condition=Established --timeout 60s crd/httproutes.gateway.networking.k8s.io >/dev/null
    log "Gateway API $GATEWAY_API_VERSION CRDs installed"
  fi
}

if want registry; then start_registry; echo "export SHIP_REGISTRY=127.0.0.1:$SHIP_REGISTRY_PORT"; fi
if want engine; then start_podman; echo "export DOCKER_HOST=unix://$PODMAN_SOCK"; fi
if want kubernetes; then start_kubernetes; setup_kubernetes; echo "export KUBECONFIG=$KUBECONFIG_PATH"; fi
