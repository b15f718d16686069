#!/usr/bin/env bash
# Installs axe-core (pinned: version and the registry's sha512 integrity) from
# the npm registry into a cache directory when missing, and prints the path of
# its axe.min.js: the web console's accessibility test
# (crates/prism/tests/web_a11y.rs) injects that script into each page through
# the WebDriver session and runs its WCAG 2.1 A/AA rules. Nothing is fetched
# at build time; scripts/test.sh runs this once before the tests.
set -euo pipefail
version=4.14.1
integrity=sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
dir=${PRISM_AXE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/prism-axe-core-$version}
js=$dir/node_modules/axe-core/axe.min.js
lock=$dir/node_modules/.package-lock.json
if [ ! -s "$js" ] || ! grep -qF "$integrity" "$lock" 2>/dev/null; then
  command -v npm >/dev/null || {
    echo "Installing npm" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq npm >/dev/null
  }
  echo "Installing axe-core@$version into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-save --ignore-scripts "axe-core@$version" >&2
  # npm checked the tarball against the registry's integrity; check that it is the pinned one.
  grep -qF "$integrity" "$lock" || {
    echo "axe-core@$version does not have the pinned integrity $integrity" >&2
    exit 1
  }
fi
echo "$js"
