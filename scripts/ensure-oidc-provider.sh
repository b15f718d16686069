#!/usr/bin/env bash
# Installs oidc-provider (panva's certified OpenID Connect provider; pinned:
# version and the registry's sha512 integrity) with its dependencies from the
# npm registry into a cache directory when missing, and prints that directory
# (its node_modules holds the package): the single sign-on tests run it as a
# real OpenID Connect provider (crates/test-support/src/oidc.rs starts
# crates/test-support/src/oidc_provider.mjs with node). Nothing is fetched at
# build time; scripts/test.sh runs this once before the tests.
set -euo pipefail
version=9.13.3
integrity=sha512-WmNDX9dLeItBmIqGqspmX5u6Cc7VVMrKUw2InX2T16+bwUJ8m/N5rJ3Ed+YKxE5aZqLp4YqwEi6kMJx4Ui5ffw==
dir=${PRISM_OIDC_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/prism-oidc-provider-$version}
pkg=$dir/node_modules/oidc-provider/package.json
lock=$dir/node_modules/.package-lock.json
if [ ! -s "$pkg" ] || ! grep -qF "$integrity" "$lock" 2>/dev/null; then
  command -v npm >/dev/null || {
    echo "Installing npm" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq npm >/dev/null
  }
  echo "Installing oidc-provider@$version into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-save --ignore-scripts "oidc-provider@$version" >&2
  # npm checked the tarball against the registry's integrity; check that it is the pinned one.
  grep -qF "$integrity" "$lock" || {
    echo "oidc-provider@$version does not have the pinned integrity $integrity" >&2
    exit 1
  }
fi
echo "$dir"
