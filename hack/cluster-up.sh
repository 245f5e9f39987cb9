#!/usr/bin/env bash
# Starts ship's local parts on 127.0.0.1, or reuses the ones already running:
#   registry    a registry (Debian docker-registry)
#   private     private registries with TLS from a CA of the lab's, token auth and Basic auth
#               (hack/private-registry.sh); the build engine and the real node trust the CA
#   engine      a Docker-API build engine (podman system service)
#   kubernetes  a control plane run by kwokctl's binary runtime with 3 KWOK nodes and the
#               Gateway API CRDs
#   node        one real node (containerd, kubelet, kube-proxy; hack/real-node.sh), tainted
#   gateway     Traefik as the Gateway API data plane: GatewayClass traefik, Gateway
#               ship-system/ship-gateway, its listener on 127.0.0.1:$SHIP_GATEWAY_PORT
#   prometheus  Debian's Prometheus scraping the real node's pods every 2s (found by
#               hack/realnode/pod_sd.py: Debian's build has no Kubernetes discovery), and Traefik's
#               /metrics: users' requests and latencies per backend Service
#   second      only with SHIP_SECOND_CLUSTER=1 (or named): a second kwokctl cluster on
#               127.0.0.1:$SHIP_SECOND_KUBE_PORT with 2 KWOK nodes, no real node, gateway or CRDs;
#               its context ($SHIP_SECOND_NAME, default ship-second) is added to the first
#               cluster's kubeconfig, so one KUBECONFIG reaches both
# node, gateway and prometheus need the kubernetes part (and node the registry); they need root
# and are left out with SHIP_REAL_NODE=0. Safe to run twice, and after a crash that left stale
# pid files; a recreated cluster brings the node, the gateway and Prometheus along with it.
# Prints export lines last: SHIP_REGISTRY, DOCKER_HOST, KUBECONFIG, and with the real node
# SHIP_REAL_NODE_NAME, SHIP_GATEWAY (a canary policy's `gateway:`), SHIP_GATEWAY_URL, SHIP_GATEWAY_METRICS_URL and
# SHIP_PROMETHEUS_URL, and with the second cluster SHIP_SECOND_CONTEXT; the private registries:
# SHIP_PRIVATE_REGISTRY (token auth), SHIP_BASIC_REGISTRY (Basic), SHIP_PRIVATE_REGISTRY_CA and
# SHIP_PRIVATE_REGISTRY_USERNAME/_PASSWORD (SHIP_PRIVATE_REGISTRIES=0 leaves them out).
# Usage: hack/cluster-up.sh [PART...]   (default: all but second; without node, gateway and
# prometheus if SHIP_REAL_NODE=0; with second if SHIP_SECOND_CLUSTER=1)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
parts=("$@")
if [ ${#parts[@]} -eq 0 ]; then
  parts=(registry private engine kubernetes)
  [ "$SHIP_REAL_NODE" = 0 ] || parts+=(node gateway prometheus)
  [ "$SHIP_SECOND_CLUSTER" != 1 ] || parts+=(second)
fi
want() { [[ " ${parts[*]} " == *" $1 "* ]]; }
# What the parts need: each of these runs against the cluster; the node pulls from the registry;
# the second cluster's context goes into the first one's kubeconfig.
if want node || want gateway || want prometheus || want second; then parts+=(kubernetes); fi
if want node; then parts+=(registry); fi
# The node trusts the private registries' CA, made by the part `private` (after the engine's
# certs.d exists: podman reads it at each push).
if want node && [ "$SHIP_PRIVATE_REGISTRIES" != 0 ]; then parts+=(private); fi

want registry && { command -v docker-registry >/dev/null || die "missing Debian package docker-registry (run 'make deps' as root)"; }
want engine && { command -v podman >/dev/null || die "missing Debian package podman (run 'make deps' as root)"; }
if want kubernetes; then
  command -v kubectl >/dev/null || die "kubectl is not installed (it comes with the machine image)"
  "$here/build-binaries.sh" >/dev/null
fi
want prometheus && { command -v prometheus >/dev/null || die "missing Debian package prometheus (run 'make deps' as root)"; }
if want gateway && [ ! -x "$BIN/traefik-$TRAEFIK_VERSION" ]; then
  SHIP_REAL_NODE=1 "$here/build-binaries.sh" >/dev/null
fi

start_registry() {
  if pid_alive registry; then return; fi
  port_busy "$SHIP_REGISTRY_PORT" && die "port 127.0.0.1:$SHIP_REGISTRY_PORT for the registry is busy (set SHIP_REGISTRY_PORT)"
  # After a crash the registry comes back on the same storage, so pushed images survive.
  local data; data=$(cat "$SHIP_STATE/registry.data" 2>/dev/null || true)
  [ -n "$data" ] && [ -d "$data" ] || data=$(mktemp -d /tmp/ship-registry.XXXXXX)
  registry_config "$data" "$SHIP_REGISTRY_PORT" > "$SHIP_STATE/registry.yml"
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
  render podman/registries.conf > "$dir/registries.conf"
  # vfs works in any sandbox (no overlay mounts needed); images here are one small layer.
  render podman/storage.conf > "$dir/storage.conf"
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

# kwokctl's configuration: options, the components' patches for the real node, and the stages.
kwokctl_config() {
  local disable_qps_limits kubectl_binary
  disable_qps_limits=$([ "$SHIP_KUBE_APF" = 1 ] && echo false || echo true)
  kubectl_binary=$(command -v kubectl || true)
  render kwok/kwokctl.yaml
  echo "---"
  cat "$here/kwok/stages.yaml"
}

start_kubernetes() {
  # The configuration (stages and patches included) is part of the cluster: a change means a
  # new cluster.
  local conf="$SHIP_STATE/kwokctl.yaml" config_sum
  config_sum=$(kwokctl_config | sha256sum | cut -c1-16)
  if [ -f "$KUBECONFIG_PATH" ] && [ "$(cat "$SHIP_STATE/kubernetes.config-sum" 2>/dev/null)" = "$config_sum" ] \
     && components_alive && cluster_ready; then return; fi
  # grep -q would quit at the first match and fail the pipeline with SIGPIPE now and then.
  if kwokctl get clusters 2>/dev/null | grep -x "$SHIP_CLUSTER" >/dev/null; then
    # A component died (a crash, or the session that started it ended). Restarting in place
    # leaves kwok's node leases with the dead controller for minutes, so start afresh: the
    # cluster is a test fixture and creating it takes seconds.
    log "cluster $SHIP_CLUSTER is not healthy or its configuration changed; recreating it"
    kwokctl delete cluster --name "$SHIP_CLUSTER" >"$SHIP_STATE/kwokctl.log" 2>&1 || true
  fi
  port_busy "$SHIP_KUBE_PORT" && die "port 127.0.0.1:$SHIP_KUBE_PORT for kube-apiserver is busy (set SHIP_KUBE_PORT)"
  kwokctl_config > "$conf"
  log "creating cluster $SHIP_CLUSTER (Kubernetes $K8S_VERSION) on 127.0.0.1:$SHIP_KUBE_PORT"
  # Recorded first, so cluster-down cleans up even a half-created cluster; and only its own.
  echo "$SHIP_CLUSTER" > "$SHIP_STATE/kubernetes.cluster"
  echo "$config_sum" > "$SHIP_STATE/kubernetes.config-sum"
  kwokctl create cluster --name "$SHIP_CLUSTER" --config "$conf" --wait 120s >"$SHIP_STATE/kwokctl.log" 2>&1 \
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
  if [ "$have" -lt "$SHIP_KWOK_NODES" ]; then
    kwokctl scale node --name "$SHIP_CLUSTER" --replicas "$SHIP_KWOK_NODES" >>"$SHIP_STATE/kwokctl.log" 2>&1 \
      || die "kwokctl scale node failed (log: $SHIP_STATE/kwokctl.log)"
  fi
  wait_for "kube-controller-manager and kube-scheduler leadership" 90 controllers_ready
  wait_for "$SHIP_KWOK_NODES Ready nodes" 60 \
    bash -c "[ \$(${k[*]} get nodes --no-headers 2>/dev/null | grep -cw Ready) -ge $SHIP_KWOK_NODES ]"
  [ "$SHIP_GATEWAY_API" = 1 ] || return 0
  local crds; crds=$(go env GOMODCACHE)/sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION/config/crd/standard
  local bundle='{.metadata.annotations.gateway\.networking\.k8s\.io/bundle-version}'
  if [ "$("${k[@]}" get crd httproutes.gateway.networking.k8s.io -o jsonpath="$bundle" 2>/dev/null)" != "$GATEWAY_API_VERSION" ]; then
    [ -d "$crds" ] || go mod download "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" >/dev/null \
      || die "go mod download sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION failed"
    "${k[@]}" apply --server-side -f "$crds" >/dev/null || die "installing the Gateway API CRDs failed"
    "${k[@]}" wait --for condition=Established --timeout 60s -f "$crds" >/dev/null
    log "Gateway API $GATEWAY_API_VERSION CRDs installed"
  fi
}

# The second cluster is this script again with a state folder, a name and a port of its own (so
# its reuse, recreation and cluster-down work as the first's do): KWOK nodes only, no CRDs. Its
# context is then written into the first cluster's kubeconfig under a stable name, again on
# every run, as a recreated first cluster comes with a new kubeconfig.
start_second() {
  [ "$SHIP_SECOND_KUBE_PORT" != "$SHIP_KUBE_PORT" ] || die "SHIP_SECOND_KUBE_PORT is the first cluster's port"
  SHIP_STATE="$SHIP_SECOND_STATE" SHIP_CLUSTER="$SHIP_SECOND_NAME" SHIP_KUBE_PORT="$SHIP_SECOND_KUBE_PORT" \
    SHIP_SECOND_CLUSTER=0 SHIP_REAL_NODE=0 SHIP_KWOK_NODES=2 SHIP_GATEWAY_API=0 \
    "$here/cluster-up.sh" kubernetes >/dev/null || die "the second cluster $SHIP_SECOND_NAME did not start"
  local own="$HOME/.kwok/clusters/$SHIP_SECOND_NAME/kubeconfig.yaml"
  view() { kubectl config view --kubeconfig "$own" --raw --minify -o jsonpath="$1"; }
  local k=(kubectl config --kubeconfig "$KUBECONFIG_PATH") name="$SHIP_SECOND_NAME"
  "${k[@]}" set-cluster "$name" --server "$(view '{.clusters[0].cluster.server}')" \
    --certificate-authority "$(view '{.clusters[0].cluster.certificate-authority}')" >/dev/null
  "${k[@]}" set-credentials "$name" --client-certificate "$(view '{.users[0].user.client-certificate}')" \
    --client-key "$(view '{.users[0].user.client-key}')" >/dev/null
  "${k[@]}" set-context "$name" --cluster "$name" --user "$name" >/dev/null
  kubectl --kubeconfig "$KUBECONFIG_PATH" --context "$name" get --raw /readyz >/dev/null 2>&1 \
    || die "context $name in $KUBECONFIG_PATH does not reach the second cluster"
  [ "$(kubectl --kubeconfig "$KUBECONFIG_PATH" config current-context)" != "$name" ] \
    || die "the second cluster's context became the current one in $KUBECONFIG_PATH"
  log "second cluster $SHIP_SECOND_NAME up on 127.0.0.1:$SHIP_SECOND_KUBE_PORT (context $name in $KUBECONFIG_PATH)"
}

# ---------------------------------------------------------------------------------- ship-system
# The namespace of ship's own parts: ServiceAccounts for Traefik and Prometheus with the RBAC
# they document, long-lived token Secrets (they run outside the cluster), the GatewayClass and
# the Gateway every test's HTTPRoute can attach to.
setup_ship_system() {
  render gateway/ship-system.yaml \
    | kubectl --kubeconfig "$KUBECONFIG_PATH" apply --server-side --force-conflicts --field-manager ship-hack -f - >/dev/null \
    || die "installing ship-system (RBAC, GatewayClass, Gateway) failed"
}

# token_of SA: the long-lived token the token controller put in Secret SA-token.
token_of() {
  local t=""
  for _ in $(seq 100); do
    t=$(kubectl --kubeconfig "$KUBECONFIG_PATH" -n "$SHIP_GATEWAY_NAMESPACE" get secret "$1-token" \
          -o jsonpath='{.data.token}' 2>/dev/null | base64 -d 2>/dev/null || true)
    [ -n "$t" ] && { echo "$t"; return; }
    sleep 0.2
  done
  die "the token controller did not fill Secret $SHIP_GATEWAY_NAMESPACE/$1-token within 20s"
}

# fresh NAME SUM [ADDED]: the daemon NAME runs and was started for SUM (its configuration and
# its token, which is new with a recreated cluster) and ADDED (what was added to it later: the
# gateway's metrics and their scrape); otherwise it is stopped, and the caller starts it again.
# ADDED is checked on its own (NAME.added: ADDED and the pid it started), so a daemon an older
# cluster-up.sh started restarts once for it, and that older script, which knows SUM only, then
# leaves it running instead of restarting it back.
fresh() {
  if pid_alive "$1" && [ "$(cat "$SHIP_STATE/$1.sum" 2>/dev/null)" = "$2" ] \
     && { [ -z "${3:-}" ] || [ "$(cat "$SHIP_STATE/$1.added" 2>/dev/null)" = "$3 $(cat "$SHIP_STATE/$1.pid")" ]; }; then
    return 0
  fi
  stop_pid "$1"
  return 1
}

# started NAME SUM ADDED: record what the daemon NAME just started with (see fresh).
started() {
  echo "$2" > "$SHIP_STATE/$1.sum"
  echo "$3 $(cat "$SHIP_STATE/$1.pid")" > "$SHIP_STATE/$1.added"
}

start_gateway() {
  local dir="$SHIP_STATE/gateway"
  mkdir -p "$dir"
  local args=(
    --global.checkNewVersion=false --global.sendAnonymousUsage=false --log.level=INFO
    "--entryPoints.web.address=127.0.0.1:$SHIP_GATEWAY_PORT"
    "--entryPoints.traefik.address=127.0.0.1:$SHIP_GATEWAY_ADMIN_PORT" --ping=true --ping.entryPoint=traefik
    --providers.kubernetesgateway=true
    "--providers.kubernetesgateway.endpoint=https://127.0.0.1:$SHIP_KUBE_PORT"
    "--providers.kubernetesgateway.token=$dir/token"
    "--providers.kubernetesgateway.certAuthFilePath=$PKI/ca.crt"
    # The Gateway's status.addresses: where its listener really is.
    --providers.kubernetesgateway.statusAddress.ip=127.0.0.1
  )
  # Users' requests per backend Service (service="NS-NAME-http-PORT@kubernetesgateway") by code, and
  # their latency histogram, on the admin entrypoint's /metrics, scraped by the lab's Prometheus:
  # what a canary's traffic input reads (pipeline/rollout/counters.py).
  local metrics=(
    --metrics.prometheus=true --metrics.prometheus.entryPoint=traefik --metrics.prometheus.addServicesLabels=true
    --metrics.prometheus.buckets=0.05,0.1,0.25,0.5,1,2.5,5
  )
  local token sum added
  token=$(token_of traefik)
  sum=$(echo "$token ${args[*]}" | sha256sum | cut -c1-16)
  added=$(echo "${metrics[*]}" | sha256sum | cut -c1-16)
  if ! fresh traefik "$sum" "$added"; then
    local port
    for port in "$SHIP_GATEWAY_PORT" "$SHIP_GATEWAY_ADMIN_PORT"; do
      port_busy "$port" && die "port 127.0.0.1:$port for the gateway (Traefik) is busy (set SHIP_GATEWAY_PORT / SHIP_GATEWAY_ADMIN_PORT)"
    done
    (umask 077; printf '%s' "$token" > "$dir/token")  # no newline: Traefik sends the file as it is
    start_daemon traefik "$BIN/traefik-$TRAEFIK_VERSION" "${args[@]}" "${metrics[@]}"
    started traefik "$sum" "$added"
    wait_for "Traefik on 127.0.0.1:$SHIP_GATEWAY_ADMIN_PORT" 30 curl -fsS "http://127.0.0.1:$SHIP_GATEWAY_ADMIN_PORT/ping"
    log "gateway (Traefik $TRAEFIK_VERSION) up on 127.0.0.1:$SHIP_GATEWAY_PORT"
  fi
  wait_for "Gateway $SHIP_GATEWAY_NAMESPACE/$SHIP_GATEWAY_NAME Programmed" 60 \
    kubectl --kubeconfig "$KUBECONFIG_PATH" -n "$SHIP_GATEWAY_NAMESPACE" wait --for condition=Programmed \
      --timeout 2s "gateway/$SHIP_GATEWAY_NAME"
}

start_prometheus() {
  local dir="$SHIP_STATE/prometheus" token
  mkdir -p "$dir/data"
  token=$(token_of prometheus)
  # Debian's Prometheus has no Kubernetes discovery (removed by Debian for its dependencies), so
  # realnode/pod_sd.py serves the node's pods as http_sd targets with kubernetes_sd's
  # __meta_kubernetes_* labels; the relabel rules below are the ones kubernetes_sd would take.
  local sd_args=(--listen "127.0.0.1:$SHIP_POD_SD_PORT" --server "https://127.0.0.1:$SHIP_KUBE_PORT"
                 --ca-file "$PKI/ca.crt" --token-file "$dir/token" --node "$SHIP_NODE_NAME")
  local sum; sum=$(echo "$token ${sd_args[*]}" | sha256sum | cut -c1-16)
  if ! fresh pod-sd "$sum"; then
    port_busy "$SHIP_POD_SD_PORT" && die "port 127.0.0.1:$SHIP_POD_SD_PORT for pod discovery is busy (set SHIP_POD_SD_PORT)"
    (umask 077; printf '%s' "$token" > "$dir/token")
    start_daemon pod-sd python3 "$here/realnode/pod_sd.py" "${sd_args[@]}"
    echo "$sum" > "$SHIP_STATE/pod-sd.sum"
    wait_for "pod discovery on 127.0.0.1:$SHIP_POD_SD_PORT" 20 curl -fsS "http://127.0.0.1:$SHIP_POD_SD_PORT/targets"
  fi
  # Only a container port named http or metrics of a running pod, every 2s so tests see a rate
  # within seconds. Pod labels become series labels (ship.dev/track -> ship_dev_track), with
  # namespace, pod and container.
  render prometheus/prometheus.yml > "$dir/prometheus.yml.new"
  sum=$(sha256sum < "$dir/prometheus.yml.new" | cut -c1-16)
  # The gateway's own counters of users' requests, per backend Service (Traefik's /metrics).
  local gateway_job=""
  want gateway && gateway_job="- job_name: traefik
  static_configs:
  - {targets: [\"127.0.0.1:$SHIP_GATEWAY_ADMIN_PORT\"]}"
  local added; added=$(echo "$gateway_job" | sha256sum | cut -c1-16)
  if ! fresh prometheus "$sum" "$added"; then
    port_busy "$SHIP_PROMETHEUS_PORT" && die "port 127.0.0.1:$SHIP_PROMETHEUS_PORT for Prometheus is busy (set SHIP_PROMETHEUS_PORT)"
    [ -z "$gateway_job" ] || echo "$gateway_job" >> "$dir/prometheus.yml.new"
    mv "$dir/prometheus.yml.new" "$dir/prometheus.yml"
    start_daemon prometheus prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
      --storage.tsdb.retention.time=6h --web.listen-address="127.0.0.1:$SHIP_PROMETHEUS_PORT"
    started prometheus "$sum" "$added"
    wait_for "Prometheus on 127.0.0.1:$SHIP_PROMETHEUS_PORT" 60 curl -fsS "http://127.0.0.1:$SHIP_PROMETHEUS_PORT/-/ready"
    log "Prometheus up on 127.0.0.1:$SHIP_PROMETHEUS_PORT, scraping the pods of node $SHIP_NODE_NAME"
  fi
  rm -f "$dir/prometheus.yml.new"
}

if want registry; then start_registry; echo "export SHIP_REGISTRY=127.0.0.1:$SHIP_REGISTRY_PORT"; fi
if want private && [ "$SHIP_PRIVATE_REGISTRIES" != 0 ]; then "$here/private-registry.sh" up; fi
if want engine; then start_podman; echo "export DOCKER_HOST=unix://$PODMAN_SOCK"; fi
if want kubernetes; then start_kubernetes; setup_kubernetes; echo "export KUBECONFIG=$KUBECONFIG_PATH"; fi
if want node; then
  "$here/real-node.sh" up
  echo "export SHIP_REAL_NODE_NAME=$SHIP_NODE_NAME"
fi
if want gateway || want prometheus; then setup_ship_system; fi
if want gateway; then
  start_gateway
  echo "export SHIP_GATEWAY=$SHIP_GATEWAY_NAMESPACE/$SHIP_GATEWAY_NAME"
  echo "export SHIP_GATEWAY_URL=http://127.0.0.1:$SHIP_GATEWAY_PORT"
  echo "export SHIP_GATEWAY_METRICS_URL=http://127.0.0.1:$SHIP_GATEWAY_ADMIN_PORT/metrics"
fi
if want prometheus; then start_prometheus; echo "export SHIP_PROMETHEUS_URL=http://127.0.0.1:$SHIP_PROMETHEUS_PORT"; fi
if want second; then start_second; echo "export SHIP_SECOND_CONTEXT=$SHIP_SECOND_NAME"; fi
exit 0
