#!/usr/bin/env bash
# Installs what the local parts need from Debian's packages, only when missing:
# podman (the Docker-API build engine), docker-registry (the registry), prometheus (started by
# cluster-up and by tests, by pid, never as a service), and for the real node (SHIP_REAL_NODE=0
# skips them): containerd and runc (the container runtime), containernetworking-plugins (the CNI
# bridge), iptables, nftables and conntrack (kube-proxy; nft finds the empty tables iptables-nft
# leaves behind), gcc and libc6-dev (a static pause binary),
# openssl (the node's client certificates, the private registries' CA), apache2-utils (htpasswd for
# the Basic-auth registry); chromium (headless, for the dashboard tests).
# Needs root for apt.
set -euo pipefail
packages=(podman docker-registry curl git prometheus chromium openssl apache2-utils)
if [ "${SHIP_REAL_NODE:-1}" != 0 ]; then
  packages+=(containerd runc containernetworking-plugins iptables nftables conntrack gcc libc6-dev openssl)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]} (run 'sudo make deps' or apt-get install them)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "deps: apt-get update failed" >&2; exit 1; }
for p in "${missing[@]}"; do
  apt-get install -y -qq --no-install-recommends "$p" >/dev/null \
    || { echo "deps: apt-get install $p failed (missing Debian package: $p)" >&2; exit 1; }
done
for cmd in go python3 kubectl; do
  command -v "$cmd" >/dev/null || { echo "deps: $cmd is not installed; ship's set-up needs it" >&2; exit 1; }
done
