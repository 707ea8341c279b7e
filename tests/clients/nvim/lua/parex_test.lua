-- Headless end-to-end test of the parex Neovim plugin against the real parex-lsp.
--
--   PAREX_TEST_WORKSPACE=<copy of tests/clients/nvim/workspace> \
--   nvim --headless -u tests/clients/nvim/minimal_init.lua -c "lua require('parex_test').run()"
--
-- Prints "ok - ..." lines on stdout; exits 0 when every check passed, 1 (with the reason on
-- stderr) otherwise. PAREX_LSP_CMD (a JSON list or a space-separated command) picks the server.
local M = {}

local TIMEOUT_START = 30000
local TIMEOUT_RUN = 90000
local TIMEOUT_SMALL = 15000

local notifications = {}

local function out(line)
  io.stdout:write(line .. "\n")
  io.stdout:flush()
end

local Failure = {}

local function check(cond, msg)
  if not cond then
    error(setmetatable({ msg = msg }, Failure), 2)
  end
end

local function wait(ms, cond, what)
  local ok = vim.wait(ms, cond, 50)
  check(ok, "timed out after " .. ms .. " ms waiting for " .. what)
end

local function split_cmd(s)
  if s:match("^%s*%[") then
    return vim.fn.json_decode(s)
  end
  local cmd = {}
  for word in s:gmatch("%S+") do
    table.insert(cmd, word)
  end
  return cmd
end

local function server_cmd()
  local env = os.getenv("PAREX_LSP_CMD")
  if env and env ~= "" then
    return split_cmd(env)
  end
  return { vim.g.parex_test_repo .. "/.venv/bin/parex-lsp", "--stdio" }
end

local function real(path)
  return vim.fn.resolve(vim.fn.fnamemodify(path, ":p"))
end

-- Zero-based line of the first line of `path` that matches `pattern` (found here,
-- independently of the plugin).
local function line_of(path, pattern)
  for i, line in ipairs(vim.fn.readfile(path)) do
    if line:match(pattern) then
      return i - 1
    end
  end
  error("no line matches " .. pattern .. " in " .. path)
end

local function notified(pattern)
  for _, n in ipairs(notifications) do
    if n.msg:match(pattern) then
      return n
    end
  end
  return nil
end

local function task_of(result, id)
  for _, t in ipairs(result.tasks or {}) do
    if t.id == id then
      return t
    end
  end
  return nil
end

local function qf_entry(prefix)
  for _, item in ipairs(vim.fn.getqflist()) do
    if vim.startswith(item.text, prefix .. " ") then
      return item
    end
  end
  return nil
end

local function parex_diagnostic(bufnr, lnum)
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    if d.lnum == lnum and d.source == "parex" and d.severity == vim.diagnostic.severity.ERROR then
      return d
    end
  end
  return nil
end

local function describe_diagnostics(bufnr)
  local parts = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(parts, string.format("%d:%s:%s:%s", d.lnum, tostring(d.source), tostring(d.severity), d.message))
  end
  return table.concat(parts, " | ")
end

-- Run the plan (or range) with `command` and wait for a RunResult other than `previous`.
local function run_and_wait(parex, command, previous)
  vim.cmd(command)
  wait(TIMEOUT_RUN, function()
    local last = parex._state.last
    return last ~= nil and last.result.runId ~= previous
  end, "the RunResult of " .. command)
  return parex._state.last.result
end

local function test(ws)
  local plan_path = ws .. "/parex.toml"
  local notes_path = ws .. "/notes.md"
  local bad_line = line_of(plan_path, '^%s*id%s*=%s*"bad"')
  local call2_line = line_of(notes_path, "^call2:")

  -- The plugin's default command is the workspace's .venv/bin/parex-lsp: make one that
  -- runs the server under test, and give setup() no cmd.
  local venv_server = ws .. "/.venv/bin/parex-lsp"
  vim.fn.mkdir(ws .. "/.venv/bin", "p")
  local words = {}
  for _, word in ipairs(server_cmd()) do
    if word ~= "--stdio" then
      table.insert(words, vim.fn.shellescape(word))
    end
  end
  vim.fn.writefile({ "#!/bin/sh", "exec " .. table.concat(words, " ") .. ' "$@"' }, venv_server)
  vim.fn.setfperm(venv_server, "rwxr-xr-x")

  local parex = require("parex")
  parex.setup({})

  -- 1. Opening the plan starts the server and attaches the buffer.
  vim.cmd("edit " .. vim.fn.fnameescape(plan_path))
  local plan_buf = vim.api.nvim_get_current_buf()
  wait(TIMEOUT_START, function()
    for id in pairs(parex._state.ready) do
      if vim.lsp.buf_is_attached(plan_buf, id) then
        return true
      end
    end
    return false
  end, "parex-lsp to start and attach to parex.toml")
  local client = vim.lsp.get_client_by_id(next(parex._state.ready))
  check(client.config.cmd[1] == venv_server, "server command: " .. vim.inspect(client.config.cmd))
  out("ok - parex-lsp started from the workspace's .venv and attached to the plan buffer")

  -- 2. :ParexRun on the plan file.
  local result = run_and_wait(parex, "ParexRun", nil)
  check(result.status == "failed", "run status: expected failed, got " .. tostring(result.status))
  local good, bad = task_of(result, "good"), task_of(result, "bad")
  check(good and good.status == "succeeded", "task good: " .. vim.inspect(good))
  check(bad and bad.status == "failed", "task bad: " .. vim.inspect(bad))
  check(type(result.speedup) == "number" and type(result.wallMs) == "number", "RunResult lacks wallMs/speedup")
  out("ok - :ParexRun returned the RunResult (good succeeded, bad failed)")

  -- 3. Progress: begin and end on each task's token, shown as notifications.
  for _, id in ipairs({ "good", "bad" }) do
    local token = "parex/" .. result.runId .. "/" .. id
    wait(TIMEOUT_SMALL, function()
      local k = parex._state.progress[token]
      return k ~= nil and k[#k] == "end"
    end, "$/progress begin..end on " .. token)
    local kinds = parex._state.progress[token]
    check(kinds[1] == "begin", "first progress on " .. token .. " is " .. tostring(kinds[1]))
    check(kinds[#kinds] == "end", "last progress on " .. token .. " is " .. tostring(kinds[#kinds]))
    check(notified("^parex: " .. id .. " started$"), "no 'started' notification for " .. id)
  end
  check(notified("^parex: good succeeded"), "no 'succeeded' notification for good")
  local bad_end = notified("^parex: bad failed")
  check(bad_end and bad_end.level == vim.log.levels.ERROR, "no error notification 'bad failed'")
  check(notified("^parex: run " .. vim.pesc(result.runId) .. " failed: .*speedup"), "no run summary notification")
  out("ok - progress begin/end for each task, notified, with a run summary")

  -- 4. The failed task is in the quickfix list, at its line of the plan.
  local item = qf_entry("bad")
  check(item ~= nil, "no quickfix entry for bad: " .. vim.inspect(vim.fn.getqflist()))
  check(real(vim.api.nvim_buf_get_name(item.bufnr)) == real(plan_path), "quickfix entry is not on parex.toml")
  check(item.lnum == bad_line + 1, string.format("quickfix lnum %d, expected %d", item.lnum, bad_line + 1))
  check(item.type == "E", "quickfix entry type " .. tostring(item.type))
  check(qf_entry("good") == nil, "a quickfix entry for the task that succeeded")
  out("ok - quickfix entry for bad at parex.toml:" .. (bad_line + 1))

  -- 5. The server's diagnostic is on the plan buffer at the failed task's id line.
  wait(TIMEOUT_SMALL, function()
    return parex_diagnostic(plan_buf, bad_line) ~= nil
  end, "a parex diagnostic at line " .. bad_line .. " (have: " .. describe_diagnostics(plan_buf) .. ")")
  out("ok - diagnostic (source parex, Error) on parex.toml line " .. (bad_line + 1))

  -- 6. The statusline tells the outcome.
  local status = parex.statusline()
  check(status:match("failed") ~= nil, "statusline: " .. status)
  out("ok - statusline: " .. status)

  -- 7. :ParexLog opens the failed task's log.
  vim.cmd("ParexLog bad")
  local log_buf
  wait(TIMEOUT_SMALL, function()
    for _, win in ipairs(vim.api.nvim_list_wins()) do
      local b = vim.api.nvim_win_get_buf(win)
      if vim.api.nvim_buf_get_name(b):match("bad%.log$") then
        log_buf = b
        return true
      end
    end
    return false
  end, ":ParexLog bad to show bad.log in a window")
  local log_text = table.concat(vim.api.nvim_buf_get_lines(log_buf, 0, -1, false), "\n")
  check(log_text:find("bad-task-output-marker", 1, true), "bad.log lacks the task's output: " .. log_text)
  check(#vim.api.nvim_list_wins() == 2, "expected the log in a split, have " .. vim.inspect(vim.fn.winlayout()) .. vim.inspect(vim.tbl_map(function(w) return vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(w)) end, vim.api.nvim_list_wins())) .. vim.inspect(vim.fn.tabpagenr("$")))
  out("ok - :ParexLog bad opened the task's log")
  vim.cmd("only")

  -- 8. callN: lines of another file, as a range.
  vim.cmd("edit " .. vim.fn.fnameescape(notes_path))
  local notes_buf = vim.api.nvim_get_current_buf()
  local first = line_of(notes_path, "^call1:") + 1
  result = run_and_wait(parex, first .. "," .. (call2_line + 1) .. "ParexRun", result.runId)
  check(result.status == "failed", "call run status: " .. tostring(result.status))
  check(#result.tasks == 2, "call run: expected 2 tasks, got " .. #result.tasks)
  local c1, c2 = task_of(result, "call1"), task_of(result, "call2")
  check(c1 and c1.status == "succeeded", "call1: " .. vim.inspect(c1))
  check(c2 and c2.status == "failed", "call2: " .. vim.inspect(c2))
  item = qf_entry("call2")
  check(item ~= nil, "no quickfix entry for call2: " .. vim.inspect(vim.fn.getqflist()))
  check(real(vim.api.nvim_buf_get_name(item.bufnr)) == real(notes_path), "call2 quickfix entry is not on notes.md")
  check(item.lnum == call2_line + 1, string.format("call2 quickfix lnum %d, expected %d", item.lnum, call2_line + 1))
  wait(TIMEOUT_SMALL, function()
    return parex_diagnostic(notes_buf, call2_line) ~= nil
  end, "a parex diagnostic on notes.md line " .. call2_line .. " (have: " .. describe_diagnostics(notes_buf) .. ")")
  out("ok - callN: range run: call2 failed, in the quickfix list and diagnosed at notes.md:" .. (call2_line + 1))

  -- 9. :ParexRun {plan} on another plan of the workspace, then :ParexCancel while it runs.
  vim.cmd("edit " .. vim.fn.fnameescape(plan_path))
  local previous = result.runId
  vim.cmd("ParexRun " .. vim.fn.fnameescape(ws .. "/slow.parex.toml"))
  local slow_run
  wait(TIMEOUT_START, function()
    for token, kinds in pairs(parex._state.progress) do
      local run_id = token:match("^parex/(.+)/slow$")
      if run_id and kinds[1] == "begin" then
        slow_run = run_id
        return true
      end
    end
    return false
  end, "the slow task to start")
  local running = parex.statusline()
  check(running:match("1 running") ~= nil, "statusline while slow runs: " .. running)
  local before_status = #notifications
  vim.cmd("ParexStatus")
  wait(TIMEOUT_SMALL, function()
    for i = before_status + 1, #notifications do
      local msg = notifications[i].msg
      if msg:find("run " .. slow_run .. ": running", 1, true) and msg:find("slow running", 1, true) then
        return true
      end
    end
    return false
  end, ":ParexStatus to list the live slow run")
  vim.cmd("ParexCancel")
  wait(TIMEOUT_SMALL, function()
    local last = parex._state.last
    return last ~= nil and last.result.runId ~= previous
  end, "the cancelled run to end")
  result = parex._state.last.result
  check(result.runId == slow_run, "RunResult is for run " .. tostring(result.runId) .. ", not " .. slow_run)
  check(result.status == "cancelled", "slow run status: " .. tostring(result.status))
  local slow = task_of(result, "slow")
  check(slow and slow.status == "cancelled", "task slow: " .. vim.inspect(slow))
  out("ok - :ParexRun slow.parex.toml, statusline '" .. running .. "', :ParexStatus listed it, :ParexCancel cancelled it")

  -- 10. :ParexStatus answers.
  local before = #notifications
  vim.cmd("ParexStatus")
  wait(TIMEOUT_SMALL, function()
    for i = before + 1, #notifications do
      if notifications[i].msg:match("^parex: .*run") and notifications[i].level ~= vim.log.levels.ERROR then
        return true
      end
    end
    return false
  end, ":ParexStatus to answer")
  out("ok - :ParexStatus answered")
end

function M.run()
  local orig_notify = vim.notify
  vim.notify = function(msg, level, opts)
    table.insert(notifications, { msg = tostring(msg), level = level or vim.log.levels.INFO })
    io.stdout:write("  notify[" .. tostring(level) .. "] " .. tostring(msg):gsub("\n", "\n    ") .. "\n")
    return orig_notify(msg, level, opts)
  end

  local ws = os.getenv("PAREX_TEST_WORKSPACE")
  local ok, err = xpcall(function()
    check(ws and ws ~= "" and vim.fn.isdirectory(ws) == 1, "PAREX_TEST_WORKSPACE is not a directory: " .. tostring(ws))
    test((vim.fn.fnamemodify(ws, ":p"):gsub("/$", "")))
  end, function(e)
    if getmetatable(e) == Failure then
      return e.msg
    end
    return debug.traceback(tostring(e), 2)
  end)

  if ok then
    out("ok - all checks passed")
    vim.cmd("qa!")
  else
    io.stderr:write("FAIL: " .. tostring(err) .. "\n")
    io.stderr:flush()
    vim.cmd("cquit 1")
  end
end

return M
