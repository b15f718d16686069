#!/usr/bin/env bash
# A Kubernetes cluster for trying Prism by hand: a real v1.20.2 control plane (etcd,
# kube-apiserver, kube-controller-manager) plus one simulated node (prism-kube-sim)
# that runs every pod "for real" as far as the API can tell: bound, Running, Ready.
#
# Usage:
#   scripts/k8s/dev-cluster.sh            start (or show) cluster "dev"
#   scripts/k8s/dev-cluster.sh down       stop it and remove its state
#   scripts/k8s/dev-cluster.sh status     is it running?
#
# Options by environment:
#   PRISM_K8S_PORT_BASE=16500   fixed ports (etcd 16500/16501, API server 16502);
#                               default: the first free base from 16400 up
#   PRISM_SIM_REGISTRY=127.0.0.1:5000   images of that registry must exist there, or
#                               their pods report ErrImagePull (as a kubelet would)
#
# Then:
#   export KUBECONFIG=/tmp/prism-k8s/dev/kubeconfig     (printed at the end)
#   kubectl create deployment web --image=nginx --replicas=3
#   kubectl rollout status deployment/web
# Pod annotation prism.test/fail=crashloop or =never-ready makes a pod fail on purpose.
# The restricted user: `eval "$(scripts/k8s/cluster.sh env dev)"`, then
# $PRISM_K8S_LIMITED_KUBECONFIG (user ns-limited, no rights until you bind a Role).
#
# The first run unpacks (or builds) the Kubernetes binaries and builds the simulator;
# logs are in /tmp/prism-k8s/dev/logs/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=dev
STATE=${PRISM_K8S_STATE:-/tmp/prism-k8s}/$NAME
SIM_PID=$STATE/sim.pid

sim_running() {
  [ -f "$SIM_PID" ] && kill -0 "$(cat "$SIM_PID")" 2>/dev/null
}

case "${1:-up}" in
  down)
    if sim_running; then kill "$(cat "$SIM_PID")" || true; fi
    bash "$ROOT/scripts/k8s/cluster.sh" down "$NAME"
    exit 0
    ;;
  status)
    if [ -f "$STATE/kubeconfig" ]; then
      eval "$(bash "$ROOT/scripts/k8s/cluster.sh" env "$NAME")"
      if curl -sf --cacert "$PRISM_K8S_CA" -H "Authorization: Bearer $PRISM_K8S_ADMIN_TOKEN" \
        "$PRISM_K8S_SERVER/readyz" >/dev/null; then
        echo "cluster dev: up, KUBECONFIG=$KUBECONFIG; simulator: $(sim_running && echo running || echo stopped)"
        exit 0
      fi
    fi
    echo "cluster dev: down"
    exit 1
    ;;
  up) ;;
  *)
    sed -n '/^# Usage:/,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac

bash "$ROOT/scripts/k8s/ensure-binaries.sh" >/dev/null
echo "building prism-kube-sim..." >&2
(cd "$ROOT" && cargo build -q -p prism-kube-sim)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
SIM_BIN=$TARGET_DIR/debug/prism-kube-sim

KUBECONFIG_PATH=$(bash "$ROOT/scripts/k8s/cluster.sh" up "$NAME" ${PRISM_K8S_PORT_BASE:-})

if sim_running; then
  echo "simulator already running (pid $(cat "$SIM_PID"))" >&2
else
  args=(--kubeconfig "$KUBECONFIG_PATH" --node-name dev-node)
  [ -z "${PRISM_SIM_REGISTRY:-}" ] || args+=(--registry "$PRISM_SIM_REGISTRY")
  setsid nohup "$SIM_BIN" "${args[@]}" > "$STATE/logs/prism-kube-sim.log" 2>&1 < /dev/null &
  echo $! > "$SIM_PID"
  for _ in $(seq 1 100); do
    grep -q 'watching pods' "$STATE/logs/prism-kube-sim.log" 2>/dev/null && break
    sim_running || { cat "$STATE/logs/prism-kube-sim.log" >&2; echo "the simulator exited" >&2; exit 1; }
    sleep 0.1
  done
fi

cat <<EOF

Cluster "dev" is up, with one simulated node (dev-node).
  export KUBECONFIG=$KUBECONFIG_PATH
  kubectl get nodes
Restricted user (namespaced RoleBinding needed): $STATE/ns-limited.kubeconfig
Logs: $STATE/logs/
Stop it: scripts/k8s/dev-cluster.sh down
EOF
echo "$KUBECONFIG_PATH"
