#!/usr/bin/env bash
# Stops every local part that hack/cluster-up.sh started, by process id, and deletes the
# kwok cluster and the registry's temp storage. The real node goes first, while the API server
# can still delete its pods, and undoes what it changed on the host (hack/real-node.sh down).
# Safe to run when nothing is running.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

# The second cluster (SHIP_SECOND_CLUSTER=1) first: it is this script again on its own state folder.
if [ -f "$SHIP_SECOND_STATE/kubernetes.cluster" ]; then
  SHIP_STATE="$SHIP_SECOND_STATE" SHIP_CLUSTER="$(cat "$SHIP_SECOND_STATE/kubernetes.cluster")" "$here/cluster-down.sh"
  for what in context cluster user; do
    kubectl config --kubeconfig "$KUBECONFIG_PATH" "delete-$what" "$SHIP_SECOND_NAME" >/dev/null 2>&1 || true
  done
fi
stop_pid traefik
stop_pid prometheus
stop_pid pod-sd
rm -rf "$SHIP_STATE/gateway" "$SHIP_STATE/prometheus" "$SHIP_STATE"/{traefik,prometheus,pod-sd}.sum
if [ -d "$SHIP_STATE/node" ] || [ -f "$SHIP_STATE/kubelet.pid" ] || [ -f "$SHIP_STATE/containerd.pid" ] \
   || [ -f "$SHIP_STATE/kube-proxy.pid" ]; then
  "$here/real-node.sh" down
fi
if [ -f "$SHIP_STATE/kubernetes.cluster" ]; then  # only a cluster this state folder created
  cluster=$(cat "$SHIP_STATE/kubernetes.cluster")
  kwokctl delete cluster --name "$cluster" >/dev/null 2>&1 && log "deleted cluster $cluster (its processes stopped)"
  rm -f "$SHIP_STATE/kubernetes.cluster"
fi
stop_pid podman
"$here/private-registry.sh" down
stop_pid registry
if [ -f "$SHIP_STATE/registry.data" ]; then
  rm -rf "$(cat "$SHIP_STATE/registry.data")" "$SHIP_STATE/registry.data"
fi
exit 0
