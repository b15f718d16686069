#!/usr/bin/env bash
# Runs Prism's whole test suite on this machine, installing and starting what
# the tests need first:
#   - PostgreSQL: uses the server on 127.0.0.1:5432 when one answers (trust
#     auth as user postgres); otherwise installs Debian's postgresql if needed
#     and starts a private throw-away cluster for the run.
#   - Kubernetes v1.20.2 control-plane binaries, etcd, kubectl and Debian's
#     docker-registry, and for the real-node test the kubelet, containerd,
#     runc, the CNI plugins and the pause/busybox images
#     (scripts/k8s/ensure-binaries.sh: from ../shared when present, else built
#     from Debian's source and cached); the tests start their own clusters
#     with scripts/k8s/cluster.sh (--node for a real kubelet).
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

ensure_postgres() {
  if [ -n "${PRISM_TEST_PG_URL:-}" ]; then
    log "PostgreSQL: using PRISM_TEST_PG_URL"
    return
  fi
  if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432 \
     && psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    log "PostgreSQL: using the server on 127.0.0.1:5432"
    export PRISM_TEST_PG_URL="postgres://postgres@127.0.0.1:5432"
    return
  fi
  # A cluster that exists but is stopped: start it.
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql 2>/dev/null | grep -q .; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start 2>/dev/null || true
    sleep 2
    if pg_isready -q -h 127.0.0.1 -p 5432 && psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
      log "PostgreSQL: started the machine's cluster"
      export PRISM_TEST_PG_URL="postgres://postgres@127.0.0.1:5432"
      return
    fi
  fi
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    log "PostgreSQL: installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  fi
  local bin port dir
  bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  port=55432
  dir=$(mktemp -d /tmp/prism-pg.XXXXXX)
  chown postgres "$dir" 2>/dev/null || true
  log "PostgreSQL: private cluster in $dir on port $port"
  local as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" -l "$dir/log" -w start >/dev/null
  trap '"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true' EXIT
  export PRISM_TEST_PG_URL="postgres://postgres@127.0.0.1:$port"
}

drop_stale_test_databases() {
  # Databases left by an earlier run that was killed mid-test.
  psql "$PRISM_TEST_PG_URL/postgres" -Atc \
    "select datname from pg_database where datname like 'prism\_test\_%' or datname like 'prism\_mi\_%' or datname like 'prism\_bench\_%'" 2>/dev/null |
    while read -r db; do psql "$PRISM_TEST_PG_URL/postgres" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true; done
}

ensure_postgres
drop_stale_test_databases

ensure_image_tools() {
  # Real peer clients the image tests check Prism's pushes with.
  local need=()
  command -v skopeo >/dev/null || need+=(skopeo)
  command -v umoci >/dev/null || need+=(umoci)
  command -v runc >/dev/null || need+=(runc)
  # The Dockerfile is checked by building it with buildah.
  command -v buildah >/dev/null || need+=(buildah)
  command -v busybox >/dev/null || need+=(busybox-static)
  command -v htpasswd >/dev/null || need+=(apache2-utils)
  # The contained build runner's user-mode networking.
  command -v slirp4netns >/dev/null || need+=(slirp4netns)
  # Metric gates are tested against a real Prometheus scraping a Pushgateway.
  command -v prometheus >/dev/null || need+=(prometheus)
  command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
  # LDAP login is tested against a real OpenLDAP server.
  [ -x /usr/sbin/slapd ] || need+=(slapd)
  # The systemd unit in deploy/systemd is checked by systemd-analyze verify.
  command -v systemd-analyze >/dev/null || need+=(systemd)
  command -v ldapsearch >/dev/null || need+=(ldap-utils)
  # The git webhook test's post-receive hook signs with openssl and posts with curl.
  command -v openssl >/dev/null || need+=(openssl)
  command -v curl >/dev/null || need+=(curl)
  # The ops-tools front is tested through a real nginx (auth_request).
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
  if [ ${#need[@]} -gt 0 ]; then
    log "Installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

log "Image and build tools: skopeo, umoci, runc, busybox, htpasswd, slirp4netns"
ensure_image_tools

log "Chromium and chromedriver for the web console tests"
bash scripts/ensure-chromium.sh

log "axe-core (npm) for the web console's accessibility test"
bash scripts/ensure-axe.sh >/dev/null

log "oidc-provider (npm), the OpenID Connect provider of the single sign-on tests"
bash scripts/ensure-oidc-provider.sh >/dev/null

log "Kubernetes control plane and node binaries, etcd, kubectl, registry, containerd"
bash scripts/k8s/ensure-binaries.sh

log "Building"
# No incremental compilation data: a fresh build does not need it, and on a
# shared disk it grew the target directory by some 20 GB.
export CARGO_INCREMENTAL=0
cargo build --workspace --all-targets --locked

log "Running the test suite"
status=0
cargo test --workspace --locked --no-fail-fast "$@" || status=$?

# The whole suite (no filter given) also fuzzes the REST API from its own
# OpenAPI document: no server error, no undocumented status, no request the
# document allows refused (beyond the rules listed in schemathesis.toml).
if [ $# -eq 0 ]; then
  log "Fuzzing the REST API from its OpenAPI document (scripts/api-fuzz.sh)"
  bash scripts/api-fuzz.sh || status=$?
fi
exit $status
