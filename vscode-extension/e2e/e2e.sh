#!/usr/bin/env bash
# End-to-end test of the extension in a real VS Code (code-server) driven through Chromium:
# installs the packaged .vsix, opens a workspace whose parex.toml has a passing and a failing
# shell task, runs "Run Parallel Tasks" from the command palette and checks what a user sees
# (progress, summary with speedup, task view, tagged output, the failure in the Problems panel,
# the task's log); then gives the workspace a model agent (a local OpenAI-compatible server,
# e2e/fake_model.py) and checks that a callN: fan-out opens its answers beside the editor.
# Between these: "Show Run Timeline" (a run's report in a webview), "Check Setup" on a healthy plan
# and on one whose agent is missing, and "Plan Parallel Tasks…" drafting from the model server (a
# valid draft after one round of feedback, and one whose problems are left as diagnostics).
# Then opens a second workspace, a git repository whose plan runs in worktrees with merge = "review":
# its two tasks end `ready`; a changed file's diff opens from the view; one task is accepted (merged
# into the base branch), the other retried with feedback, then rejected (its branch kept).
# Saves screenshots to vscode-extension/images/vscode-run.png and docs/img/vscode-review.png.
# Exit code = verdict.
#
# The extension runs as a person gets it: the server is the one bundled in the .vsix, started
# with python3 from PATH; there is no parex-lsp on code-server's PATH and no parex.serverCommand.
#
# Environment:
#   PAREX_E2E_CACHE      where code-server is installed once (default: ~/.cache/parex-e2e)
#   PAREX_E2E_SCREENSHOT where the screenshot goes (default: vscode-extension/images/vscode-run.png)
#   PAREX_E2E_REVIEW_SCREENSHOT  the diff editor of a ready task (default: docs/img/vscode-review.png)
#   PAREX_E2E_KEEP=1     keep the temporary workspace, profile and logs
#   PAREX_E2E_PYTHON     the Python that runs the fake model server (default: python3)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EXT=$(dirname "$HERE")
CACHE=${PAREX_E2E_CACHE:-$HOME/.cache/parex-e2e}
SCREENSHOT=${PAREX_E2E_SCREENSHOT:-$EXT/images/vscode-run.png}
REVIEW_SCREENSHOT=${PAREX_E2E_REVIEW_SCREENSHOT:-$(dirname "$EXT")/docs/img/vscode-review.png}
CODE_SERVER_VERSION=${CODE_SERVER_VERSION:-4.99.4}
CS_DIR=$CACHE/code-server-$CODE_SERVER_VERSION
ENTRY=$CS_DIR/node_modules/code-server/out/node/entry.js

t0=$(date +%s)
step() { echo "e2e [$(( $(date +%s) - t0 ))s] $*"; }
die() { echo "e2e: FAILED: $*" >&2; exit 1; }

# code-server's PATH: this one without any folder that holds a parex-lsp.
CS_PATH=
IFS=: read -r -a path_dirs <<< "$PATH"
for dir in "${path_dirs[@]}"; do
  [ -n "$dir" ] && [ ! -e "$dir/parex-lsp" ] && CS_PATH=${CS_PATH:+$CS_PATH:}$dir
done
if PATH=$CS_PATH command -v parex-lsp >/dev/null; then die "parex-lsp is still on code-server's PATH"; fi
PATH=$CS_PATH command -v python3 >/dev/null || die "no python3 on PATH: the bundled server needs Python 3.11+"

# 1. Chromium (Debian's) and code-server (from the npm registry), once.
if [ ! -x /usr/bin/chromium ]; then
  step "installing chromium"
  [ "$(id -u)" = 0 ] || die "/usr/bin/chromium is missing: apt-get install chromium"
  apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null
fi
if [ ! -f "$CS_DIR/.installed" ]; then
  step "installing code-server $CODE_SERVER_VERSION into $CS_DIR"
  rm -rf "$CS_DIR"
  CODE_SERVER_VERSION=$CODE_SERVER_VERSION bash "$HERE/install-code-server.sh" "$CS_DIR"
  touch "$CS_DIR/.installed"
else
  step "code-server $CODE_SERVER_VERSION found in $CS_DIR"
fi

# 2. The extension, packaged as users get it.
cd "$EXT"
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/@vscode/vsce ]; then
  step "npm ci"
  npm ci --no-audit --no-fund >/dev/null
fi
step "packaging the extension (with the server bundled)"
rm -f parex.vsix
npx vsce package --no-dependencies --out parex.vsix </dev/null >/dev/null
VSIX=$EXT/parex.vsix

# 3. A fresh profile, extensions folder and workspace.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/parex-e2e.XXXXXX")
CS_PID=
MODEL_PID=
cleanup() {
  if [ -n "$CS_PID" ]; then kill "$CS_PID" 2>/dev/null || true; wait "$CS_PID" 2>/dev/null || true; fi
  if [ -n "$MODEL_PID" ]; then kill "$MODEL_PID" 2>/dev/null || true; wait "$MODEL_PID" 2>/dev/null || true; fi
  if [ "${PAREX_E2E_KEEP:-}" = 1 ]; then echo "e2e: kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
USER_DATA=$TMP/user-data
EXTENSIONS=$TMP/extensions
WS=$TMP/workspace
mkdir -p "$USER_DATA/User" "$EXTENSIONS" "$WS/.vscode"
cat > "$USER_DATA/User/settings.json" <<'EOF'
{
  "security.workspace.trust.enabled": false,
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "extensions.ignoreRecommendations": true,
  "git.enabled": false,
  "window.zoomLevel": 0,
  "workbench.colorTheme": "Default Dark Modern"
}
EOF
cat > "$WS/parex.toml" <<'EOF'
[run]
max_concurrency = 2
call_agent = "shell"  # the callN: lines of notes.md are shell commands, by choice

[[task]]
id = "hello"
prompt = "echo hello from parex; sleep 2; echo hello done"

[[task]]
id = "broken"
prompt = "echo about to fail; sleep 2; echo giving up >&2; exit 3"
EOF
cat > "$WS/slow.parex.toml" <<'EOF'
[[task]]
id = "slow"
prompt = "echo waiting; sleep 60"
EOF
cat > "$WS/notes.md" <<'EOF'
# Notes

call1: echo one
call2: echo two
call3: exit 1
EOF
# callN: prompts for a model agent; the driver declares the agent in parex.toml once the shell
# checks are done (until then, callN: lines go to the shell).
cat > "$WS/answers.md" <<'EOF'
# Questions

call1: summarise what parex.toml declares
call2: name two risks of running tasks in parallel
call3: a question the model has no answer for
EOF
# "Check Setup" on a plan whose agent's executable is nowhere: the failing check.
cat > "$WS/ghost.parex.toml" <<'EOF2'
[agents.ghost]
command = ["parex-e2e-no-such-agent", "{prompt}"]

[[task]]
id = "haunt"
prompt = "boo"
agent = "ghost"
EOF2
# A file the server has no use for: it must never be sent to it.
printf 'print("recall1: not a call")\n' > "$WS/plain.py"
# No parex.serverCommand: the bundled server. The trace shows which documents the server is sent.
echo '{ "parex.trace.server": "verbose" }' > "$WS/.vscode/settings.json"

# The review workspace: a git repository, its plan run in worktrees and held for review.
REVIEW_WS=$TMP/review-workspace
mkdir -p "$REVIEW_WS/.vscode"
cat > "$REVIEW_WS/parex.toml" <<'EOF'
[run]
isolation = "worktree"
merge = "review"

[[task]]
id = "edit"
prompt = "printf 'hello\\nreviewed from VS Code\\n' > greeting.txt"

[[task]]
id = "note"
# A retry's feedback reaches the agent as $PAREX_FEEDBACK.
prompt = "echo \"${PAREX_FEEDBACK:-a first draft}\" > todo.md"
EOF
printf 'hello\n' > "$REVIEW_WS/greeting.txt"
echo '{ "parex.trace.server": "verbose" }' > "$REVIEW_WS/.vscode/settings.json"
git -C "$REVIEW_WS" init -q -b main
git -C "$REVIEW_WS" config user.name "parex e2e"
git -C "$REVIEW_WS" config user.email "e2e@parex.invalid"
git -C "$REVIEW_WS" add -A
git -C "$REVIEW_WS" commit -q -m "a greeting to review"

step "installing $(basename "$VSIX") into code-server"
node "$ENTRY" --user-data-dir "$USER_DATA" --extensions-dir "$EXTENSIONS" --install-extension "$VSIX" \
  > "$TMP/install.log" 2>&1 || { cat "$TMP/install.log" >&2; die "code-server --install-extension failed"; }
ls "$EXTENSIONS" | grep -q '^parex\.parex-' || { cat "$TMP/install.log" >&2; die "the extension is not in $EXTENSIONS"; }

# 4. The model server: tests/support/fake_openai.py on a free loopback port.
PY=${PAREX_E2E_PYTHON:-python3}
step "starting the fake model server ($PY e2e/fake_model.py)"
"$PY" "$HERE/fake_model.py" > "$TMP/model-url" 2> "$TMP/model.log" &
MODEL_PID=$!
MODEL_URL=
for _ in $(seq 1 100); do
  MODEL_URL=$(head -n 1 "$TMP/model-url" 2>/dev/null || true)
  [ -n "$MODEL_URL" ] && break
  kill -0 "$MODEL_PID" 2>/dev/null || { cat "$TMP/model.log" >&2; die "the fake model server exited"; }
  sleep 0.1
done
[ -n "$MODEL_URL" ] || { cat "$TMP/model.log" >&2; die "the fake model server did not say its URL"; }
step "fake model server at $MODEL_URL"

# 5. code-server on a free loopback port.
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
step "starting code-server on 127.0.0.1:$PORT"
PATH=$CS_PATH node "$ENTRY" --auth none --disable-telemetry --disable-update-check --disable-workspace-trust \
  --disable-getting-started-override --bind-addr "127.0.0.1:$PORT" \
  --user-data-dir "$USER_DATA" --extensions-dir "$EXTENSIONS" "$WS" > "$TMP/code-server.log" 2>&1 &
CS_PID=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$CS_PID" 2>/dev/null || { cat "$TMP/code-server.log" >&2; die "code-server exited"; }
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$TMP/code-server.log" >&2; die "code-server did not come up"; }

# 6. Drive it.
step "driving VS Code with chromium"
mkdir -p "$(dirname "$SCREENSHOT")" "$(dirname "$REVIEW_SCREENSHOT")"
status=0
E2E_REVIEW_URL="http://127.0.0.1:$PORT/?folder=$REVIEW_WS" E2E_REVIEW_WORKSPACE="$REVIEW_WS" E2E_REVIEW_SCREENSHOT="$REVIEW_SCREENSHOT" \
E2E_URL="http://127.0.0.1:$PORT/?folder=$WS" E2E_WORKSPACE="$WS" E2E_SCREENSHOT="$SCREENSHOT" E2E_MODEL_URL="$MODEL_URL" \
  E2E_ARTIFACTS="$TMP" E2E_USER_DATA="$USER_DATA" node "$HERE/driver.mjs" || status=$?
if [ "$status" != 0 ]; then
  echo "---- code-server log (tail)" >&2; tail -n 40 "$TMP/code-server.log" >&2
  for f in "$USER_DATA"/logs/*/exthost*/*parex*/*.log "$USER_DATA"/logs/*/exthost*/output_logging_*/*parex*.log; do
    [ -f "$f" ] && { echo "---- $f" >&2; tail -n 60 "$f" >&2; }
  done
  [ -f "$TMP/failure.png" ] && mkdir -p "$HERE/out" && cp "$TMP/failure.png" "$HERE/out/failure.png" && echo "e2e: screenshot of the failure: $HERE/out/failure.png" >&2
  die "the driver failed (exit $status)"
fi
step "passed; screenshots: $SCREENSHOT, $REVIEW_SCREENSHOT"
