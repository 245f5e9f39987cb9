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
# 1: kube-apiserver keeps its default request limits and API Priority and Fairness (make faults
# throttles ship with them); otherwise they are off, so tests and benchmarks are never throttled.
SHIP_KUBE_APF=${SHIP_KUBE_APF:-0}
BIN="$SHIP_CACHE/bin"
KUBECONFIG_PATH="$HOME/.kwok/clusters/$SHIP_CLUSTER/kubeconfig.yaml"
PODMAN_SOCK="$SHIP_STATE/podman/podman.sock"
mkdir -p "$SHIP_STATE"

die() { echo "cluster: $*" >&2; exit 1; }
log() { echo "cluster: $*" >&2; }

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
