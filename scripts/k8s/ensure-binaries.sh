#!/usr/bin/env bash
# Makes sure the binaries of Prism's Kubernetes test environment are on this machine:
#   - kube-apiserver, kube-controller-manager, kube-scheduler v1.20.2 in a cache
#     directory (default /var/cache/prism-k8s/bin, or $PRISM_K8S_CACHE);
#   - etcd (Debian's etcd-server), kubectl (Debian's kubernetes-client, only when no
#     kubectl is on PATH) and Debian's docker-registry (for image-pull tests);
#   - for a real node (scripts/k8s/node.sh): kubelet and kubectl v1.20.2 in the same
#     cache, Debian's containerd, runc and containernetworking-plugins, a static `pause`
#     binary compiled from scripts/k8s/pause/pause.c (gcc -static), and two one-layer
#     OCI image layouts made without any daemon (tar + sha256sum): CACHE/../images/pause
#     (the pod sandbox image) and CACHE/../images/busybox (Debian's busybox-static with
#     its applets as links), which node.sh pushes to the node's registry.
#
# The Kubernetes binaries come from ../shared/k8s-v1.20.2/*.xz beside the repository
# (checked against its SHA256SUMS); kubelet and kubectl from ../shared/k8s-v1.20.2-node
# (same). Where a folder is absent its binaries are built from Debian's `kubernetes`
# source package as its README says (about 9 minutes on 2 cores for the control plane,
# 3 more for the kubelet) and cached. A warm cache returns at once.
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
#        PRISM_K8S_SHARED_NODE  prebuilt kubelet folder (default REPO/../shared/k8s-v1.20.2-node)
#        PRISM_K8S_NO_BUILD=1  fail instead of building from source
#        PRISM_K8S_NO_PROBE=1  trust prebuilt binaries without the JSON probe
#        PRISM_K8S_NO_NODE=1   skip everything only a real node needs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PRISM_K8S_CACHE:-/var/cache/prism-k8s/bin}
SHARED=${PRISM_K8S_SHARED:-$ROOT/../shared/k8s-v1.20.2}
SHARED_NODE=${PRISM_K8S_SHARED_NODE:-$ROOT/../shared/k8s-v1.20.2-node}
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)
NODE_BINARIES=(kubelet kubectl)
STAMP=$BIN/.prism-k8s-ok
NODE_STAMP=$BIN/.prism-k8s-node-ok
IMAGES=$(dirname "$BIN")/images

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

# unpack_prebuilt DIR SUMS BINARY...: DIR/BINARY.xz into the cache, checked against
# DIR/SHA256SUMS (kept in the cache as SUMS).
unpack_prebuilt() {
  local dir=$1 sums=$2 tmp b
  shift 2
  log "unpacking prebuilt $* from $dir"
  tmp=$(mktemp -d "$BIN/.unpack.XXXXXX")
  for b in "$@"; do
    [ -f "$dir/$b.xz" ] || { rm -rf "$tmp"; die "missing $dir/$b.xz"; }
    xz -dc "$dir/$b.xz" > "$tmp/$b"
    chmod 0755 "$tmp/$b"
  done
  grep -E " \*?($(IFS='|'; echo "$*"))\$" "$dir/SHA256SUMS" > "$tmp/SHA256SUMS" || true
  chmod 0644 "$tmp/SHA256SUMS"
  [ "$(wc -l < "$tmp/SHA256SUMS")" -eq $# ] || { rm -rf "$tmp"; die "$dir/SHA256SUMS does not list $*"; }
  (cd "$tmp" && sha256sum --quiet -c SHA256SUMS >&2) || { rm -rf "$tmp"; die "checksum mismatch in $dir"; }
  for b in "$@"; do mv -f "$tmp/$b" "$BIN/$b"; done
  mv -f "$tmp/SHA256SUMS" "$BIN/$sums"
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
# build_from_source SUMS BINARY...: builds cmd/BINARY for each, checksums in CACHE/SUMS.
build_from_source() {
  local sums=$1
  shift
  local wanted=("$@")
  [ "${PRISM_K8S_NO_BUILD:-}" != 1 ] || die "no usable prebuilt $* and PRISM_K8S_NO_BUILD=1"
  log "building $* v1.20.2 from Debian's source package (minutes: 9 for the control plane, 3 for the kubelet, on 2 cores)"
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
    if ! make WHAT="${wanted[*]/#/cmd/}" > "$work/make.log" 2>&1; then
      tail -n 40 "$work/make.log" >&2
      die "make failed (log: $work/make.log)"
    fi
    for b in "${wanted[@]}"; do
      [ -s "_output/bin/$b" ] || die "build produced no $b"
      install -m 0755 "_output/bin/$b" "$BIN/$b.new"
      mv -f "$BIN/$b.new" "$BIN/$b"
    done
  )
  (cd "$BIN" && sha256sum "${wanted[@]}" > "$sums")
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
      unpack_prebuilt "$SHARED" SHA256SUMS "${BINARIES[@]}"
      origin=prebuilt
      if [ "${PRISM_K8S_NO_PROBE:-}" != 1 ] && ! probe_json; then
        log "the prebuilt kube-apiserver in $SHARED cannot decode JSON request bodies"
        log "(vendored reflect2 1.0.1 built with Go >= 1.18): building fixed binaries instead"
        build_from_source SHA256SUMS "${BINARIES[@]}"
        origin=source
      fi
    else
      log "$SHARED is absent"
      build_from_source SHA256SUMS "${BINARIES[@]}"
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

shared_node_id() {
  if [ -f "$SHARED_NODE/SHA256SUMS" ]; then sha256sum < "$SHARED_NODE/SHA256SUMS" | cut -c1-64; else echo none; fi
}

# What the pause binary and the two image layouts are made from: a change to any of
# them rebuilds both (raise IMAGES_VERSION when changing how they are made).
IMAGES_VERSION=1
images_id() {
  { echo "$IMAGES_VERSION"; cat "$ROOT/scripts/k8s/pause/pause.c" /bin/busybox 2>/dev/null; } | sha256sum | cut -c1-64
}

node_cache_is_warm() {
  local b
  for b in "${NODE_BINARIES[@]}" pause; do [ -x "$BIN/$b" ] || return 1; done
  [ -f "$NODE_STAMP" ] && [ -f "$IMAGES/pause/index.json" ] && [ -f "$IMAGES/busybox/index.json" ] || return 1
  for b in "${NODE_BINARIES[@]}"; do [ "$BIN/$b" -nt "$NODE_STAMP" ] && return 1; done
  grep -q "^shared $(shared_node_id)\$" "$NODE_STAMP" && grep -q "^images $(images_id)\$" "$NODE_STAMP"
}

# oci_layout DIR TAG ROOTFS CONFIG_JSON: a one-layer OCI image layout (image-spec 1.0)
# written by hand: a gzip'd tar of ROOTFS (sorted, owned by root, mtime 0, so the digest
# is the same on every machine), the image config (CONFIG_JSON is its "config" object),
# a manifest and an index naming the manifest TAG. `skopeo copy oci:DIR:TAG docker://...`
# pushes it; no Docker daemon, no buildah.
oci_layout() {
  local dir=$1 tag=$2 rootfs=$3 config=$4 tmp layer diff_id layer_digest layer_size cfg cfg_digest man man_digest
  tmp=$(mktemp -d "$(dirname "$dir")/.oci.XXXXXX")
  mkdir -p "$tmp/blobs/sha256"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$rootfs" -cf "$tmp/layer.tar" .
  diff_id=$(sha256sum < "$tmp/layer.tar" | cut -c1-64)
  gzip -n -6 < "$tmp/layer.tar" > "$tmp/layer.tar.gz"
  layer_digest=$(sha256sum < "$tmp/layer.tar.gz" | cut -c1-64)
  layer_size=$(stat -c %s "$tmp/layer.tar.gz")
  mv "$tmp/layer.tar.gz" "$tmp/blobs/sha256/$layer_digest"
  rm -f "$tmp/layer.tar"
  cfg=$(printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"prism scripts/k8s/ensure-binaries.sh"}]}' "$config" "$diff_id")
  printf '%s' "$cfg" > "$tmp/cfg.json"
  cfg_digest=$(sha256sum < "$tmp/cfg.json" | cut -c1-64)
  mv "$tmp/cfg.json" "$tmp/blobs/sha256/$cfg_digest"
  man=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
    "$cfg_digest" "${#cfg}" "$layer_digest" "$layer_size")
  printf '%s' "$man" > "$tmp/man.json"
  man_digest=$(sha256sum < "$tmp/man.json" | cut -c1-64)
  mv "$tmp/man.json" "$tmp/blobs/sha256/$man_digest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$man_digest" "${#man}" "$tag" > "$tmp/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$tmp/oci-layout"
  chmod 0755 "$tmp"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

# The static pause binary and the pause and busybox image layouts.
build_images() {
  command -v gcc >/dev/null && [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || apt_install gcc libc6-dev
  [ -x /bin/busybox ] || apt_install busybox-static
  local tmp applet
  # The image has no libc: the busybox copied into it must be Debian's static one.
  if ldd /bin/busybox > /dev/null 2>&1; then die "/bin/busybox is dynamically linked (install busybox-static)"; fi
  mkdir -p "$IMAGES"
  tmp=$(mktemp -d "$IMAGES/.build.XXXXXX")
  log "compiling pause (gcc -static) and making the pause and busybox image layouts"
  gcc -static -O2 -s -Wall -Wextra -o "$tmp/pause" "$ROOT/scripts/k8s/pause/pause.c" >&2 || { rm -rf "$tmp"; die "gcc -static of pause.c failed"; }
  "$tmp/pause" -v > /dev/null || { rm -rf "$tmp"; die "the pause binary does not run"; }
  mkdir -p "$tmp/pause-root"
  cp "$tmp/pause" "$tmp/pause-root/pause"
  oci_layout "$IMAGES/pause" 3.4 "$tmp/pause-root" '{"Entrypoint":["/pause"]}'
  mkdir -p "$tmp/bb-root/bin" "$tmp/bb-root/tmp" "$tmp/bb-root/etc" "$tmp/bb-root/www"
  chmod 1777 "$tmp/bb-root/tmp"
  cp /bin/busybox "$tmp/bb-root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$tmp/bb-root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$tmp/bb-root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$tmp/bb-root/etc/group"
  oci_layout "$IMAGES/busybox" 1 "$tmp/bb-root" '{"Env":["PATH=/bin"],"Cmd":["/bin/sh"]}'
  mv -f "$tmp/pause" "$BIN/pause"
  rm -rf "$tmp"
}

ensure_node() {
  if [ "$(id -u)" != 0 ]; then
    log "note: not root: skipping what only a real node needs (kubelet, containerd, images)"
    return 0
  fi
  local need=()
  command -v containerd >/dev/null && command -v containerd-shim-runc-v2 >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] || need+=(containernetworking-plugins)
  command -v skopeo >/dev/null || need+=(skopeo)
  [ -x /bin/busybox ] || need+=(busybox-static)
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
  node_cache_is_warm && return 0
  exec 9>"$BIN/.lock"
  flock 9
  if ! node_cache_is_warm; then
    rm -f "$NODE_STAMP"
    local origin
    if [ -d "$SHARED_NODE" ]; then
      unpack_prebuilt "$SHARED_NODE" SHA256SUMS.node "${NODE_BINARIES[@]}"
      origin=prebuilt
    else
      log "$SHARED_NODE is absent"
      build_from_source SHA256SUMS.node "${NODE_BINARIES[@]}"
      origin=source
    fi
    build_images
    printf 'origin %s\nshared %s\nimages %s\n' "$origin" "$(shared_node_id)" "$(images_id)" > "$NODE_STAMP"
    log "kubelet, kubectl ($origin), pause and images ready in $BIN and $IMAGES"
  fi
  flock -u 9
  exec 9>&-
}

ensure_packages
ensure_kubernetes
[ "${PRISM_K8S_NO_NODE:-}" = 1 ] || ensure_node
echo "$BIN"
