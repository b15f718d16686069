#!/usr/bin/env bash
# A real Kubernetes v1.20.2 control plane for Prism's tests: etcd, kube-apiserver and
# kube-controller-manager (all controllers but the node lifecycle one), on loopback
# only, in a state directory of its own. There is no kubelet and no scheduler: run
# `prism-kube-sim` (crates/kube-sim) against it to get a simulated node that binds
# pods and reports them running.
#
# With --node the cluster gets a REAL node instead (scripts/k8s/node.sh: kubelet v1.20.2
# + containerd + runc, a local registry with pause:3.4 and busybox:1): the control plane
# then runs as a real node needs it (authorization Node,RBAC, admission NodeRestriction,
# a kubelet client certificate, kubelet-preferred-address-types InternalIP,Hostname,
# kube-scheduler, the controller manager with all controllers). `up` returns once the
# node (named 127.0.0.1) is Ready. Needs root. See node.sh for what it does on the host.
# `env` then also prints PRISM_K8S_NODE_REGISTRY=127.0.0.1:PORT, the registry the node
# pulls from (pause:3.4 and busybox:1 are in it); a kubectl v1.20.2 is in the binary
# cache (`scripts/k8s/ensure-binaries.sh` prints its directory).
#
# Usage:
#   scripts/k8s/cluster.sh up NAME [PORT_BASE] [--node]
#                                                start cluster NAME; prints its kubeconfig path
#   scripts/k8s/cluster.sh down NAME             stop it (and its node) and remove its state
#   scripts/k8s/cluster.sh env NAME              print `export ...` lines for a shell (eval them)
#
# Ports: PORT_BASE is etcd's client port, PORT_BASE+1 etcd's peer port, PORT_BASE+2
# the API server (https); with --node PORT_BASE+3 the kubelet, PORT_BASE+4 its healthz
# and PORT_BASE+5 the registry (unless PRISM_K8S_REGISTRY names one). Without PORT_BASE
# a free base from 16400 upward is picked. Several clusters run at once as long as their
# names and port bases differ (also with --node: each has its own node).
#
# Credentials (in STATE/tokens.csv, the API server's --token-auth-file):
#   admin       group system:masters    STATE/kubeconfig (written by `up`)
#   ns-limited  no groups               STATE/ns-limited.kubeconfig; it can do nothing
#               until a test binds it to a Role, e.g. in one namespace only.
#
# Env: PRISM_K8S_STATE      root of the state directories (default /tmp/prism-k8s)
#      PRISM_K8S_CACHE      where ensure-binaries.sh keeps the binaries
#      PRISM_K8S_OWNER_PID  when set, the cluster tears itself down once that process
#                           is gone (tests pass their own pid, so a killed test
#                           leaves nothing running)
#      PRISM_K8S_TIMEOUT    seconds to wait for readiness (default 90)
#      PRISM_K8S_ETCD_TMPFS=0  keep etcd's data on disk in STATE/etcd (default: in
#                           /dev/shm, linked from there; much faster writes)
#      PRISM_K8S_API_ADDRESS  the address the API server listens on and every
#                           kubeconfig names (default 127.0.0.1; not with --node):
#                           e.g. a test node's pod gateway, for pods that deploy here
#      PRISM_K8S_REGISTRY   with --node: 127.0.0.1:PORT of a registry the caller runs
#                           (pause:3.4 and busybox:1 are pushed to it); default: one of
#                           the node's own
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE_ROOT=${PRISM_K8S_STATE:-/tmp/prism-k8s}
TIMEOUT=${PRISM_K8S_TIMEOUT:-90}
API_ADDRESS=${PRISM_K8S_API_ADDRESS:-127.0.0.1}
COMPONENTS=(watchdog kube-scheduler kube-controller-manager kube-apiserver etcd)
NODE_MODE=

log() { printf '[cluster %s] %s\n' "${NAME:-?}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '/^# Usage:/,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

check_name() {
  [[ "$1" =~ ^[a-z0-9][a-z0-9_.-]{0,62}$ ]] || die "bad cluster name '$1' (lowercase letters, digits, . _ -)"
}

now_ms() { date +%s%3N; }

# The pid in STATE/NAME.pid when that process still runs and is really ours (its
# command line names the state directory), else nothing.
live_pid() {
  local f=$S/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$S" || return 1
  echo "$pid"
}

# True while PID runs; a zombie (exited, not yet reaped by the process that adopted it)
# counts as gone.
running() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [ "${st:0:1}" != Z ]
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The ports of a base: 3 for the control plane, 6 with a node.
port_count() { if [ -n "$NODE_MODE" ]; then echo 6; else echo 3; fi; }

base_is_free() {
  local b=$1 p
  for ((p = b; p < b + $(port_count); p++)); do
    port_in_use "$p" && return 1
  done
  return 0
}

# Picks (or checks) the port base and records it in STATE/ports while holding a lock,
# so clusters started at the same moment never pick the same base.
reserve_ports() {
  local want=$1 b taken
  mkdir -p "$STATE_ROOT"
  exec 8>"$STATE_ROOT/.ports.lock"
  flock 8
  taken=$(cat "$STATE_ROOT"/*/ports 2>/dev/null | awk '{print $1}' || true)
  if [ -n "$want" ]; then
    [[ "$want" =~ ^[0-9]+$ ]] && [ "$want" -ge 1024 ] && [ "$want" -le 65530 ] || die "bad PORT_BASE '$want'"
    if grep -qx "$want" <<<"$taken" || ! base_is_free "$want"; then
      die "ports $want..$((want + $(port_count) - 1)) are in use"
    fi
    b=$want
  else
    b=
    for ((c = 16400; c < 17400; c += 10)); do
      grep -qx "$c" <<<"$taken" && continue
      base_is_free "$c" && { b=$c; break; }
    done
    [ -n "$b" ] || die "no free port base between 16400 and 17400"
  fi
  # With a node: kubelet, kubelet healthz, registry.
  if [ -n "$NODE_MODE" ]; then
    echo "$b $((b + 1)) $((b + 2)) $((b + 3)) $((b + 4)) $((b + 5))" > "$S/ports"
  else
    echo "$b $((b + 1)) $((b + 2))" > "$S/ports"
  fi
  flock -u 8
  exec 8>&-
  PORT_ETCD=$b
  PORT_PEER=$((b + 1))
  PORT_API=$((b + 2))
}

make_certs() {
  local c=$S/certs
  mkdir -p "$c"
  (
    cd "$c"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=prism-k8s-$NAME-ca" -out ca.crt 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out apiserver.key 2>/dev/null
    openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr 2>/dev/null
    cat > apiserver.ext <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:$API_ADDRESS, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP:10.96.0.1
EXT
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    if [ -n "$NODE_MODE" ]; then
      # The API server's client certificate for the kubelet (logs, exec, port-forward).
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out kubelet-client.key 2>/dev/null
      openssl req -new -key kubelet-client.key -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
        -out kubelet-client.csr 2>/dev/null
      printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = clientAuth\n' \
        > kubelet-client.ext
      openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
        -extfile kubelet-client.ext -out kubelet-client.crt 2>/dev/null
    fi
    # Service account token signing key.
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 0600 ./*.key
  )
}

write_kubeconfig() { # FILE USER TOKEN
  local ca old
  ca=$(base64 -w0 < "$S/certs/ca.crt")
  old=$(umask)
  umask 077
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: prism-$NAME
  cluster:
    server: https://$API_ADDRESS:$PORT_API
    certificate-authority-data: $ca
users:
- name: $2
  user:
    token: $3
contexts:
- name: prism-$NAME
  context:
    cluster: prism-$NAME
    user: $2
    namespace: default
current-context: prism-$NAME
KC
  umask "$old"
}

make_credentials() {
  local admin limited kcm sched node
  admin=$(openssl rand -hex 24)
  limited=$(openssl rand -hex 24)
  kcm=$(openssl rand -hex 24)
  sched=$(openssl rand -hex 24)
  node=$(openssl rand -hex 24)
  # Tokens are secrets; the umask goes back afterwards (the processes this
  # script starts would inherit it: containerd's image snapshots were 0700,
  # so no image ran as a non-root user).
  local old
  old=$(umask)
  umask 077
  {
    echo "$admin,admin,admin,system:masters"
    echo "$kcm,system:kube-controller-manager,kube-controller-manager,system:masters"
    echo "$limited,ns-limited,ns-limited"
    if [ -n "$NODE_MODE" ]; then
      echo "$sched,system:kube-scheduler,kube-scheduler,system:masters"
      # The kubelet: the Node authorizer and NodeRestriction know it by this name and group.
      echo "$node,system:node:127.0.0.1,node-127.0.0.1,system:nodes"
    fi
  } > "$S/tokens.csv"
  if [ -n "$NODE_MODE" ]; then
    echo "$node" > "$S/node.token"
    write_kubeconfig "$S/kube-scheduler.kubeconfig" system:kube-scheduler "$sched"
  fi
  echo "$admin" > "$S/admin.token"
  echo "$limited" > "$S/ns-limited.token"
  write_kubeconfig "$S/kubeconfig" admin "$admin"
  write_kubeconfig "$S/ns-limited.kubeconfig" ns-limited "$limited"
  umask "$old"
  write_kubeconfig "$S/kube-controller-manager.kubeconfig" system:kube-controller-manager "$kcm"
}

start() { # COMPONENT ARGS...
  local name=$1
  shift
  setsid nohup "$@" > "$S/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$S/$name.pid"
}

# Waits until `curl URL` (as admin) prints something matching PATTERN, failing early
# when one of the started components has died.
wait_for() { # WHAT URL PATTERN
  local what=$1 url=$2 pattern=$3 deadline out c
  deadline=$(($(date +%s) + TIMEOUT))
  while :; do
    out=$(curl -s --max-time 2 --cacert "$S/certs/ca.crt" -H "Authorization: Bearer $(cat "$S/admin.token")" "$url" 2>/dev/null || true)
    grep -q -- "$pattern" <<<"$out" && return 0
    for c in etcd kube-apiserver kube-controller-manager kube-scheduler; do
      if [ -f "$S/$c.pid" ] && ! live_pid "$c" >/dev/null; then
        tail -n 25 "$S/logs/$c.log" >&2 || true
        die "$c exited while waiting for $what (log: $S/logs/$c.log)"
      fi
    done
    [ "$(date +%s)" -lt "$deadline" ] || die "timed out after ${TIMEOUT}s waiting for $what (logs in $S/logs)"
    sleep 0.1
  done
}

cmd_up() {
  local want_base=${1:-} t0 bin
  t0=$(now_ms)
  if [ -n "$NODE_MODE" ] && [ "$(id -u)" != 0 ]; then
    die "--node needs root"
  fi
  if [ -d "$S" ]; then
    if live_pid kube-apiserver >/dev/null && [ -f "$S/kubeconfig" ]; then
      if [ -n "$NODE_MODE" ] && [ ! -f "$S/node-mode" ]; then
        die "cluster $NAME already runs without a node: take it down first"
      fi
      log "already running"
      echo "$S/kubeconfig"
      return 0
    fi
    log "removing stale state in $S"
    stop_all
    remove_state
  fi
  bin=$(bash "$HERE/ensure-binaries.sh")
  trap 'log "start failed: tearing down"; stop_all; remove_state' EXIT
  trap 'exit 1' INT TERM HUP
  mkdir -p "$S/logs"
  [ -z "$NODE_MODE" ] || touch "$S/node-mode"
  # etcd syncs every write to disk; a test cluster keeps its data in memory instead
  # (STATE/etcd is then a link to /dev/shm/prism-k8s-etcd.NAME.XXXX).
  if [ "${PRISM_K8S_ETCD_TMPFS:-1}" = 1 ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    ln -s "$(mktemp -d "/dev/shm/prism-k8s-etcd.$NAME.XXXXXX")" "$S/etcd"
  else
    mkdir -p "$S/etcd"
  fi
  reserve_ports "$want_base"
  make_certs
  make_credentials
  local apiserver_url=https://$API_ADDRESS:$PORT_API
  local authz=(--authorization-mode RBAC) node_flags=() controllers='*,-nodelifecycle'
  if [ -n "$NODE_MODE" ]; then
    authz=(--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction)
    node_flags=(--kubelet-client-certificate "$S/certs/kubelet-client.crt"
      --kubelet-client-key "$S/certs/kubelet-client.key"
      --kubelet-preferred-address-types InternalIP,Hostname)
    controllers='*'
  fi

  start etcd etcd --name "prism-$NAME" --data-dir "$S/etcd" \
    --listen-client-urls "http://127.0.0.1:$PORT_ETCD" --advertise-client-urls "http://127.0.0.1:$PORT_ETCD" \
    --listen-peer-urls "http://127.0.0.1:$PORT_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$PORT_PEER" \
    --initial-cluster "prism-$NAME=http://127.0.0.1:$PORT_PEER" --initial-cluster-state new \
    --snapshot-count 10000

  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$PORT_ETCD" \
    --bind-address "$API_ADDRESS" --advertise-address "$API_ADDRESS" --secure-port "$PORT_API" --insecure-port 0 \
    --tls-cert-file "$S/certs/apiserver.crt" --tls-private-key-file "$S/certs/apiserver.key" \
    --client-ca-file "$S/certs/ca.crt" \
    --token-auth-file "$S/tokens.csv" "${authz[@]}" "${node_flags[@]+"${node_flags[@]}"}" --anonymous-auth=false \
    --service-account-key-file "$S/certs/sa.pub" --service-account-signing-key-file "$S/certs/sa.key" \
    --service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range 10.96.0.0/16 \
    --endpoint-reconciler-type none --allow-privileged=true --profiling=false

  if [ -n "$NODE_MODE" ]; then
    PRISM_K8S_STATE=$STATE_ROOT PRISM_K8S_TIMEOUT=$TIMEOUT bash "$HERE/node.sh" start "$NAME"
  fi

  wait_for "the API server (/readyz)" "$apiserver_url/readyz" '^ok$'
  # Started once the API server is ready: the 1.20 controller manager and scheduler give
  # up (exit) when the API server is not healthy within 10 s, which a loaded machine
  # can take.
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$S/kube-controller-manager.kubeconfig" \
    --service-account-private-key-file "$S/certs/sa.key" --root-ca-file "$S/certs/ca.crt" \
    --controllers "$controllers" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port 0 --port 0 \
    --kube-api-qps 500 --kube-api-burst 1000 --profiling=false \
    --flex-volume-plugin-dir "$S/flex-volume"

  if [ -n "$NODE_MODE" ]; then
    start kube-scheduler "$bin/kube-scheduler" \
      --kubeconfig "$S/kube-scheduler.kubeconfig" \
      --authentication-kubeconfig "$S/kube-scheduler.kubeconfig" \
      --authorization-kubeconfig "$S/kube-scheduler.kubeconfig" \
      --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 --port 0 \
      --kube-api-qps 100 --kube-api-burst 200 --profiling=false
  fi

  # The controller manager works once the default service account has its token.
  wait_for "the controller manager (default service account token)" \
    "$apiserver_url/api/v1/namespaces/default/serviceaccounts/default" '"secrets"'
  if [ -n "$NODE_MODE" ]; then
    log "control plane up in $(( $(now_ms) - t0 )) ms; waiting for the node"
    PRISM_K8S_STATE=$STATE_ROOT PRISM_K8S_TIMEOUT=$TIMEOUT bash "$HERE/node.sh" wait "$NAME"
  fi
  trap - EXIT INT TERM HUP

  if [ -n "${PRISM_K8S_OWNER_PID:-}" ]; then
    # Tears the cluster down once the owner process is gone (the state path in the
    # script is what `down` uses to recognise this process as ours).
    start watchdog bash -c "while kill -0 $PRISM_K8S_OWNER_PID 2>/dev/null && [ -d '$S' ]; do sleep 1; done; exec bash '$HERE/cluster.sh' down '$NAME'"
  fi
  log "up in $(( $(now_ms) - t0 )) ms: $apiserver_url (state $S)"
  echo "$S/kubeconfig"
}

remove_state() {
  local target
  if [ -L "$S/etcd" ]; then
    target=$(readlink "$S/etcd")
    case "$target" in /dev/shm/prism-k8s-etcd.*) rm -rf "$target" ;; esac
  fi
  rm -rf "$S"
}

stop_all() {
  local c pid pids=() i
  if [ -d "$S/node" ]; then
    PRISM_K8S_STATE=$STATE_ROOT bash "$HERE/node.sh" down "$NAME" || log "warning: the node did not stop cleanly"
  fi
  for c in "${COMPONENTS[@]}"; do
    pid=$(live_pid "$c") || continue
    [ "$pid" = "$$" ] && continue
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  for ((i = 0; i < 100 && ${#pids[@]} > 0; i++)); do
    local alive=()
    for pid in "${pids[@]}"; do running "$pid" && alive+=("$pid"); done
    pids=("${alive[@]+"${alive[@]}"}")
    [ ${#pids[@]} -eq 0 ] || sleep 0.1
  done
  for pid in "${pids[@]+"${pids[@]}"}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

cmd_down() {
  if [ ! -d "$S" ]; then
    log "not running"
    return 0
  fi
  stop_all
  remove_state
  log "down"
}

cmd_env() {
  [ -f "$S/kubeconfig" ] || die "cluster $NAME is not up (no $S/kubeconfig)"
  read -r _ _ PORT_API _ < "$S/ports"
  cat <<ENV
export KUBECONFIG='$S/kubeconfig'
export PRISM_K8S_STATE_DIR='$S'
export PRISM_K8S_SERVER='https://$API_ADDRESS:$PORT_API'
export PRISM_K8S_CA='$S/certs/ca.crt'
export PRISM_K8S_ADMIN_TOKEN='$(cat "$S/admin.token")'
export PRISM_K8S_LIMITED_USER='ns-limited'
export PRISM_K8S_LIMITED_TOKEN='$(cat "$S/ns-limited.token")'
export PRISM_K8S_LIMITED_KUBECONFIG='$S/ns-limited.kubeconfig'
ENV
  if [ -f "$S/node/registry.addr" ]; then
    echo "export PRISM_K8S_NODE_REGISTRY='$(cat "$S/node/registry.addr")'"
  fi
}

[ $# -ge 2 ] || usage
CMD=$1
NAME=$2
check_name "$NAME"
S=$STATE_ROOT/$NAME
ARGS=()
for a in "${@:3}"; do
  case "$a" in
    --node) [ "$CMD" = up ] || usage; NODE_MODE=1 ;;
    -*) usage ;;
    *) ARGS+=("$a") ;;
  esac
done
set -- "$CMD" "$NAME" "${ARGS[@]+"${ARGS[@]}"}"
[[ "$API_ADDRESS" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] ||
  die "PRISM_K8S_API_ADDRESS must be an IPv4 address, not '$API_ADDRESS'"
[ -z "$NODE_MODE" ] || [ "$API_ADDRESS" = 127.0.0.1 ] ||
  die "PRISM_K8S_API_ADDRESS is for clusters without --node (the node's kubelet talks to 127.0.0.1)"
case "$CMD" in
  up) [ $# -le 3 ] || usage; cmd_up "${3:-}" ;;
  down) [ $# -eq 2 ] || usage; cmd_down ;;
  env) [ $# -eq 2 ] || usage; cmd_env ;;
  *) usage ;;
esac
