# Shared helpers for the hack/ scripts: where state lives, pid files, port checks, errors.
# Sourced, never run. Everything ship starts listens on 127.0.0.1 only.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
SHIP_CACHE=${SHIP_CACHE:-$HOME/.cache/ship}
SHIP_STATE=${SHIP_STATE:-$SHIP_CACHE/run}
SHIP_CLUSTER=${SHIP_CLUSTER:-ship}
SHIP_KUBE_PORT=${SHIP_KUBE_PORT:-16443}
SHIP_REGISTRY_PORT=${SHIP_REGISTRY_PORT:-15000}
# A second, small cluster (SHIP_SECOND_CLUSTER=1, or the part `second`): KWOK nodes only, for
# environments on another kube context. Its context is added to this cluster's kubeconfig.
SHIP_SECOND_CLUSTER=${SHIP_SECOND_CLUSTER:-0}
SHIP_SECOND_KUBE_PORT=${SHIP_SECOND_KUBE_PORT:-16444}
SHIP_SECOND_NAME=${SHIP_SECOND_NAME:-$SHIP_CLUSTER-second}  # its kwokctl cluster and its context
SHIP_SECOND_STATE="$SHIP_STATE/second"
# How many KWOK nodes the cluster gets, and whether the Gateway API CRDs are installed (the second
# cluster has 2 nodes and no CRDs).
SHIP_KWOK_NODES=${SHIP_KWOK_NODES:-3}
SHIP_GATEWAY_API=${SHIP_GATEWAY_API:-1}
# 1: kube-apiserver keeps its default request limits and API Priority and Fairness (make faults
# throttles ship with them); otherwise they are off, so tests and benchmarks are never throttled.
SHIP_KUBE_APF=${SHIP_KUBE_APF:-0}
# The real node, the gateway and Prometheus (SHIP_REAL_NODE=0: KWOK nodes only, no root needed).
SHIP_REAL_NODE=${SHIP_REAL_NODE:-1}
SHIP_GATEWAY_PORT=${SHIP_GATEWAY_PORT:-18000}              # Traefik's entrypoint: the Gateway's listener
SHIP_GATEWAY_ADMIN_PORT=${SHIP_GATEWAY_ADMIN_PORT:-18080}  # Traefik's /ping
SHIP_PROMETHEUS_PORT=${SHIP_PROMETHEUS_PORT:-19090}
SHIP_POD_SD_PORT=${SHIP_POD_SD_PORT:-19091}                # the real node's pods as Prometheus targets
SHIP_KUBELET_PORT=${SHIP_KUBELET_PORT:-10350}              # on the node IP: logs, exec, port-forward
SHIP_KUBELET_HEALTHZ_PORT=${SHIP_KUBELET_HEALTHZ_PORT:-10348}
SHIP_KUBE_PROXY_HEALTHZ_PORT=${SHIP_KUBE_PROXY_HEALTHZ_PORT:-10356}
SHIP_KUBE_PROXY_METRICS_PORT=${SHIP_KUBE_PROXY_METRICS_PORT:-10349}
# One real node per machine: the bridge, the pod subnet, /kubepods cgroups and the iptables chains
# are machine-global, so whichever state folder claims it first owns it (see real-node.sh).
SHIP_NODE_NAME=${SHIP_NODE_NAME:-real-0}
SHIP_NODE_BRIDGE=${SHIP_NODE_BRIDGE:-ship-br0}
SHIP_POD_SUBNET=${SHIP_POD_SUBNET:-10.244.50.0/24}
SHIP_NODE_IP=${SHIP_NODE_IP:-10.244.50.1}        # the bridge's address doubles as the node's InternalIP
# kube-apiserver's Service range: kube-apiserver's default (10.0.0.0/24) overlaps KWOK's fake pod IPs.
SHIP_SERVICE_CIDR=${SHIP_SERVICE_CIDR:-10.96.0.0/24}
SHIP_NODE_TAINT_KEY=ship.dev/real-node            # taint (NoSchedule) and label (=true) of the real node
SHIP_GATEWAY_NAMESPACE=ship-system
SHIP_GATEWAY_NAME=ship-gateway
BIN="$SHIP_CACHE/bin"
KWOK_DIR="$HOME/.kwok/clusters/$SHIP_CLUSTER"
KUBECONFIG_PATH="$KWOK_DIR/kubeconfig.yaml"
# kwokctl also writes each cluster's context into $KUBECONFIG (or ~/.kube/config) and makes it the
# current one: a second cluster (make faults, a developer's own) would take every later command of
# the first. A file of its own under SHIP_STATE keeps the user's and every cluster's kubeconfig as it was.
kwokctl() { KUBECONFIG="$SHIP_STATE/kwokctl-contexts.yaml" "$BIN/kwokctl-$KWOK_VERSION" "$@"; }
PKI="$KWOK_DIR/pki"
PODMAN_SOCK="$SHIP_STATE/podman/podman.sock"
mkdir -p "$SHIP_STATE"

die() { echo "cluster: $*" >&2; exit 1; }
log() { echo "cluster: $*" >&2; }

# render FILE: the template hack/FILE (a config a local part runs with) with the shell's variables
# expanded, exactly as an unquoted heredoc expands them: $VAR, ${VAR#x}, $((…)). The output is
# byte-for-byte what the heredoc it replaced gave, so the checksums that decide restarts hold.
render() {
  local __template
  __template=$(cat "$here/$1") || die "missing template hack/$1"
  eval "cat <<__SHIP_TEMPLATE__
$__template
__SHIP_TEMPLATE__"
}

# registry_config DATA PORT: a docker-registry's config, its storage in DATA, listening on
# 127.0.0.1:PORT (the plain registry as it is; private-registry.sh adds TLS and auth below it).
registry_config() {
  local data=$1 port=$2
  render registry/registry.yml
}

# pid_alive NAME: the process recorded in NAME.pid is running (a stale file is removed).
pid_alive() {
  local f="$SHIP_STATE/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  # A killed process that nobody reaped yet is a zombie: kill -0 succeeds, but it is dead.
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]]; then
    return 0
  fi
  rm -f "$f"; return 1
}

# start_daemon NAME CMD...: run CMD in its own session (it outlives this script), log to NAME.log,
# remember its pid in NAME.pid.
start_daemon() {
  local name=$1; shift
  setsid nohup "$@" >"$SHIP_STATE/$name.log" 2>&1 </dev/null &
  echo $! > "$SHIP_STATE/$name.pid"
}

# stop_pid NAME: SIGTERM the process in NAME.pid, SIGKILL after SECS (default 5), forget it.
stop_pid() {
  local secs=${2:-5}
  if pid_alive "$1"; then
    local pid; pid=$(cat "$SHIP_STATE/$1.pid")
    kill "$pid" 2>/dev/null
    for _ in $(seq $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped $1 (pid $pid)"
  fi
  rm -f "$SHIP_STATE/$1.pid"
}

# cluster_id: names this cluster's incarnation (its CA). A recreated cluster has a new CA, and
# whatever was set up against the old one (node certificates, tokens) must be made again.
cluster_id() { sha256sum "$PKI/ca.crt" 2>/dev/null | cut -c1-16; }

port_busy() { python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
# As servers do: a port whose old connections linger in TIME_WAIT is free to listen on.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}

# wait_for WHAT SECONDS CMD...: retry CMD until it succeeds or the time is up.
wait_for() {
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || die "$what did not come up within ${secs}s"
    sleep 0.3
  done
}
# The private registries (the part `private`): TLS from a CA of their own ($SHIP_STATE/private/ca.crt),
# one with token auth (its issuer on the third port), one with htpasswd Basic auth.
SHIP_PRIVATE_REGISTRIES=${SHIP_PRIVATE_REGISTRIES:-1}  # 0: no private registries
SHIP_PRIVATE_REGISTRY_PORT=${SHIP_PRIVATE_REGISTRY_PORT:-15443}
SHIP_BASIC_REGISTRY_PORT=${SHIP_BASIC_REGISTRY_PORT:-15444}
SHIP_TOKEN_ISSUER_PORT=${SHIP_TOKEN_ISSUER_PORT:-15445}
PRIVATE_DIR="$SHIP_STATE/private"
