#!/usr/bin/env bash
# Stops every local part that hack/cluster-up.sh started, by process id, and deletes the
# kwok cluster and the registry's temp storage. Safe to run when nothing is running.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

stop_pid() { # NAME
  if pid_alive "$1"; then
    local pid; pid=$(cat "$SHIP_STATE/$1.pid")
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped $1 (pid $pid)"
  fi
  rm -f "$SHIP_STATE/$1.pid"
}

kwokctl="$BIN/kwokctl-$KWOK_VERSION"
if [ -f "$SHIP_STATE/kubernetes.cluster" ]; then  # only a cluster this state folder created
  cluster=$(cat "$SHIP_STATE/kubernetes.cluster")
  "$kwokctl" delete cluster --name "$cluster" >/dev/null 2>&1 && log "deleted cluster $cluster (its processes stopped)"
  rm -f "$SHIP_STATE/kubernetes.cluster"
fi
stop_pid podman
stop_pid registry
if [ -f "$SHIP_STATE/registry.data" ]; then
  rm -rf "$(cat "$SHIP_STATE/registry.data")" "$SHIP_STATE/registry.data"
fi
exit 0
