#!/usr/bin/env bash
# Makes sure the binaries of Prism's Kubernetes test environment are on this machine:
#   - kube-apiserver, kube-controller-manager, kube-scheduler v1.20.2 in a cache
#     directory (default /var/cache/prism-k8s/bin, or $PRISM_K8S_CACHE);
#   - etcd (Debian's etcd-server), kubectl (Debian's kubernetes-client, only when no
#     kubectl is on PATH) and Debian's docker-registry (for image-pull tests).
#
# The Kubernetes binaries come from ../shared/k8s-v1.20.2/*.xz beside the repository
# (checked against its SHA256SUMS). Where that folder is absent they are built from
# Debian's `kubernetes` source package as its README says (about 9 minutes on 2 cores)
# and cached. A warm cache returns at once.
#
# One change to the README's recipe: Kubernetes 1.20 vendors reflect2 1.0.1 and
# json-iterator 1.1.10, which break under Go >= 1.18 (Debian's Go is 1.19): such an API
# server panics on every JSON request body (POST/PUT/PATCH from any JSON client: kube-rs,
# kubectl create -f, client-go's dynamic client), and only protobuf clients work. The
# build here swaps in Debian's reflect2 1.0.2 and json-iterator 1.1.12 (the versions
# Kubernetes itself moved to for Go 1.18). Prebuilt binaries are probed once when the
# cache is filled (a JSON POST against a throw-away API server); ones that fail the
# probe are replaced by a source build.
#
# Usage: scripts/k8s/ensure-binaries.sh        prints the binary directory on stdout
# Env:   PRISM_K8S_CACHE   binary directory (default /var/cache/prism-k8s/bin)
#        PRISM_K8S_SHARED  prebuilt folder (default REPO/../shared/k8s-v1.20.2)
#        PRISM_K8S_NO_BUILD=1  fail instead of building from source
#        PRISM_K8S_NO_PROBE=1  trust prebuilt binaries without the JSON probe
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PRISM_K8S_CACHE:-/var/cache/prism-k8s/bin}
SHARED=${PRISM_K8S_SHARED:-$ROOT/../shared/k8s-v1.20.2}
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)
STAMP=$BIN/.prism-k8s-ok

log() { printf '[ensure-binaries] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

APT_UPDATED=
apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to install Debian packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    apt-get update -qq >&2
    APT_UPDATED=1
  fi
  log "installing Debian packages: $*"
  apt-get install -y -qq --no-install-recommends "$@" > /dev/null
}

# Identifies the prebuilt folder's contents ("none" when there is none): the stamp
# records it, so new prebuilt binaries there are looked at again.
shared_id() {
  if [ -f "$SHARED/SHA256SUMS" ]; then sha256sum < "$SHARED/SHA256SUMS" | cut -c1-64; else echo none; fi
}

# True when every binary is in place and the stamp was written for the current
# prebuilt folder.
cache_is_warm() {
  local b
  for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
  [ -f "$STAMP" ] || return 1
  for b in "${BINARIES[@]}"; do [ "$BIN/$b" -nt "$STAMP" ] && return 1; done
  grep -q "^shared $(shared_id)\$" "$STAMP"
}

unpack_prebuilt() {
  log "unpacking prebuilt binaries from $SHARED"
  local tmp b
  tmp=$(mktemp -d "$BIN/.unpack.XXXXXX")
  for b in "${BINARIES[@]}"; do
    [ -f "$SHARED/$b.xz" ] || die "missing $SHARED/$b.xz"
    xz -dc "$SHARED/$b.xz" > "$tmp/$b"
    chmod 0755 "$tmp/$b"
  done
  cp "$SHARED/SHA256SUMS" "$tmp/SHA256SUMS"
  chmod 0644 "$tmp/SHA256SUMS"
  (cd "$tmp" && sha256sum --quiet -c SHA256SUMS >&2) || { rm -rf "$tmp"; die "checksum mismatch in $SHARED"; }
  for b in "${BINARIES[@]}"; do mv -f "$tmp/$b" "$BIN/$b"; done
  mv -f "$tmp/SHA256SUMS" "$BIN/SHA256SUMS"
  rm -rf "$tmp"
}

# Starts etcd and the unpacked kube-apiserver in a temporary directory and POSTs a
# ConfigMap as JSON: 201 means the binaries decode JSON (see the top of this file).
# An API server that does not start at all is an error, not a reason to rebuild.
probe_json() {
  local d port etcd_port code=none i pids=() ready=
  d=$(mktemp -d /tmp/prism-k8s-probe.XXXXXX)
  for ((i = 0; i < 50; i++)); do
    port=$((20000 + RANDOM % 9000))
    etcd_port=$((port + 1))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$etcd_port") 2>/dev/null && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$((port + 2))") 2>/dev/null && continue
    break
  done
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/sa.key" 2>/dev/null
  openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  echo "probe,probe,probe,system:masters" > "$d/tokens.csv"
  etcd --data-dir "$d/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$((port + 2))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((port + 2))" \
    --initial-cluster "default=http://127.0.0.1:$((port + 2))" > "$d/etcd.log" 2>&1 &
  pids+=($!)
  "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" --bind-address 127.0.0.1 \
    --secure-port "$port" --insecure-port 0 --cert-dir "$d/certs" --token-auth-file "$d/tokens.csv" \
    --authorization-mode RBAC --service-account-key-file "$d/sa.pub" \
    --service-account-signing-key-file "$d/sa.key" --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none > "$d/apiserver.log" 2>&1 &
  pids+=($!)
  for ((i = 0; i < 1200; i++)); do
    if [ "$(curl -sk --max-time 2 -H 'Authorization: Bearer probe' "https://127.0.0.1:$port/readyz" 2>/dev/null)" = ok ]; then
      ready=1
      code=$(curl -sk --max-time 10 -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer probe' \
        -H 'Content-Type: application/json' "https://127.0.0.1:$port/api/v1/namespaces/default/configmaps" \
        -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"probe"},"data":{"a":"b"}}' || true)
      break
    fi
    kill -0 "${pids[1]}" 2>/dev/null || break
    sleep 0.1
  done
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  if [ -z "$ready" ]; then
    tail -n 20 "$d/apiserver.log" >&2 || true
    rm -rf "$d"
    die "the probe's kube-apiserver did not become ready"
  fi
  rm -rf "$d"
  # 000: the server closed the connection (its handler panicked).
  log "JSON probe of the API server: HTTP $code"
  [ "$code" = 201 ]
}

# Steps from shared/k8s-v1.20.2/README.md (Debian's source package, Debian's Go), plus
# Debian's reflect2 1.0.2 and json-iterator 1.1.12 in place of the vendored copies.
build_from_source() {
  [ "${PRISM_K8S_NO_BUILD:-}" != 1 ] || die "no usable prebuilt binaries and PRISM_K8S_NO_BUILD=1"
  log "building Kubernetes v1.20.2 from Debian's source package (about 9 minutes on 2 cores)"
  [ "$(id -u)" = 0 ] || die "need root to enable Debian source packages"
  local work
  work=$(dirname "$BIN")/build
  if ! grep -rqsE '^(Types: *deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
        > /etc/apt/sources.list.d/debian-src.sources
    elif [ -f /etc/apt/sources.list ]; then
      sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/debian-src.list
    else
      die "no Debian sources file found to derive deb-src entries from"
    fi
    APT_UPDATED=
  fi
  local need=()
  command -v go >/dev/null || need+=(golang-go)
  command -v rsync >/dev/null || need+=(rsync)
  command -v make >/dev/null || need+=(make)
  [ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || need+=(golang-github-modern-go-reflect2-dev)
  [ -d /usr/share/gocode/src/github.com/json-iterator/go ] || need+=(golang-github-json-iterator-go-dev)
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
  if [ -z "$APT_UPDATED" ]; then
    apt-get update -qq >&2
    APT_UPDATED=1
  fi
  # A failed earlier attempt leaves empty files in _output/bin: always start clean.
  rm -rf "$work"
  mkdir -p "$work/home"
  (
    cd "$work"
    apt-get source --download-only kubernetes > /dev/null 2>&1 || die "apt-get source kubernetes failed"
    tar xzf kubernetes_*.orig.tar.gz
    src=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
    [ -n "$src" ] || die "unexpected layout of the kubernetes source package"
    cd "$src"
    local m f
    for m in github.com/modern-go/reflect2 github.com/json-iterator/go; do
      [ -d "vendor/$m" ] || die "unexpected layout: no vendor/$m"
      rm -rf "vendor/$m"
      mkdir -p "vendor/$m"
      for f in /usr/share/gocode/src/$m/*.go /usr/share/gocode/src/$m/*.s; do
        case "$f" in *_test.go | *'*'*) continue ;; esac
        cp "$f" "vendor/$m/"
      done
    done
    export HOME=$work/home GOPATH=$PWD/.go CGO_ENABLED=0
    log "make (log: $work/make.log)"
    if ! make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" > "$work/make.log" 2>&1; then
      tail -n 40 "$work/make.log" >&2
      die "make failed (log: $work/make.log)"
    fi
    for b in "${BINARIES[@]}"; do
      [ -s "_output/bin/$b" ] || die "build produced no $b"
      install -m 0755 "_output/bin/$b" "$BIN/$b.new"
      mv -f "$BIN/$b.new" "$BIN/$b"
    done
  )
  (cd "$BIN" && sha256sum "${BINARIES[@]}" > SHA256SUMS)
  rm -rf "$work"
}

ensure_kubernetes() {
  mkdir -p "$BIN"
  cache_is_warm && return 0
  # One machine, several checkouts (CI, developers): one unpack/build at a time.
  exec 9>"$BIN/.lock"
  flock 9
  if ! cache_is_warm; then
    rm -f "$STAMP"
    local origin
    if [ -d "$SHARED" ]; then
      unpack_prebuilt
      origin=prebuilt
      if [ "${PRISM_K8S_NO_PROBE:-}" != 1 ] && ! probe_json; then
        log "the prebuilt kube-apiserver in $SHARED cannot decode JSON request bodies"
        log "(vendored reflect2 1.0.1 built with Go >= 1.18): building fixed binaries instead"
        build_from_source
        origin=source
      fi
    else
      log "$SHARED is absent"
      build_from_source
      origin=source
    fi
    printf 'origin %s\nshared %s\n' "$origin" "$(shared_id)" > "$STAMP"
    log "Kubernetes binaries ($origin) ready in $BIN"
  fi
  flock -u 9
  exec 9>&-
}

ensure_packages() {
  local need=()
  command -v etcd >/dev/null || need+=(etcd-server)
  command -v docker-registry >/dev/null || need+=(docker-registry)
  if ! command -v kubectl >/dev/null; then
    # kubectl is optional (a peer client for checks by hand): only if Debian has it.
    if [ -z "$APT_UPDATED" ] && [ "$(id -u)" = 0 ] && ! apt-cache policy kubernetes-client 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      apt-get update -qq >&2 && APT_UPDATED=1
    fi
    if apt-cache policy kubernetes-client 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      need+=(kubernetes-client)
    else
      log "note: no kubectl on PATH and Debian offers no kubernetes-client; continuing without it"
    fi
  fi
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
  command -v etcd >/dev/null || die "etcd is not installed"
}

ensure_packages
ensure_kubernetes
echo "$BIN"
