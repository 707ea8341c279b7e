#!/usr/bin/env bash
# CI for the VS Code extension: install, typecheck, unit tests, package (.vsix: the esbuild bundle
# and the server bundled with its Python dependencies), and a start of the packaged server.
# With PAREX_VSCODE_E2E=1, also the end-to-end test in code-server (e2e/e2e.sh).
# Needs node 20, Python 3.11+ with pip, and the npm and PyPI registries; nothing else from the network.
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

step "package (vsce; vscode:prepublish bundles the extension and the server)"
rm -rf dist bundled parex.vsix
npx vsce package --no-dependencies --out parex.vsix </dev/null
# The package holds the bundle, the bundled server, the manifest, icon, README, CHANGELOG and
# license, and nothing of node_modules, no compiled Python and no native code.
python3 - parex.vsix <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ("extension/dist/extension.js", "extension/package.json", "extension/LICENSE.txt", "extension/readme.md",
        "extension/changelog.md", "extension/images/icon.png", "extension/images/vscode-run.png",
        "extension/bundled/libs/parex_lsp/__main__.py", "extension/bundled/libs/pygls/__init__.py")
missing = [n for n in need if n not in names]
extra = [n for n in names if "node_modules/" in n or "__pycache__" in n or n.endswith((".so", ".pyd", ".pyc"))
         or n.startswith("extension/bundled/libs/bin/")]
if missing or extra:
    sys.exit(f"parex.vsix: missing {missing}, unexpected {extra[:5]}")
print(f"parex.vsix: {len(names)} entries, {sum(n.startswith('extension/bundled/') for n in names)} of them the bundled server")
PY

step "the packaged server starts with a bare Python (PYTHONPATH = its bundled libs)"
unpacked=$(mktemp -d "${TMPDIR:-/tmp}/parex-vsix.XXXXXX")
trap 'rm -rf "$unpacked"' EXIT
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' parex.vsix "$unpacked"
(cd "$unpacked" && env -u VIRTUAL_ENV PYTHONPATH="$unpacked/extension/bundled/libs" python3 -s -m parex_lsp --version)

if [ "${PAREX_VSCODE_E2E:-}" = 1 ]; then
  step "end-to-end test (code-server + chromium)"
  bash e2e/e2e.sh
fi
step "done"
