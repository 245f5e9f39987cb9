#!/usr/bin/env bash
# Builds the local Kubernetes parts from Go modules, once, into a cache keyed by version:
#   kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes@$K8S_VERSION)
#   and for the real node (unless SHIP_REAL_NODE=0): kubelet and kube-proxy from the same module
#   (about 20 s more, the packages are mostly shared), traefik (github.com/traefik/traefik/v3@
#   $TRAEFIK_VERSION, the Gateway API data plane; about 4 minutes cold) and pause (hack/realnode/pause.c,
#   static, with gcc),
#   etcd (go.etcd.io/etcd/server/v3@$ETCD_VERSION), kwok and kwokctl (sigs.k8s.io/kwok@$KWOK_VERSION),
#   kustomize (sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION),
#   actionlint (github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION),
#   cosign (github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION; about 1.5 minutes cold).
#   toxiproxy-server and toxiproxy-cli (github.com/Shopify/toxiproxy/v2@$TOXIPROXY_VERSION, for make faults),
#   helm (helm.sh/helm/v3/cmd/helm@$HELM_VERSION; renders chart bases through kustomize --enable-helm).
#   act (github.com/nektos/act@$ACT_VERSION: the tests run the workflow files under it; about 1 minute cold).
#   podinfo and podcli (github.com/stefanprodan/podinfo@$PODINFO_VERSION: the app nobody here wrote,
#   deployed from its own chart; static, copied into a FROM scratch image by ship's own build).
# A binary already in the cache is never rebuilt. Prints the bin directory on the last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${SHIP_CACHE:-$HOME/.cache/ship}
bin="$cache/bin"
work="$cache/build"
mkdir -p "$bin" "$work"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

die() { echo "build-binaries: $*" >&2; exit 1; }
command -v go >/dev/null || die "go is not installed (needed to build the Kubernetes binaries)"

have() { [ -x "$bin/$1-$2" ]; }

real_node=${SHIP_REAL_NODE:-1}

build_kubernetes() {
  local v=$K8S_VERSION minor major cmds=() b
  major=$(echo "$v" | cut -d. -f1 | tr -d v); minor=$(echo "$v" | cut -d. -f2)
  for b in kube-apiserver kube-controller-manager kube-scheduler; do have "$b" "$v" || cmds+=("$b"); done
  if [ "$real_node" != 0 ]; then
    for b in kubelet kube-proxy; do have "$b" "$v" || cmds+=("$b"); done
  fi
  [ ${#cmds[@]} -gt 0 ] || return 0
  echo "building k8s.io/kubernetes@$v (${cmds[*]}); cold builds take 10-20 minutes" >&2
  local dir="$work/kubernetes-$v" staging_v="v0.${minor}.$(echo "$v" | cut -d. -f3)"
  mkdir -p "$dir"
  local modfile
  modfile=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p') \
    || die "go mod download k8s.io/kubernetes@$v failed"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local folders,
  # which a dependent module cannot see: point each at the published release instead.
  {
    echo "module ship.local/kubernetes-build"
    echo "go 1.24.0"
    echo "require k8s.io/kubernetes $v"
    echo "replace ("
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$modfile" | awk -v sv="$staging_v" '{print "\t" $1 " => " $1 " " sv}'
    echo ")"
  } > "$dir/go.mod"
  (cd "$dir" && go get "k8s.io/kubernetes@$v" >/dev/null 2>"$dir/get.log" && \
     go mod download all >/dev/null 2>>"$dir/get.log") || { cat "$dir/get.log" >&2; die "resolving k8s.io/kubernetes@$v failed (see above)"; }
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
  local out="$dir/out"; mkdir -p "$out"
  (cd "$dir" && go build -trimpath -ldflags "$ld" -o "$out/" "${cmds[@]/#/k8s.io/kubernetes/cmd/}") \
    || die "go build of k8s.io/kubernetes@$v failed"
  for b in "${cmds[@]}"; do mv "$out/$b" "$bin/$b-$v"; done
}

build_traefik() {
  local v=$TRAEFIK_VERSION
  have traefik "$v" && return
  echo "building github.com/traefik/traefik/v3@$v; cold builds take about 4 minutes" >&2
  local dir="$work/traefik-$v" modfile; mkdir -p "$dir"
  modfile=$(go mod download -json "github.com/traefik/traefik/v3@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p') \
    || die "go mod download github.com/traefik/traefik/v3@$v failed"
  # `go install traefik@version` refuses a module with replace directives, and as a dependency its
  # replaces and excludes are ignored, so a wrapper module requires it and copies them.
  {
    echo "module ship.local/traefik-build"
    grep -m1 '^go ' "$modfile"
    echo "require github.com/traefik/traefik/v3 $v"
    sed -n '/^replace (/,/^)/p; /^replace [^(]/p; /^exclude (/,/^)/p; /^exclude [^(]/p' "$modfile"
  } > "$dir/go.mod"
  (cd "$dir" && go get "github.com/traefik/traefik/v3/cmd/traefik@$v" >/dev/null 2>"$dir/get.log") \
    || { cat "$dir/get.log" >&2; die "resolving github.com/traefik/traefik/v3@$v failed (see above)"; }
  (cd "$dir" && go build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$v" \
      -o "$dir/traefik" github.com/traefik/traefik/v3/cmd/traefik) \
    || die "go build of github.com/traefik/traefik/v3@$v failed"
  mv "$dir/traefik" "$bin/traefik-$v"
}

build_pause() {
  have pause "$PAUSE_VERSION" && return
  command -v gcc >/dev/null || die "gcc is not installed (needed for the real node's pause binary; run 'make deps' as root)"
  # A static binary: the image is FROM scratch, with no libc to link against.
  gcc -static -Os -s -o "$work/pause" "$here/realnode/pause.c" || die "gcc -static of hack/realnode/pause.c failed (is libc6-dev installed?)"
  mv "$work/pause" "$bin/pause-$PAUSE_VERSION"
}

build_etcd() {
  local v=$ETCD_VERSION
  have etcd "$v" && return
  echo "building go.etcd.io/etcd/server/v3@$v" >&2
  local dir="$work/etcd-$v"; mkdir -p "$dir"
  printf 'module ship.local/etcd-build\ngo 1.24.0\n' > "$dir/go.mod"
  # etcd's own replace directives point at sibling folders; as a dependency the published
  # api, client and pkg modules of the same version are used instead.
  (cd "$dir" && go get "go.etcd.io/etcd/server/v3@$v" "go.etcd.io/etcd/api/v3@$v" "go.etcd.io/etcd/client/v3@$v" \
      "go.etcd.io/etcd/client/pkg/v3@$v" "go.etcd.io/etcd/pkg/v3@$v" >/dev/null 2>"$dir/get.log" \
   && go build -trimpath -ldflags "-s -w" -o "$dir/etcd" go.etcd.io/etcd/server/v3) \
    || { cat "$dir/get.log" >&2; die "go build of go.etcd.io/etcd/server/v3@$v failed"; }
  mv "$dir/etcd" "$bin/etcd-$v"
}

go_install() { # name module@version [the binary's name as go install writes it]
  local name=$1 pkg=$2 v=${2##*@} built=${3:-$1}
  have "$name" "$v" && return
  echo "installing $pkg" >&2
  local gobin="$work/gobin-$name-$v"
  GOBIN="$gobin" go install -trimpath -ldflags "-s -w" "$pkg" || die "go install $pkg failed"
  mv "$gobin/$built" "$bin/$name-$v"
}

build_helm() {
  local v=$HELM_VERSION modfile k8s major minor
  have helm "$v" && return
  echo "installing helm.sh/helm/v3/cmd/helm@$v; cold builds take about 9 minutes here" >&2
  modfile=$(go mod download -json "helm.sh/helm/v3@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p') \
    || die "go mod download helm.sh/helm/v3@$v failed"
  # The ldflags of helm's own Makefile: the exact version (else it reports only "v3.22") and the
  # Kubernetes version `helm template` assumes, from its client-go (v0.37 -> 1.37; else 1.20,
  # which charts asking kubeVersion >=1.23, podinfo's among them, refuse).
  k8s=$(awk '$1 == "k8s.io/client-go" {print $2}' "$modfile" | tr -d v)
  [ -n "$k8s" ] || die "no k8s.io/client-go in helm.sh/helm/v3@$v's go.mod"
  major=$(( $(echo "$k8s" | cut -d. -f1) + 1 )); minor=$(echo "$k8s" | cut -d. -f2)
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$v"
  ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  local gobin="$work/gobin-helm-$v"
  GOBIN="$gobin" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$v" \
    || die "go install helm.sh/helm/v3/cmd/helm@$v failed"
  mv "$gobin/helm" "$bin/helm-$v"
}

build_kubernetes
build_etcd
if [ "$real_node" != 0 ]; then
  build_traefik
  build_pause
fi
go_install kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
go_install kwokctl "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
go_install kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
go_install actionlint "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
go_install cosign "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION"
go_install toxiproxy-server "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" server
go_install toxiproxy-cli "github.com/Shopify/toxiproxy/v2/cmd/cli@$TOXIPROXY_VERSION" cli
build_helm
go_install act "github.com/nektos/act@$ACT_VERSION"
go_install podinfo "github.com/stefanprodan/podinfo/cmd/podinfo@$PODINFO_VERSION"
go_install podcli "github.com/stefanprodan/podinfo/cmd/podcli@$PODINFO_VERSION"
# Unversioned names for PATH users; the versioned files stay the cache keys.
ln -sf "kwok-$KWOK_VERSION" "$bin/kwok"
ln -sf "kwokctl-$KWOK_VERSION" "$bin/kwokctl"
ln -sf "kustomize-$KUSTOMIZE_VERSION" "$bin/kustomize"
ln -sf "actionlint-$ACTIONLINT_VERSION" "$bin/actionlint"
ln -sf "cosign-$COSIGN_VERSION" "$bin/cosign"
ln -sf "helm-$HELM_VERSION" "$bin/helm"
ln -sf "act-$ACT_VERSION" "$bin/act"
ln -sf "podinfo-$PODINFO_VERSION" "$bin/podinfo"
ln -sf "podcli-$PODINFO_VERSION" "$bin/podcli"
echo "$bin"
