#!/usr/bin/env bash
# ship's real node: one Kubernetes node ($SHIP_NODE_NAME, default real-0) beside the KWOK nodes,
# where containerd and runc (Debian's) run real containers, the kubelet runs real probes and
# kube-proxy (iptables mode) programs real Service traffic. Called by cluster-up.sh and
# cluster-down.sh; hack/README.md ("The local parts") says what it runs and how pods land on it.
#
#   real-node.sh up     start (or reuse) containerd, the CNI bridge, the kubelet and kube-proxy
#   real-node.sh down   delete its pods, stop them by pid, undo what they changed on the host
#
# Needs root (network namespaces, a bridge, iptables, cgroups, mounts). The node is tainted
# ship.dev/real-node=true:NoSchedule and labelled ship.dev/real-node=true, so only pods that
# tolerate the taint and select the label land on it. Its images come from ship's registry.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

NODE_DIR="$SHIP_STATE/node"          # everything of this node: containerd, kubelet, certs, CNI
CLAIM=/run/ship-real-node.owner      # the SHIP_STATE owning the machine's one real node
REG="127.0.0.1:$SHIP_REGISTRY_PORT"
PAUSE_IMAGE="$REG/ship/pause:$PAUSE_VERSION"
CTR_SOCK="$NODE_DIR/containerd/containerd.sock"
CNI_BIN=/usr/lib/cni                 # Debian's containernetworking-plugins
k() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }
node_log() { echo "real-node: $*" >&2; }

# ------------------------------------------------------------------------------------ ownership
# Another state folder (a second cluster on this machine) may own the node. Its node is in use
# while any of its daemons runs; otherwise its claim is stale (a reboot clears /run; a crash
# does not) and its leftovers are cleaned with its own `down` before this one takes over.
claim() {
  local owner; owner=$(cat "$CLAIM" 2>/dev/null || true)
  if [ -n "$owner" ] && [ "$owner" != "$SHIP_STATE" ]; then
    local name pid
    for name in kubelet containerd kube-proxy; do
      pid=$(cat "$owner/$name.pid" 2>/dev/null || true)
      if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        die "the real node is in use by the local parts in SHIP_STATE=$owner; stop them (SHIP_STATE=$owner hack/cluster-down.sh, with that cluster's settings) or set SHIP_REAL_NODE=0"
      fi
    done
    node_log "cleaning up after the real node of SHIP_STATE=$owner, whose processes are gone"
    SHIP_STATE="$owner" "$here/real-node.sh" down || true
  fi
  echo "$SHIP_STATE" > "$CLAIM"
}

# ------------------------------------------------------------------------------------------- up
save_sysctls() {
  # The kubelet sets kernel.panic, panic_on_oops and vm.overcommit_memory, the bridge plugin
  # ip_forward. Keep the host's values (once: a re-run after a crash must not save ours).
  [ -f "$NODE_DIR/sysctl.orig" ] && return
  local s
  for s in net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
           kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet; do
    echo "$s=$(sysctl -n "$s")"
  done > "$NODE_DIR/sysctl.orig"
}

up_network() {
  save_sysctls
  sysctl -qw net.ipv4.ip_forward=1  # pod -> Service -> pod; the bridge plugin would set it anyway
  if ! ip link show "$SHIP_NODE_BRIDGE" >/dev/null 2>&1; then
    # Made here, not by the CNI plugin, because its address is the node's InternalIP and the
    # kubelet's listen address, needed before the first pod (the kubelet refuses a loopback IP).
    ip link add "$SHIP_NODE_BRIDGE" type bridge
    ip addr add "$SHIP_NODE_IP/${SHIP_POD_SUBNET#*/}" dev "$SHIP_NODE_BRIDGE"
    ip link set "$SHIP_NODE_BRIDGE" up
    # A ClusterIP kube-proxy has not programmed yet goes into the bridge and dies there, not out
    # of the default route. The route goes away with the bridge.
    ip route add "$SHIP_SERVICE_CIDR" dev "$SHIP_NODE_BRIDGE" src "$SHIP_NODE_IP"
  fi
  mkdir -p "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam"
  cat > "$NODE_DIR/cni/net.d/10-ship.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "ship-real-node",
  "plugins": [
    {"type": "bridge", "bridge": "$SHIP_NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
              "ranges": [[{"subnet": "$SHIP_POD_SUBNET", "gateway": "$SHIP_NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}}
  ]
}
JSON
}

push_pause() {
  # The registry's storage is new with every cluster-down/up; the push is a few kB when present.
  curl -fsS -o /dev/null -H "Accept: application/vnd.oci.image.manifest.v1+json" \
    "http://$REG/v2/ship/pause/manifests/$PAUSE_VERSION" 2>/dev/null && return
  python3 "$here/realnode/oci_push.py" "$REG" "ship/pause:$PAUSE_VERSION" "$BIN/pause-$PAUSE_VERSION:/pause" \
    --entrypoint /pause >/dev/null || die "pushing the pause image to $REG failed"
}

up_containerd() {
  pid_alive containerd && return
  local c="$NODE_DIR/containerd"
  mkdir -p "$c"/{root,state,opt} "$c/certs.d/$REG"
  # Images come from ship's plain-HTTP registry on loopback, as the build pushed them.
  cat > "$c/certs.d/$REG/hosts.toml" <<TOML
server = "http://$REG"
[host."http://$REG"]
  capabilities = ["pull", "resolve"]
TOML
  cat > "$c/config.toml" <<TOML
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$CTR_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  # This VM's root lacks CAP_SYS_RESOURCE: a negative oom_score_adj (the sandbox's -998,
  # Guaranteed pods' -997) makes runc init fail ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$NODE_DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
TOML
  start_daemon containerd containerd --config "$c/config.toml"
  wait_for "containerd" 30 ctr --address "$CTR_SOCK" version
}

# The private registries (hack/private-registry.sh) serve TLS from the lab's CA: containerd reads
# certs.d at each pull, so this needs no restart. The pull secret a sync makes brings the login.
trust_private_registries() {
  local c="$NODE_DIR/containerd" port host
  [ -f "$PRIVATE_DIR/ca.crt" ] || return 0
  for port in "$SHIP_PRIVATE_REGISTRY_PORT" "$SHIP_BASIC_REGISTRY_PORT"; do
    host="127.0.0.1:$port"
    mkdir -p "$c/certs.d/$host"
    cat > "$c/certs.d/$host/hosts.toml" <<TOML
server = "https://$host"
[host."https://$host"]
  capabilities = ["pull", "resolve"]
  ca = "$PRIVATE_DIR/ca.crt"
TOML
  done
}

# kubeconfig_for NAME CN O: a client certificate from the cluster's CA, in a kubeconfig.
kubeconfig_for() {
  local n=$1 cn=$2 o=$3 d="$NODE_DIR/pki"
  mkdir -p "$d"
  [ -f "$d/$n.kubeconfig" ] && return
  openssl req -new -newkey rsa:2048 -nodes -keyout "$d/$n.key" -subj "/O=$o/CN=$cn" -out "$d/$n.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' > "$d/client.ext"
  openssl x509 -req -in "$d/$n.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 365 \
    -extfile "$d/client.ext" -out "$d/$n.crt" 2>/dev/null || die "signing the $n certificate failed"
  local f="$d/$n.kubeconfig"
  kubectl config --kubeconfig "$f" set-cluster c --server "https://127.0.0.1:$SHIP_KUBE_PORT" \
    --certificate-authority "$PKI/ca.crt" --embed-certs >/dev/null
  kubectl config --kubeconfig "$f" set-credentials u --client-certificate "$d/$n.crt" --client-key "$d/$n.key" --embed-certs >/dev/null
  kubectl config --kubeconfig "$f" set-context c --cluster c --user u >/dev/null
  kubectl config --kubeconfig "$f" use-context c >/dev/null
}

node_ready() {
  [ "$(k get node "$SHIP_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

up_kubelet() {
  if pid_alive kubelet; then return; fi
  kubeconfig_for kubelet "system:node:$SHIP_NODE_NAME" system:nodes
  mkdir -p "$NODE_DIR/kubelet" "$NODE_DIR/pod-logs"
  cat > "$NODE_DIR/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $SHIP_NODE_IP
port: $SHIP_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $SHIP_KUBELET_HEALTHZ_PORT
containerRuntimeEndpoint: unix://$CTR_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false   # this VM mounts cgroup v1; 1.34 only warns, later kubelets refuse by default
failSwapOn: false
podLogsDir: $NODE_DIR/pod-logs
# The apiserver calls the kubelet (logs, exec) with kwokctl's admin certificate.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
makeIPTablesUtilChains: false
maxPods: 110
rotateCertificates: false
serializeImagePulls: false
evictionHard: {memory.available: 200Mi, nodefs.available: 5%, imagefs.available: 5%}
YAML
  start_daemon kubelet "$BIN/kubelet-$K8S_VERSION" --config "$NODE_DIR/kubelet-config.yaml" \
    --kubeconfig "$NODE_DIR/pki/kubelet.kubeconfig" --root-dir "$NODE_DIR/kubelet" \
    --hostname-override "$SHIP_NODE_NAME" --node-ip "$SHIP_NODE_IP" \
    --node-labels "$SHIP_NODE_TAINT_KEY=true" --register-with-taints "$SHIP_NODE_TAINT_KEY=true:NoSchedule" --v 1
}

up_kube_proxy() {
  pid_alive kube-proxy && return  # it exits when its config file is rewritten, even unchanged
  kubeconfig_for kube-proxy system:kube-proxy system:node-proxier
  cat > "$NODE_DIR/kube-proxy-config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NODE_DIR/pki/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $SHIP_NODE_NAME
healthzBindAddress: 127.0.0.1:$SHIP_KUBE_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$SHIP_KUBE_PROXY_METRICS_PORT
clusterCIDR: $SHIP_POD_SUBNET
nodePortAddresses: ["$SHIP_NODE_IP/32"]
# 0: leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, masqueradeAll: false, syncPeriod: 30s, minSyncPeriod: 1s}
YAML
  start_daemon kube-proxy "$BIN/kube-proxy-$K8S_VERSION" --config "$NODE_DIR/kube-proxy-config.yaml" --v 1
  wait_for "kube-proxy healthz" 60 curl -fsS "http://127.0.0.1:$SHIP_KUBE_PROXY_HEALTHZ_PORT/healthz"
}

cmd_up() {
  [ "$(id -u)" = 0 ] || die "the real node needs root (containerd, the kubelet, iptables); run as root or set SHIP_REAL_NODE=0"
  local b
  for b in containerd runc ctr conntrack iptables openssl; do
    command -v "$b" >/dev/null || die "missing $b for the real node (run 'make deps' as root, or set SHIP_REAL_NODE=0)"
  done
  [ -x "$CNI_BIN/bridge" ] || die "missing Debian package containernetworking-plugins (run 'make deps' as root)"
  for b in kubelet kube-proxy; do
    [ -x "$BIN/$b-$K8S_VERSION" ] || die "missing $BIN/$b-$K8S_VERSION (run hack/build-binaries.sh)"
  done
  [ -f "$PKI/ca.crt" ] || die "no cluster to join: $PKI/ca.crt is missing (start the kubernetes part first)"
  claim
  mkdir -p "$NODE_DIR"
  # A node set up for another incarnation of the cluster (the cluster was recreated) holds
  # certificates from a dead CA and pods nobody owns: take it down and start afresh.
  local id; id=$(cluster_id)
  if [ -f "$NODE_DIR/cluster-id" ] && [ "$(cat "$NODE_DIR/cluster-id")" != "$id" ]; then
    node_log "the cluster was recreated; restarting the real node for it"
    cmd_down
    claim
    mkdir -p "$NODE_DIR"
  fi
  echo "$id" > "$NODE_DIR/cluster-id"
  up_network
  push_pause
  up_containerd
  trust_private_registries
  up_kubelet
  up_kube_proxy
  wait_for "node $SHIP_NODE_NAME Ready" 120 node_ready
}

# ----------------------------------------------------------------------------------------- down
# Pods go away through the kubelet (it tears down their sandboxes, netns and veths through the
# CNI plugin). The node is cordoned first, so their controllers' replacements stay Pending.
drain_pods() {
  pid_alive kubelet && k get --raw /readyz >/dev/null 2>&1 && k get node "$SHIP_NODE_NAME" >/dev/null 2>&1 || return 0
  k cordon "$SHIP_NODE_NAME" >/dev/null 2>&1 || true
  k delete pods --all-namespaces --field-selector "spec.nodeName=$SHIP_NODE_NAME" --wait=false >/dev/null 2>&1 || true
  local end=$((SECONDS + 60))
  while [ $SECONDS -lt $end ] && [ -n "$(k get pods --all-namespaces --field-selector "spec.nodeName=$SHIP_NODE_NAME" -o name 2>/dev/null)" ]; do
    sleep 0.5
  done
  k delete node "$SHIP_NODE_NAME" --wait=false >/dev/null 2>&1 || true
}

cmd_down() {
  set +e  # best effort: every step runs, whatever the one before found
  drain_pods
  stop_pid kube-proxy
  # Removes kube-proxy's iptables chains (all of them, whoever made them; only this node uses them).
  [ -x "$BIN/kube-proxy-$K8S_VERSION" ] && "$BIN/kube-proxy-$K8S_VERSION" --cleanup >"$SHIP_STATE/kube-proxy-cleanup.log" 2>&1 || true
  stop_pid kubelet 15
  # --cleanup keeps KUBE-FIREWALL (the kubelet's too); nothing else on this machine uses it.
  local ipt
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    while "$ipt" -t filter -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    while "$ipt" -t filter -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    "$ipt" -t filter -F KUBE-FIREWALL 2>/dev/null && "$ipt" -t filter -X KUBE-FIREWALL 2>/dev/null || true
  done
  # Containers the kubelet could not stop (no API server, or it was dead): kill and delete them
  # through containerd, whose shims outlive it otherwise.
  if pid_alive containerd; then
    local t ctr=(ctr --address "$CTR_SOCK" -n k8s.io)
    for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
    for _ in $(seq 20); do [ -z "$("${ctr[@]}" tasks ls -q 2>/dev/null | head -1)" ] && break; sleep 0.25; done
    for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks rm -f "$t" >/dev/null 2>&1 || true; done
    for t in $("${ctr[@]}" containers ls -q 2>/dev/null); do "${ctr[@]}" containers rm "$t" >/dev/null 2>&1 || true; done
  fi
  stop_pid containerd 15
  # Shims whose containerd died before they were told to go (they hold the node's folders).
  local p
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $CTR_SOCK" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  # Mounts left behind (container rootfs, shm, projected tokens), deepest first.
  findmnt -rn -o TARGET | grep -F "$NODE_DIR/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  # The pods' network namespaces (pinned by containerd under /run/netns), found by their address.
  local ns
  for ns in /run/netns/cni-*; do
    [ -e "$ns" ] || continue
    if ip netns exec "$(basename "$ns")" ip -br addr 2>/dev/null | grep -F " ${SHIP_POD_SUBNET%.*}." >/dev/null; then
      umount "$ns" 2>/dev/null || true; rm -f "$ns"
    fi
  done
  # cgroups the kubelet and runc made (the kubepods tree), deepest first.
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  find /var/log/containers /var/log/pods -maxdepth 1 -type l -lname "$NODE_DIR/*" -delete 2>/dev/null || true
  ip link show "$SHIP_NODE_BRIDGE" >/dev/null 2>&1 && ip link del "$SHIP_NODE_BRIDGE"
  # iptables-nft leaves empty ip/ip6 filter, nat and mangle tables behind; drop only empty ones.
  if command -v nft >/dev/null; then
    local fam tab out
    for fam in ip ip6; do for tab in filter nat mangle; do
      out=$(nft list table "$fam" "$tab" 2>/dev/null) || continue
      grep -vqE '^\s*(table|chain|type|policy|\}|$)' <<<"$out" || nft delete table "$fam" "$tab" 2>/dev/null || true
    done; done
  fi
  if [ -f "$NODE_DIR/sysctl.orig" ]; then
    while IFS== read -r key val; do sysctl -qw "$key=$val" 2>/dev/null || true; done < "$NODE_DIR/sysctl.orig"
  fi
  # Nothing is mounted below the node's folder any more (checked: rm must not cross into a mount).
  if findmnt -rn -o TARGET | grep -F "$NODE_DIR/" >/dev/null; then
    node_log "mounts are left under $NODE_DIR; keeping it"
  else
    rm -rf "$NODE_DIR"
  fi
  [ "$(cat "$CLAIM" 2>/dev/null)" = "$SHIP_STATE" ] && rm -f "$CLAIM"
  set -e
  return 0
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
