#!/usr/bin/env bash
# The lab's private registries, as teams run theirs: TLS with a CA that is not the system's, and
# authentication. Called by cluster-up.sh (the part `private`) and cluster-down.sh.
#
#   private-registry.sh up     start (or reuse) them; prints export lines
#   private-registry.sh down   stop them by pid, delete their storage (the CA stays)
#
#   127.0.0.1:$SHIP_PRIVATE_REGISTRY_PORT  Debian's docker-registry, `auth: token`: it answers
#                                          401 Bearer realm=https://127.0.0.1:$SHIP_TOKEN_ISSUER_PORT/token
#   127.0.0.1:$SHIP_TOKEN_ISSUER_PORT      the token issuer (hack/registry/token_issuer.py): RS256
#                                          JWTs the registry verifies with the issuer's certificate;
#                                          anonymous pulls of public/* only
#   127.0.0.1:$SHIP_BASIC_REGISTRY_PORT    docker-registry with htpasswd (Basic) auth
# All three serve TLS from $PRIVATE_DIR/ca.crt, a CA made here once. The build engine (podman)
# trusts it through /etc/containers/certs.d, the real node's containerd through its certs.d
# (real-node.sh). User `ship` with a random password (kept in $PRIVATE_DIR/password); the
# exports name them. Needs openssl and htpasswd (Debian's apache2-utils).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

D="$PRIVATE_DIR"
USERNAME=ship
SERVICE=ship-lab-registry
ISSUER=ship-lab-issuer

# write_if_changed FILE: stdin into FILE, only when it differs (a running part's files stay as they are).
write_if_changed() {
  cat > "$1.new"
  if cmp -s "$1.new" "$1"; then rm -f "$1.new"; else mv "$1.new" "$1"; fi
}

make_pki() {
  mkdir -p "$D"
  (umask 077
   [ -f "$D/ca.key" ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/ca.key" -out "$D/ca.crt" -days 3650 \
     -subj "/CN=ship lab registry CA" -addext "basicConstraints=critical,CA:TRUE" \
     -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || die "making the registry CA failed"
   if [ ! -f "$D/server.crt" ] || ! openssl verify -CAfile "$D/ca.crt" "$D/server.crt" >/dev/null 2>&1; then
     openssl req -new -newkey rsa:2048 -nodes -keyout "$D/server.key" -out "$D/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
     printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' \
       > "$D/server.ext"
     openssl x509 -req -in "$D/server.csr" -CA "$D/ca.crt" -CAkey "$D/ca.key" -CAcreateserial -days 3650 \
       -extfile "$D/server.ext" -out "$D/server.crt" 2>/dev/null || die "signing the registry's certificate failed"
   fi
   # The issuer's signing key: its self-signed certificate is the registry's rootcertbundle.
   [ -f "$D/issuer.key" ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/issuer.key" -out "$D/issuer.crt" \
     -days 3650 -subj "/CN=$ISSUER" 2>/dev/null || die "making the token issuer's key failed"
   [ -f "$D/password" ] || openssl rand -hex 16 > "$D/password"
   printf '{"%s": "%s"}\n' "$USERNAME" "$(cat "$D/password")" | write_if_changed "$D/users.json"
   [ -s "$D/htpasswd" ] || htpasswd -Bbn "$USERNAME" "$(cat "$D/password")" > "$D/htpasswd" 2>/dev/null || die "htpasswd failed")
  # The build engine pushes there: podman reads certs.d at each push.
  local port
  for port in "$SHIP_PRIVATE_REGISTRY_PORT" "$SHIP_BASIC_REGISTRY_PORT"; do
    mkdir -p "/etc/containers/certs.d/127.0.0.1:$port"
    cp "$D/ca.crt" "/etc/containers/certs.d/127.0.0.1:$port/ca.crt"
  done
}

# private_registry_config NAME PORT AUTH-YAML: a docker-registry config on its own storage, with
# TLS from the lab's CA and the given auth.
private_registry_config() {
  local data; data=$(cat "$D/$1.data" 2>/dev/null || true)
  [ -n "$data" ] && [ -d "$data" ] || { data=$(mktemp -d "/tmp/ship-$1.XXXXXX"); echo "$data" > "$D/$1.data"; }
  registry_config "$data" "$2"
  printf '  tls: {certificate: %s, key: %s}\nauth:\n%s\n' "$D/server.crt" "$D/server.key" "$3"
}

cmd_up() {
  command -v docker-registry >/dev/null || die "missing Debian package docker-registry (run 'make deps' as root)"
  command -v htpasswd >/dev/null || die "missing Debian package apache2-utils (run 'make deps' as root)"
  make_pki
  private_registry_config private-registry "$SHIP_PRIVATE_REGISTRY_PORT" "  token:
    realm: https://127.0.0.1:$SHIP_TOKEN_ISSUER_PORT/token
    service: $SERVICE
    issuer: $ISSUER
    rootcertbundle: $D/issuer.crt" | write_if_changed "$D/private-registry.yml"
  private_registry_config basic-registry "$SHIP_BASIC_REGISTRY_PORT" "  htpasswd:
    realm: ship-lab-basic
    path: $D/htpasswd" | write_if_changed "$D/basic-registry.yml"
  local args=(--listen "127.0.0.1:$SHIP_TOKEN_ISSUER_PORT" --cert "$D/issuer.crt" --key "$D/issuer.key"
              --tls-cert "$D/server.crt" --tls-key "$D/server.key" --users "$D/users.json" --issuer "$ISSUER")
  echo "${args[*]}" | write_if_changed "$D/token-issuer.args"
  local name port
  for name in private-registry basic-registry token-issuer; do
    case $name in
      private-registry) port=$SHIP_PRIVATE_REGISTRY_PORT ;;
      basic-registry) port=$SHIP_BASIC_REGISTRY_PORT ;;
      token-issuer) port=$SHIP_TOKEN_ISSUER_PORT ;;
    esac
    if pid_alive "$name" && [ "$(cat "$SHIP_STATE/$name.sum" 2>/dev/null)" = "$(conf_sum "$name")" ]; then continue; fi
    stop_pid "$name"
    port_busy "$port" && die "port 127.0.0.1:$port for the $name is busy (set SHIP_PRIVATE_REGISTRY_PORT, SHIP_BASIC_REGISTRY_PORT, SHIP_TOKEN_ISSUER_PORT)"
    if [ "$name" = token-issuer ]; then
      start_daemon "$name" python3 "$here/registry/token_issuer.py" "${args[@]}" 9>&-  # not the lock
    else
      start_daemon "$name" docker-registry serve "$D/$name.yml" 9>&-
    fi
    conf_sum "$name" > "$SHIP_STATE/$name.sum"
    # Any answer over TLS with this CA (401 included) means it is up.
    wait_for "$name on 127.0.0.1:$port" 20 curl -sS -o /dev/null --cacert "$D/ca.crt" "https://127.0.0.1:$port/"
    log "$name up on https://127.0.0.1:$port"
  done
  echo "export SHIP_PRIVATE_REGISTRY=127.0.0.1:$SHIP_PRIVATE_REGISTRY_PORT"
  echo "export SHIP_BASIC_REGISTRY=127.0.0.1:$SHIP_BASIC_REGISTRY_PORT"
  echo "export SHIP_PRIVATE_REGISTRY_CA=$D/ca.crt"
  echo "export SHIP_PRIVATE_REGISTRY_USERNAME=$USERNAME"
  echo "export SHIP_PRIVATE_REGISTRY_PASSWORD=$(cat "$D/password")"
}

# conf_sum NAME: what NAME was started with (its configuration, certificates and users).
conf_sum() {
  local conf="$D/$1.yml"
  [ "$1" = token-issuer ] && conf="$D/token-issuer.args"
  cat "$conf" "$D/server.crt" "$D/issuer.crt" "$D/users.json" "$here/registry/token_issuer.py" | sha256sum | cut -c1-16
}

cmd_down() {
  local name port
  for name in token-issuer basic-registry private-registry; do
    stop_pid "$name"
    rm -f "$SHIP_STATE/$name.sum"
    if [ -f "$D/$name.data" ]; then rm -rf "$(cat "$D/$name.data")" "$D/$name.data"; fi
  done
  for port in "$SHIP_PRIVATE_REGISTRY_PORT" "$SHIP_BASIC_REGISTRY_PORT"; do
    [ -f "$D/ca.crt" ] && cmp -s "$D/ca.crt" "/etc/containers/certs.d/127.0.0.1:$port/ca.crt" \
      && rm -rf "/etc/containers/certs.d/127.0.0.1:$port"
  done
  return 0
}

# One run at a time (test sessions start it in parallel): a run reading a configuration another
# is rewriting would take it for changed and restart a registry in use.
mkdir -p "$D"
exec 9>"$D/.lock"
flock 9

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  *) die "usage: private-registry.sh up|down" ;;
esac
