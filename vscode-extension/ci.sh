#!/usr/bin/env bash
# CI for the VS Code extension: install, typecheck, unit tests, bundle, package (.vsix).
# With PAREX_VSCODE_E2E=1, also the end-to-end test in code-server (e2e/e2e.sh).
# Needs node 20 and the npm registry; nothing else from the network.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

t0=$(date +%s)
step() { echo "== vscode-extension [$(( $(date +%s) - t0 ))s] $*"; }

step "npm ci"
npm ci --no-audit --no-fund --loglevel=error

step "typecheck (tsc --noEmit)"
npx tsc --noEmit -p .

step "unit tests (node --test)"
rm -rf out
node esbuild.mjs --tests
node --test out/test/

step "bundle (esbuild)"
rm -rf dist
node esbuild.mjs --production

step "package (vsce)"
rm -f parex.vsix
npx vsce package --no-dependencies --allow-missing-repository --out parex.vsix </dev/null
# The package must hold the bundle, the manifest and the license, and nothing of node_modules.
python3 - parex.vsix <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
missing = [n for n in ("extension/dist/extension.js", "extension/package.json", "extension/LICENSE.txt") if n not in names]
extra = [n for n in names if "node_modules/" in n]
if missing or extra:
    sys.exit(f"parex.vsix: missing {missing}, unexpected {extra[:5]}")
print(f"parex.vsix: {len(names)} entries: " + ", ".join(sorted(names)))
PY

if [ "${PAREX_VSCODE_E2E:-}" = 1 ]; then
  step "end-to-end test (code-server + chromium)"
  bash e2e/e2e.sh
fi
step "done"
