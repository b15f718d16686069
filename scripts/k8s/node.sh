#!/usr/bin/env bash
# A REAL Kubernetes node for a test cluster: kubelet v1.20.2 + Debian's containerd + runc,
# following ../shared/k8s-v1.20.2-node/README.md. Pods really run (exit codes, OOM kills,
# logs through the API, probes, image pulls from a local registry). Normally started by
# `scripts/k8s/cluster.sh up NAME --node`, which first starts the control plane in the
# mode a real node needs; `cluster.sh down NAME` stops both.
#
# Usage:
#   scripts/k8s/node.sh up NAME     start the node of cluster NAME (started with --node)
#   scripts/k8s/node.sh down NAME   stop it and remove everything it made
#   scripts/k8s/node.sh trust-registry NAME HOST:PORT
#                                   let the node pull over plain HTTP from one more
#                                   registry (e.g. one listening on the pod gateway)
#   (`start NAME` + `wait NAME` are `up` in two steps: cluster.sh starts the node while
#   the API server starts, then waits for it to be Ready)
#
# What `up` does, all under STATE/NAME/node (NODE below):
#   - a registry: PRISM_K8S_REGISTRY=127.0.0.1:PORT when the caller runs one, else
#     Debian's docker-registry on 127.0.0.1:PORT_BASE+5 (data in NODE/registry);
#     pushes 127.0.0.1:PORT/pause:3.4 (the sandbox image) and 127.0.0.1:PORT/busybox:1
#     (busybox-static, applets as links, PATH=/bin) to it with skopeo;
#   - containerd and the kubelet in a private mount namespace (unshare --mount
#     --propagation private) in which /proc/sys/vm/overcommit_memory, kernel/panic and
#     kernel/panic_on_oops are files holding 1, 10 and 1 (so the kubelet changes nothing
#     on the host) and /var/lib/kubelet, /var/log/pods, /var/log/containers,
#     /run/containerd and /var/lib/cni are bind-mounted from NODE/mnt/* (the host only
#     gets those five directories, empty, as mount points);
#   - containerd with HTTP(S)_PROXY=http://127.0.0.1:9 (closed) and NO_PROXY=127.0.0.1,
#     localhost: an image from anywhere but loopback fails at once;
#   - the kubelet with AWS_EC2_METADATA_DISABLED=true (and the same closed proxy),
#     makeIPTablesUtilChains false, pods' resolv.conf = `nameserver 127.0.0.1`,
#     cgroupRoot /prism-node-NAME, node name 127.0.0.1 (InternalIP 127.0.0.1), serving
#     on 127.0.0.1:PORT_BASE+3 (healthz PORT_BASE+4);
#   - pod network: a bridge of its own (pn + 8 hex digits, in NODE/bridge; no address,
#     no gateway, no masquerade, no ip_forward), host-local IPAM on 10.244.X.0/24 (a
#     subnet per node, in NODE/subnet). Pods reach nothing but each other; hostNetwork
#     pods share the host's loopback (serve on 127.0.0.1, ports of your own).
#     With PRISM_K8S_POD_GATEWAY=1 the bridge gets the subnet's first address (in
#     NODE/gateway; still no forwarding, no masquerade, no default route in the pods):
#     pods then reach what the caller serves on that address and the host reaches the
#     pods, while the host's loopback stays out of the pods' reach; containerd may pull
#     from a registry there (`trust-registry`: the address bypasses the closed proxy);
#   - every pod limited to PRISM_K8S_POD_PIDS_LIMIT processes (kubelet podPidsLimit,
#     default 1024): a fork bomb in a pod stops there;
#   - containerd, the kubelet and the shims in the pids cgroup /prism-node-NAME.runtime
#     (no limit; it is how `down` finds the shims);
# and waits until the node is Ready and untainted. Logs: STATE/NAME/logs/{kubelet,
# containerd,registry,node-ns}.log. Needs root.
# `down` stops every process by its pid (the kubelet, pod processes from the cgroups
# under cgroupRoot, the shims from the runtime cgroup, containerd, the namespace's
# holder, the registry if it started one), removes the bridge and the cgroups, then
# NODE (the mounts went with the namespace).
#
# Several clusters may each run a node at once (ports, cgroupRoot, bridge, subnet and
# the mounted directories are per cluster; the node is called 127.0.0.1 in every
# cluster, each with its own API server).
#
# Env: PRISM_K8S_REGISTRY  127.0.0.1:PORT of a registry to use instead of starting one
#      PRISM_K8S_POD_GATEWAY=1, PRISM_K8S_POD_PIDS_LIMIT (above)
#      PRISM_K8S_POD_RESOLV_CONF  a resolv.conf for the pods instead of `nameserver
#                           127.0.0.1` (prism-bench build: hostNetwork builds that
#                           download from the npm registry, as the local runners do)
#      PRISM_K8S_STATE, PRISM_K8S_TIMEOUT as for cluster.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE_ROOT=${PRISM_K8S_STATE:-/tmp/prism-k8s}
TIMEOUT=${PRISM_K8S_TIMEOUT:-90}
HOST_DIRS=(/var/lib/kubelet /var/log/pods /var/log/containers /run/containerd /var/lib/cni)
# What the kubelet would set on the host (pkg/kubelet/cm setupKernelTunables): name,
# value it wants. The first three are always mounted (README's musts); the others only
# where this machine's value differs.
SYSCTLS=(vm/overcommit_memory:1 kernel/panic:10 kernel/panic_on_oops:1 vm/panic_on_oom:0 \
  kernel/keys/root_maxkeys:1000000 kernel/keys/root_maxbytes:25000000)
CLOSED_PROXY=http://127.0.0.1:9

log() { printf '[node %s] %s\n' "${NAME:-?}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '/^# Usage:/,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

check_name() {
  [[ "$1" =~ ^[a-z0-9][a-z0-9_.-]{0,62}$ ]] || die "bad cluster name '$1' (lowercase letters, digits, . _ -)"
}

now_ms() { date +%s%3N; }

# The pid in NODE/NAME.pid when that process still runs and is really ours (its command
# line names the node directory), else nothing.
live_pid() {
  local f=$NODE/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$NODE" || return 1
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

# Every v1 hierarchy mounted under /sys/fs/cgroup, plus the unified one when present.
cgroup_hierarchies() {
  awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts | grep '^/sys/fs/cgroup/' || true
}

admin_get() { # PATH
  curl -s --max-time 3 --cacert "$S/certs/ca.crt" -H "Authorization: Bearer $(cat "$S/admin.token")" \
    "https://127.0.0.1:$PORT_API$1" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
# up

read_ports() {
  read -r _ _ PORT_API PORT_KUBELET PORT_HEALTHZ PORT_REGISTRY < "$S/ports"
}

pick_subnet() {
  local x taken
  exec 7>"$STATE_ROOT/.node.lock"
  flock 7
  taken=$(cat "$STATE_ROOT"/*/node/subnet 2>/dev/null || true)
  for ((x = 1; x < 255; x++)); do
    grep -qx "10.244.$x.0/24" <<<"$taken" && continue
    ip -4 route show 2>/dev/null | grep -q "^10\.244\.$x\." && continue
    echo "10.244.$x.0/24" > "$NODE/subnet"
    flock -u 7
    exec 7>&-
    return 0
  done
  die "no free 10.244.X.0/24 subnet for the pod network"
}

start_registry() {
  if [ -n "${PRISM_K8S_REGISTRY:-}" ]; then
    [[ "$PRISM_K8S_REGISTRY" =~ ^127\.0\.0\.1:[0-9]+$ ]] || die "PRISM_K8S_REGISTRY must be 127.0.0.1:PORT, not '$PRISM_K8S_REGISTRY'"
    REGISTRY=$PRISM_K8S_REGISTRY
  else
    port_in_use "$PORT_REGISTRY" && die "port $PORT_REGISTRY (registry) is in use"
    REGISTRY=127.0.0.1:$PORT_REGISTRY
    mkdir -p "$NODE/registry"
    cat > "$NODE/registry/config.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $NODE/registry/data}, delete: {enabled: true}}
http: {addr: $REGISTRY}
YML
    setsid nohup docker-registry serve "$NODE/registry/config.yml" > "$S/logs/registry.log" 2>&1 < /dev/null &
    echo $! > "$NODE/registry.pid"
  fi
  echo "$REGISTRY" > "$NODE/registry.addr"
  # A registry the caller runs must answer at once; one of ours may take a moment.
  local wait=$TIMEOUT
  [ -z "${PRISM_K8S_REGISTRY:-}" ] || wait=10
  local deadline=$(($(date +%s) + wait))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 2 "http://$REGISTRY/v2/" 2>/dev/null)" = 200 ]; do
    [ -z "${PRISM_K8S_REGISTRY:-}" ] && ! live_pid registry > /dev/null && { tail -n 20 "$S/logs/registry.log" >&2; die "docker-registry exited"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "registry $REGISTRY does not answer /v2/"
    sleep 0.05
  done
  local image
  for image in pause:3.4 busybox:1; do
    NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost \
      skopeo copy -q --dest-tls-verify=false "oci:$IMAGES/${image%%:*}:${image#*:}" "docker://$REGISTRY/$image" >&2 ||
      die "skopeo could not push $image to $REGISTRY"
  done
}

# containerd reads NODE/containerd/certs.d at every pull: a registry added later counts.
write_registry_hosts() { # HOST:PORT
  mkdir -p "$NODE/containerd/certs.d/$1"
  cat > "$NODE/containerd/certs.d/$1/hosts.toml" <<TOML
server = "http://$1"
[host."http://$1"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
TOML
}

write_configs() {
  local subnet bridge c=$NODE/containerd
  subnet=$(cat "$NODE/subnet")
  bridge=pn$(printf '%s' "$NODE" | sha256sum | cut -c1-8)
  echo "$bridge" > "$NODE/bridge"
  ip link show "$bridge" > /dev/null 2>&1 && die "a bridge named $bridge already exists"
  if [ "${PRISM_K8S_POD_GATEWAY:-0}" = 1 ]; then
    # The CNI plugin keeps an existing bridge as it is (isGateway false: it neither
    # adds an address nor turns ip_forward on); host-local never hands out .1.
    local gateway=${subnet%.0/24}.1
    ip link add "$bridge" type bridge
    ip addr add "$gateway/24" dev "$bridge"
    ip link set "$bridge" up
    echo "$gateway" > "$NODE/gateway"
  fi
  mkdir -p "$c/root" "$c/state" "$c/opt" "$c/certs.d/$REGISTRY" "$NODE/cni/net.d" "$NODE/cni/ipam" \
    "$NODE/kubelet/root" "$NODE/kubelet/pki" "$NODE/kubelet/volume-plugins" "$NODE/sysctl"
  for d in "${HOST_DIRS[@]}"; do mkdir -p "$NODE/mnt/$(mount_name "$d")"; done
  if [ -n "${PRISM_K8S_POD_RESOLV_CONF:-}" ]; then
    cp "$PRISM_K8S_POD_RESOLV_CONF" "$NODE/resolv.conf"
  else
    echo 'nameserver 127.0.0.1' > "$NODE/resolv.conf"
  fi

  cat > "$c/config.toml" <<TOML
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$c/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REGISTRY/pause:3.4"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
TOML
  write_registry_hosts "$REGISTRY"

  cat > "$NODE/cni/net.d/10-bridge.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "prism-$NAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": false,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]], "dataDir": "$NODE/cni/ipam"}
    }
  ]
}
JSON

  cat > "$NODE/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $PORT_KUBELET
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $PORT_HEALTHZ
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $S/certs/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: /$CGROUP_ROOT
enforceNodeAllocatable: [pods]
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
resolvConf: $NODE/resolv.conf
nodeStatusUpdateFrequency: 2s
syncFrequency: 10s
serializeImagePulls: false
podPidsLimit: ${PRISM_K8S_POD_PIDS_LIMIT:-1024}
evictionHard: {memory.available: 100Mi, nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
kubeAPIQPS: 50
kubeAPIBurst: 100
YAML

  local ca
  ca=$(base64 -w0 < "$S/certs/ca.crt")
  (
    umask 077
    cat > "$NODE/kubelet/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: prism-$NAME
  cluster:
    server: https://127.0.0.1:$PORT_API
    certificate-authority-data: $ca
users:
- name: system:node:127.0.0.1
  user:
    token: $(cat "$S/node.token")
contexts:
- name: node
  context: {cluster: prism-$NAME, user: "system:node:127.0.0.1"}
current-context: node
KC
  )
}

mount_name() { # /var/lib/kubelet -> var-lib-kubelet
  local p=${1#/}
  echo "${p//\//-}"
}

# cgroupRoot in every hierarchy, made before the kubelet starts (cpuset needs its cpus
# and mems copied from the parent before anything can join it).
make_cgroups() {
  local h
  [ ! -d /sys/fs/cgroup/pids ] || mkdir -p "$(runtime_cgroup)"
  while read -r h; do
    mkdir -p "$h/$CGROUP_ROOT"
    if [ -f "$h/cpuset.cpus" ]; then
      cat "$h/cpuset.cpus" > "$h/$CGROUP_ROOT/cpuset.cpus"
      cat "$h/cpuset.mems" > "$h/$CGROUP_ROOT/cpuset.mems"
    fi
  done < <(cgroup_hierarchies)
}

# The cgroup (pids hierarchy only: it sets no limit) that the namespace's holder joins
# first, so that containerd, the kubelet and every shim containerd starts (shims leave
# no pid file of their own) can be found by `down`.
runtime_cgroup() { echo "/sys/fs/cgroup/pids/$CGROUP_ROOT.runtime"; }

# Runs inside `unshare --mount --propagation private` (see cmd_start): the mounts, then
# containerd and the kubelet as children of this shell, which stays as the namespace's
# holder until both are gone.
cmd_ns() {
  local d s name want have
  if [ -d "$(runtime_cgroup)" ]; then echo $$ > "$(runtime_cgroup)/cgroup.procs"; fi
  for d in "${HOST_DIRS[@]}"; do
    mount -n --bind "$NODE/mnt/$(mount_name "$d")" "$d"
  done
  for s in "${SYSCTLS[@]}"; do
    name=${s%%:*}
    want=${s#*:}
    have=$(cat "/proc/sys/$name" 2>/dev/null) || continue
    case "$name" in
      vm/overcommit_memory | kernel/panic | kernel/panic_on_oops) ;;
      *) [ "$have" = "$want" ] && continue ;;
    esac
    echo "$want" > "$NODE/sysctl/${name//\//.}"
    mount -n --bind "$NODE/sysctl/${name//\//.}" "/proc/sys/$name"
  done
  # The kubelet reads these before it starts: check the mounts really took.
  [ "$(cat /proc/sys/vm/overcommit_memory)" = 1 ] || { echo "overcommit_memory mount failed" >&2; exit 1; }

  # containerd creates image snapshots with its umask: a restrictive one inherited
  # from the caller makes every image root 0700, unusable by a non-root user.
  umask 022
  # Only this host's own addresses bypass the closed proxy: loopback, and the pod
  # gateway when there is one (a registry the caller serves to the pods there).
  local direct=127.0.0.1,localhost
  if [ -f "$NODE/gateway" ]; then direct=$direct,$(cat "$NODE/gateway"); fi
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    HTTP_PROXY=$CLOSED_PROXY HTTPS_PROXY=$CLOSED_PROXY NO_PROXY=$direct \
    http_proxy=$CLOSED_PROXY https_proxy=$CLOSED_PROXY no_proxy=$direct \
    containerd --config "$NODE/containerd/config.toml" > "$S/logs/containerd.log" 2>&1 < /dev/null &
  echo $! > "$NODE/containerd.pid"
  local i
  for ((i = 0; i < 600; i++)); do
    [ -S "$NODE/containerd/containerd.sock" ] && ctr --address "$NODE/containerd/containerd.sock" version > /dev/null 2>&1 && break
    kill -0 "$(cat "$NODE/containerd.pid")" 2>/dev/null || { echo "containerd exited" >&2; exit 1; }
    sleep 0.05
  done
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    AWS_EC2_METADATA_DISABLED=true \
    HTTP_PROXY=$CLOSED_PROXY HTTPS_PROXY=$CLOSED_PROXY NO_PROXY=127.0.0.1,localhost \
    http_proxy=$CLOSED_PROXY https_proxy=$CLOSED_PROXY no_proxy=127.0.0.1,localhost \
    "$BIN/kubelet" --config="$NODE/kubelet/config.yaml" --kubeconfig="$NODE/kubelet/kubeconfig" \
    --hostname-override=127.0.0.1 --root-dir="$NODE/kubelet/root" --cert-dir="$NODE/kubelet/pki" \
    --volume-plugin-dir="$NODE/kubelet/volume-plugins" \
    --container-runtime=remote --container-runtime-endpoint="unix://$NODE/containerd/containerd.sock" \
    --image-service-endpoint="unix://$NODE/containerd/containerd.sock" \
    --pod-infra-container-image="$REGISTRY/pause:3.4" --v=1 > "$S/logs/kubelet.log" 2>&1 < /dev/null &
  echo $! > "$NODE/kubelet.pid"
  wait
}

node_ready() {
  local out
  out=$(admin_get /api/v1/nodes/127.0.0.1)
  # Ready=True, and no taints left (the node lifecycle controller removes not-ready).
  grep -q '"type": "Ready"' <<<"$out" || return 1
  tr -d ' \n' <<<"$out" | grep -q '"type":"Ready","status":"True"' || return 1
  ! tr -d ' \n' <<<"$out" | grep -q '"taints":'
}

# Starts the registry, containerd and the kubelet, without waiting for the API server
# (cluster.sh runs this while the control plane starts: the kubelet's own start-up
# takes seconds).
cmd_start() {
  local t0
  t0=$(now_ms)
  [ -f "$S/node-mode" ] || die "cluster $NAME is not up in node mode: start it with scripts/k8s/cluster.sh up $NAME --node"
  [ "$(id -u)" = 0 ] || die "a real node needs root"
  # A unix socket path has at most 107 bytes: containerd's longest is this one.
  local sock=$NODE/containerd/containerd.sock.ttrpc
  [ ${#sock} -le 107 ] || die "$sock is too long for a unix socket: use a shorter NAME or PRISM_K8S_STATE"
  if live_pid kubelet > /dev/null; then
    log "already running"
    ALREADY=1
    return 0
  fi
  [ -d "$NODE" ] && { log "removing a stale node in $NODE"; cmd_down; }
  read_ports
  [ -n "${PORT_REGISTRY:-}" ] || die "$S/ports has no node ports (cluster not started with --node?)"
  BIN=$(bash "$HERE/ensure-binaries.sh")
  IMAGES=$(dirname "$BIN")/images
  mkdir -p "$NODE"
  trap 'log "start failed: tearing the node down"; cmd_down' EXIT
  trap 'exit 1' INT TERM HUP
  local p
  for p in "$PORT_KUBELET" "$PORT_HEALTHZ"; do port_in_use "$p" && die "port $p (kubelet) is in use"; done
  echo "$CGROUP_ROOT" > "$NODE/cgroup-root"
  pick_subnet
  start_registry
  write_configs
  make_cgroups
  for p in "${HOST_DIRS[@]}"; do mkdir -p "$p"; done
  log "registry $REGISTRY ready in $(($(now_ms) - t0)) ms; starting containerd and the kubelet"

  # Everything the holder needs comes in its environment.
  NAME=$NAME S=$S NODE=$NODE BIN=$BIN REGISTRY=$REGISTRY PORT_KUBELET=$PORT_KUBELET \
    setsid nohup unshare --mount --propagation private bash "$HERE/node.sh" __ns "$NAME" "$NODE" \
    > "$S/logs/node-ns.log" 2>&1 < /dev/null &
  echo $! > "$NODE/holder.pid"
  trap - EXIT INT TERM HUP
}

# Waits until the node is Ready and untainted; tears it down when it does not get there.
cmd_wait() {
  local t0
  t0=$(now_ms)
  [ -d "$NODE" ] || die "node $NAME was not started"
  read_ports
  trap 'log "start failed: tearing the node down"; cmd_down' EXIT
  trap 'exit 1' INT TERM HUP
  local deadline=$(($(date +%s) + TIMEOUT)) c
  until node_ready; do
    for c in holder containerd kubelet; do
      if [ -f "$NODE/$c.pid" ] && ! live_pid "$c" > /dev/null; then
        [ "$c" = holder ] && tail -n 20 "$S/logs/node-ns.log" >&2
        [ -f "$S/logs/$c.log" ] && tail -n 25 "$S/logs/$c.log" >&2
        die "$c exited while waiting for the node to be Ready (logs in $S/logs)"
      fi
    done
    [ "$(date +%s)" -lt "$deadline" ] || die "timed out after ${TIMEOUT}s waiting for node 127.0.0.1 to be Ready (logs in $S/logs)"
    sleep 0.2
  done
  trap - EXIT INT TERM HUP
  log "node 127.0.0.1 Ready in $(($(now_ms) - t0)) ms (registry $(cat "$NODE/registry.addr"), bridge $(cat "$NODE/bridge"), pods $(cat "$NODE/subnet"))"
}

# ---------------------------------------------------------------------------------------
# down

# Sends SIG to each pid, waits up to WAIT tenths of a second for all to be gone, then
# kills what is left.
stop_pids() { # SIG WAIT PID...
  local sig=$1 wait=$2 pid i
  shift 2
  local pids=("$@")
  [ ${#pids[@]} -gt 0 ] || return 0
  for pid in "${pids[@]}"; do kill "-$sig" "$pid" 2>/dev/null || true; done
  for ((i = 0; i < wait && ${#pids[@]} > 0; i++)); do
    local alive=()
    for pid in "${pids[@]}"; do running "$pid" && alive+=("$pid"); done
    pids=("${alive[@]+"${alive[@]}"}")
    [ ${#pids[@]} -eq 0 ] || sleep 0.1
  done
  for pid in "${pids[@]+"${pids[@]}"}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

# Pids of the processes in the cgroups under cgroupRoot (the pods' containers).
pod_pids() {
  local h
  [ -n "$CGROUP_ROOT" ] || return 0
  while read -r h; do
    [ -d "$h/$CGROUP_ROOT" ] || continue
    find "$h/$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null
  done < <(cgroup_hierarchies) | sort -un
}

# The shims containerd started for this node: the processes of the runtime cgroup but
# the holder and containerd, and (should that cgroup be missing) the processes whose
# command line names this node's containerd socket, as every shim's does.
shim_pids() {
  local pid keep=" $(cat "$NODE/holder.pid" "$NODE/containerd.pid" "$NODE/kubelet.pid" 2>/dev/null | tr '\n' ' ') "
  {
    if [ -f "$(runtime_cgroup)/cgroup.procs" ]; then
      cat "$(runtime_cgroup)/cgroup.procs"
    else
      for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -qF -- "-address $NODE/containerd/containerd.sock " && echo "$pid"
      done
    fi
  } | sort -un | while read -r pid; do
    [[ "$keep" == *" $pid "* ]] || echo "$pid"
  done
}

remove_cgroups() {
  local h i left
  [ -n "$CGROUP_ROOT" ] || return 0
  for ((i = 0; i < 50; i++)); do
    left=
    while read -r h; do
      [ -d "$h/$CGROUP_ROOT" ] || continue
      find "$h/$CGROUP_ROOT" -depth -type d -exec rmdir {} \; 2>/dev/null || true
      [ -d "$h/$CGROUP_ROOT" ] && left=$h/$CGROUP_ROOT
    done < <(cgroup_hierarchies)
    [ -z "$left" ] && return 0
    # Processes that were still exiting: kill what is left and try again.
    stop_pids KILL 5 $(pod_pids)
    sleep 0.1
  done
  log "warning: could not remove $left"
}

cmd_down() {
  if [ ! -d "$NODE" ]; then
    return 0
  fi
  local pid
  # The kubelet first, so that it restarts nothing; then the pods, their shims,
  # containerd, and the namespace's holder (the private mounts go with it).
  if pid=$(live_pid kubelet); then stop_pids TERM 50 "$pid"; fi
  stop_pids KILL 20 $(pod_pids)
  stop_pids TERM 20 $(shim_pids)
  if pid=$(live_pid containerd); then stop_pids TERM 50 "$pid"; fi
  stop_pids KILL 20 $(shim_pids) $(pod_pids)
  if pid=$(live_pid holder); then stop_pids TERM 30 "$pid"; fi
  remove_cgroups
  if [ -d "$(runtime_cgroup)" ]; then
    stop_pids KILL 20 $(cat "$(runtime_cgroup)/cgroup.procs" 2>/dev/null)
    # Killed shims stay in it as zombies until the process that adopted them reaps them.
    local i
    for ((i = 0; i < 100; i++)); do
      rmdir "$(runtime_cgroup)" 2>/dev/null && break
      sleep 0.1
    done
    [ ! -d "$(runtime_cgroup)" ] || log "warning: could not remove $(runtime_cgroup)"
  fi
  if [ -f "$NODE/bridge" ]; then
    local bridge
    bridge=$(cat "$NODE/bridge")
    if [[ "$bridge" =~ ^pn[0-9a-f]{8}$ ]] && ip link show "$bridge" > /dev/null 2>&1; then
      ip link delete "$bridge" || log "warning: could not delete bridge $bridge"
    fi
  fi
  if pid=$(live_pid registry); then stop_pids TERM 30 "$pid"; fi
  # Nothing may still run with NODE's directories mounted before they go.
  if pid=$(live_pid holder); then
    log "warning: the node's namespace holder $pid is still running; leaving $NODE"
    return 1
  fi
  rm -rf "$NODE"
  log "node down"
}

[ $# -ge 2 ] || usage
CMD=$1
NAME=$2
check_name "$NAME"
S=$STATE_ROOT/$NAME
NODE=$S/node
CGROUP_ROOT=prism-node-$NAME
case "$CMD" in
  up) [ $# -eq 2 ] || usage; ALREADY=; cmd_start; [ -n "$ALREADY" ] || cmd_wait ;;
  start) [ $# -eq 2 ] || usage; ALREADY=; cmd_start ;;
  wait) [ $# -eq 2 ] || usage; cmd_wait ;;
  down) [ $# -eq 2 ] || usage; cmd_down ;;
  trust-registry)
    [ $# -eq 3 ] || usage
    [[ "$3" =~ ^[0-9.]+:[0-9]+$ ]] || die "trust-registry: HOST:PORT is an IPv4 address and a port, not '$3'"
    [ -d "$NODE/containerd/certs.d" ] || die "node $NAME is not up"
    write_registry_hosts "$3" ;;
  __ns) [ $# -eq 3 ] && [ "$3" = "$NODE" ] || usage; cmd_ns ;;
  *) usage ;;
esac
