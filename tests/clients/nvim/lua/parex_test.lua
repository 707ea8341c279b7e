-- Headless end-to-end test of the parex Neovim plugin against the real parex-lsp.
--
--   PAREX_TEST_WORKSPACE=<copy of tests/clients/nvim/workspace> \
--   PAREX_TEST_MODEL_WORKSPACE=<a workspace whose parex.toml declares a model agent> \
--   PAREX_TEST_MODEL_ANSWERS=<JSON {prompt: answer} the model server gives> \
--   nvim --headless -u tests/clients/nvim/minimal_init.lua -c "lua require('parex_test').run()"
--
-- Prints "ok - ..." lines on stdout; exits 0 when every check passed, 1 (with the reason on
-- stderr) otherwise. PAREX_LSP_CMD (a JSON list or a space-separated command) picks the server.
local M = {}

local TIMEOUT_START = 30000
local TIMEOUT_RUN = 90000
local TIMEOUT_SMALL = 15000

local H = require("parex_headless")
local notifications = H.notifications
local out, check, server_cmd = H.out, H.check, H.server_cmd

local function wait(ms, cond, what)
  local ok = vim.wait(ms, cond, 50)
  check(ok, "timed out after " .. ms .. " ms waiting for " .. what)
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

local function index_of_notice(pattern, from)
  for i = from or 1, #notifications do
    if notifications[i].msg:match(pattern) then
      return i
    end
  end
  return nil
end

local function status_buffer_text()
  local b = vim.fn.bufnr("parex://status")
  if b == -1 then
    return ""
  end
  return table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), "\n")
end

-- Never a hit-enter prompt: every notice is one line that fits the message area.
local function check_notices_fit()
  local space = vim.v.echospace
  for _, n in ipairs(notifications) do
    check(not n.msg:find("\n"), "a notice of more than one line: " .. vim.inspect(n.msg))
    check(vim.fn.strdisplaywidth(n.msg) <= space, string.format("a notice wider than the %d cells of the message line: %s", space, n.msg))
  end
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

-- The plugin's default command is the workspace's .venv/bin/parex-lsp: make one that runs
-- the server under test (setup() gets no cmd).
local function make_venv_server(dir)
  local venv_server = dir .. "/.venv/bin/parex-lsp"
  vim.fn.mkdir(dir .. "/.venv/bin", "p")
  local words = {}
  for _, word in ipairs(server_cmd()) do
    if word ~= "--stdio" then
      table.insert(words, vim.fn.shellescape(word))
    end
  end
  vim.fn.writefile({ "#!/bin/sh", "exec " .. table.concat(words, " ") .. ' "$@"' }, venv_server)
  vim.fn.setfperm(venv_server, "rwxr-xr-x")
  return venv_server
end

local function answers_windows()
  local found = {}
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    local name = vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win))
    if name:find("parex://answers/", 1, true) then
      table.insert(found, win)
    end
  end
  return found
end

local function answers_buffers()
  local found = {}
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(b):find("parex://answers/", 1, true) then
      table.insert(found, b)
    end
  end
  return found
end

-- The entries of a list of `n` that are not false, in order.
local function present(list, n)
  local out = {}
  for i = 1, n do
    if list[i] then
      table.insert(out, list[i])
    end
  end
  return out
end

-- The index of the first of `lines` equal to `wanted` at or after `from`, or nil.
local function index_of(lines, wanted, from)
  for i = from or 1, #lines do
    if lines[i] == wanted then
      return i
    end
  end
  return nil
end

local function model_fan_out(parex, mws, model_answers)
  local calls_path = mws .. "/calls.md"
  make_venv_server(mws)

  -- Runs without answers (all the shell runs above) open nothing; :ParexAnswers says so.
  check(#answers_buffers() == 0, "an answers buffer after runs without model answers")
  local before = #notifications
  vim.cmd("ParexAnswers")
  local said = false
  for i = before + 1, #notifications do
    said = said or notifications[i].msg:match("^parex: no answers yet") ~= nil
  end
  check(said and #answers_windows() == 0, ":ParexAnswers before any answers: " .. vim.inspect(notifications[#notifications]))

  vim.cmd("silent! only")
  vim.cmd("edit " .. vim.fn.fnameescape(calls_path))
  local calls_win = vim.api.nvim_get_current_win()
  local calls_buf = vim.api.nvim_get_current_buf()
  local previous = parex._state.last and parex._state.last.result.runId
  local result = run_and_wait(parex, "ParexRun", previous)
  local c1, c2, c3 = task_of(result, "call1"), task_of(result, "call2"), task_of(result, "call3")
  check(c1 and c1.status == "succeeded" and c1.answer == model_answers["summarise what the good task prints"],
    "call1: " .. vim.inspect(c1))
  check(c2 and c2.status == "succeeded" and c2.answer == model_answers["list two risks of"], "call2: " .. vim.inspect(c2))
  check(c3 and c3.status == "failed" and c3.code == "api-error", "call3: " .. vim.inspect(c3))
  out("ok - :ParexRun on calls.md: call1 and call2 answered by the model agent, call3 failed (api-error)")

  -- The answers buffer, beside calls.md; the cursor stays in calls.md.
  local wins = answers_windows()
  check(#wins == 1, "answers windows: " .. #wins .. " " .. vim.inspect(vim.fn.winlayout()))
  local win = wins[1]
  local buf = vim.api.nvim_win_get_buf(win)
  local name = vim.api.nvim_buf_get_name(buf)
  check(name == "parex://answers/" .. result.runId, "answers buffer name: " .. name)
  check(vim.bo[buf].filetype == "markdown", "filetype: " .. vim.bo[buf].filetype)
  check(vim.bo[buf].buftype == "nofile", "buftype: " .. vim.bo[buf].buftype)
  check(not vim.bo[buf].modifiable and not vim.bo[buf].modified, "the answers buffer is modifiable or modified")
  local layout = vim.fn.winlayout()
  check(layout[1] == "row" and #layout[2] == 2, "not a vertical split: " .. vim.inspect(layout))
  check(vim.api.nvim_get_current_win() == calls_win and vim.api.nvim_get_current_buf() == calls_buf,
    "the cursor left calls.md")

  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local text = table.concat(lines, "\n")
  -- Prompts come from the server (runStarted's data.tasks), never from re-reading calls.md:
  -- quoted when the server named them, absent when it did not.
  local run = parex._state.runs.runs[result.runId]
  local named = run and run.tasks.call1 and run.tasks.call1.prompt ~= nil
  local function prompt(line)
    return named and line or nil
  end
  if not named then
    for _, line in ipairs(lines) do
      check(not line:match("^>"), "a quoted prompt the server did not name: " .. line)
    end
  end
  check(lines[1] == "# parex answers — " .. result.runId, "title line: " .. tostring(lines[1]))
  check(lines[3]:find("calls.md: call1, call2, call3", 1, true) and lines[3]:find("2 succeeded, 1 failed", 1, true)
    and lines[3]:find("24 prompt + 16 completion tokens", 1, true), "summary line: " .. tostring(lines[3]))
  local expected = {}
  for _, line in ipairs({
    "## call1",
    prompt("> summarise what the good task prints") or false,
    model_answers["summarise what the good task prints"],
    "*12 prompt + 8 completion tokens*",
    "## call2",
    prompt("> list two risks of") or false,
    prompt("> running tasks in parallel") or false,
    model_answers["list two risks of"],
    "*12 prompt + 8 completion tokens*",
    "## call3",
    prompt("> a question the model server has no answer for") or false,
  }) do
    if line then
      table.insert(expected, line)
    end
  end
  local at = 1
  for _, wanted in ipairs(expected) do
    local i = index_of(lines, wanted, at)
    check(i ~= nil, "the answers buffer lacks " .. vim.inspect(wanted) .. " (in order) in:\n" .. text)
    at = i + 1
  end
  local failure = lines[at + 1] or ""
  check(failure:match("^%*%*failed%*%* %(api%-error%): HTTP 400") ~= nil, "call3's failure line: " .. vim.inspect(failure) .. "\n" .. text)
  out("ok - answers buffer parex://answers/" .. result.runId .. " (markdown, nofile, vertical split): both answers, usage, call3's error, "
    .. (named and "the prompts the server named" or "no prompts (the server named none)"))

  -- :ParexAnswers brings it back once its window is closed, and moves the cursor there.
  vim.api.nvim_win_close(win, true)
  check(#answers_windows() == 0, "the answers window did not close")
  vim.cmd("ParexAnswers")
  wins = answers_windows()
  check(#wins == 1 and vim.api.nvim_get_current_win() == wins[1], ":ParexAnswers did not show the answers: " .. vim.inspect(vim.fn.winlayout()))
  check(vim.api.nvim_win_get_buf(wins[1]) == buf, ":ParexAnswers showed another buffer")
  check(vim.fn.winlayout()[1] == "row", ":ParexAnswers did not split vertically")
  check(table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n") == text, "the reopened answers differ")
  -- Again while shown: no second window.
  vim.cmd("wincmd p")
  vim.cmd("ParexAnswers")
  check(#answers_windows() == 1, "a second answers window")
  out("ok - :ParexAnswers reopened the last run's answers")

  -- A resume of the fan-out: call3 runs again (and fails again); call1 and call2 are kept,
  -- and the server sends their answers again, marked as kept from the run before.
  vim.api.nvim_set_current_win(calls_win)
  vim.cmd("silent! only")
  local first = result.runId
  parex.run({ params = { resume = first } })
  wait(TIMEOUT_RUN, function()
    return parex._state.last.result.runId ~= first
  end, "the RunResult of the resumed run")
  local resumed = parex._state.last.result
  local k1, k3 = task_of(resumed, "call1"), task_of(resumed, "call3")
  check(k1 and k1.reusedFrom == first and k1.answer == model_answers["summarise what the good task prints"],
    "call1 of the resumed run: " .. vim.inspect(k1))
  check(k3 and k3.status == "failed", "call3 of the resumed run: " .. vim.inspect(k3))
  wins = answers_windows()
  check(#wins == 1, "answers windows after the resume: " .. #wins)
  local rbuf = vim.api.nvim_win_get_buf(wins[1])
  check(vim.api.nvim_buf_get_name(rbuf) == "parex://answers/" .. resumed.runId, "answers buffer of the resume: " .. vim.api.nvim_buf_get_name(rbuf))
  lines = vim.api.nvim_buf_get_lines(rbuf, 0, -1, false)
  text = table.concat(lines, "\n")
  at = 1
  local resumed_run = parex._state.runs.runs[resumed.runId]
  local named_again = resumed_run and resumed_run.tasks.call1 and resumed_run.tasks.call1.prompt ~= nil
  for _, wanted in ipairs(present({
    "## call1",
    named_again and "> summarise what the good task prints",
    "_kept from run " .. first .. "_",
    model_answers["summarise what the good task prints"],
    "## call2",
    "_kept from run " .. first .. "_",
    model_answers["list two risks of"],
    "## call3",
  }, 8)) do
    local i = index_of(lines, wanted, at)
    check(i ~= nil, "the resumed run's answers lack " .. vim.inspect(wanted) .. " (in order) in:\n" .. text)
    at = i + 1
  end
  check(lines[3]:find("2 succeeded, 1 failed", 1, true) and not lines[3]:find("tokens", 1, true),
    "summary of the resumed run (no tokens were used): " .. tostring(lines[3]))
  out("ok - a resume of the fan-out shows the kept calls' answers from run " .. first)
  vim.cmd("silent! only")
end

local function test(ws, mws, model_answers)
  local plan_path = ws .. "/parex.toml"
  local notes_path = ws .. "/notes.md"
  local bad_line = line_of(plan_path, '^%s*id%s*=%s*"bad"')
  local call2_line = line_of(notes_path, "^call2:")
  local venv_server = make_venv_server(ws)

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
  local first_run = result.runId
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
  check(notified("^parex: run failed: 1 succeeded, 1 failed, %d"), "no one-line run summary notification")
  out("ok - progress begin/end for each task, notified, with a run summary")

  -- 4. The failed task is in the quickfix list, at its line of the plan.
  local item = qf_entry("bad")
  check(item ~= nil, "no quickfix entry for bad: " .. vim.inspect(vim.fn.getqflist()))
  check(real(vim.api.nvim_buf_get_name(item.bufnr)) == real(plan_path), "quickfix entry is not on parex.toml")
  check(item.lnum == bad_line + 1, string.format("quickfix lnum %d, expected %d", item.lnum, bad_line + 1))
  check(item.type == "E", "quickfix entry type " .. tostring(item.type))
  check(qf_entry("good") == nil, "a quickfix entry for the task that succeeded")
  out("ok - quickfix entry for bad at parex.toml:" .. (bad_line + 1))

  -- 4b. The path:line:col error that bad printed is in the quickfix list too, at that place.
  local complaint
  for _, qf in ipairs(vim.fn.getqflist()) do
    if qf.text == "bad: bad-task complaint" then
      complaint = qf
    end
  end
  check(complaint ~= nil, "no quickfix entry for bad's notes.md:3:1 line: " .. vim.inspect(vim.fn.getqflist()))
  check(real(vim.api.nvim_buf_get_name(complaint.bufnr)) == real(notes_path) and complaint.lnum == 3 and complaint.col == 1,
    "bad's complaint is not at notes.md:3:1: " .. vim.inspect(complaint))
  out("ok - output error notes.md:3:1 of bad in the quickfix list")

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
  vim.cmd("silent! only")

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
    local run = parex._state.runs.runs[parex._state.runs.current]
    if run and run.plan and run.plan:match("slow%.parex%.toml$") and run.tasks.slow3 then
      for _, id in ipairs({ "slow", "slow2", "slow3" }) do
        if run.tasks[id].status ~= "running" then
          return false
        end
      end
      slow_run = run.id
      return true
    end
    return false
  end, "the three slow tasks to start")
  -- The statusline counts what parex/taskEvent said: all three started, none ended.
  local running = parex.statusline()
  check(running == "parex: 0/3 (3 running)", "statusline while slow runs: " .. running)
  vim.cmd("ParexStatus")
  local status_text = ""
  wait(TIMEOUT_SMALL, function()
    status_text = status_buffer_text()
    return status_text:find("run " .. slow_run .. ": running", 1, true) ~= nil
      and status_text:find("slow running", 1, true) ~= nil
  end, ":ParexStatus to list the live slow run (have: " .. status_text .. ")")
  vim.cmd("silent! only")
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
  -- In order: each task's start before the news of its cancel.
  local started_at, cancelled_at = index_of_notice("^parex: slow3 started$"), index_of_notice("^parex: cancelled ")
  check(started_at and cancelled_at and started_at < cancelled_at,
    string.format("notices out of order: 'slow3 started' at %s, 'cancelled' at %s", tostring(started_at), tostring(cancelled_at)))
  for i = cancelled_at + 1, #notifications do
    check(not notifications[i].msg:match("^parex: slow%d? started"), "a start told after the cancel: " .. notifications[i].msg)
  end
  out("ok - :ParexRun slow.parex.toml, statusline '" .. running .. "', :ParexStatus listed it, :ParexCancel cancelled it")

  -- 10. :ParexStatus answers: no live runs now, the runs seen here with their whole summaries.
  vim.cmd("ParexStatus")
  wait(TIMEOUT_SMALL, function()
    status_text = status_buffer_text()
    return status_text:find("no live runs", 1, true) ~= nil
  end, ":ParexStatus to answer (have: " .. status_text .. ")")
  check(status_text:find("run " .. slow_run .. " cancelled: ", 1, true), "no summary of the slow run in:\n" .. status_text)
  check(status_text:find("run " .. first_run .. " failed: 1 succeeded, 1 failed; wall ", 1, true),
    "no whole summary of the first run in:\n" .. status_text)
  vim.cmd("silent! only")
  out("ok - :ParexStatus answered")

  -- 10b. A plan with two problems: one line, the problems in the quickfix list and in full
  -- behind :ParexStatus.
  local broken = ws .. "/broken.parex.toml"
  local before = #notifications
  vim.cmd("ParexRun " .. vim.fn.fnameescape(broken))
  wait(TIMEOUT_SMALL, function()
    return index_of_notice("^parex: plan not run: ", before + 1) ~= nil
  end, "the notice that broken.parex.toml was not run")
  local notice = notifications[index_of_notice("^parex: plan not run: ", before + 1)].msg
  check(notice:match("^parex: plan not run: 2 problems, first: ") ~= nil, "invalid plan notice: " .. notice)
  wait(TIMEOUT_SMALL, function()
    return #vim.fn.getqflist() >= 2 and vim.fn.getqflist({ title = 0 }).title == "parex: invalid plan"
  end, "two problems of broken.parex.toml in the quickfix list: " .. vim.inspect(vim.fn.getqflist()))
  vim.cmd("ParexStatus")
  wait(TIMEOUT_SMALL, function()
    status_text = status_buffer_text()
    return status_text:find("duplicate", 1, true) ~= nil and status_text:find("missing", 1, true) ~= nil
  end, "both problems in full in :ParexStatus (have: " .. status_text .. ")")
  vim.cmd("silent! only")
  out("ok - invalid plan: one-line notice, both problems in the quickfix list and in :ParexStatus")

  -- 10c. :checkhealth parex.
  vim.cmd("edit " .. vim.fn.fnameescape(plan_path))
  vim.cmd("checkhealth parex")
  local health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  check(health:find("server command: " .. venv_server, 1, true), "checkhealth: no server command:\n" .. health)
  check(health:find("(initialized)", 1, true), "checkhealth: no running client:\n" .. health)
  check(health:find("setup() ran", 1, true), "checkhealth: setup:\n" .. health)
  check(not health:find("ERROR") and not health:find("Failed to run"), "checkhealth reported an error:\n" .. health)
  vim.cmd("tabclose")
  out("ok - :checkhealth parex")

  -- 11. callN: lines of a workspace with a model agent: the answers side by side.
  model_fan_out(parex, mws, model_answers)

  check_notices_fit()
  out("ok - every notice one line within the message area (" .. #notifications .. " notices, " .. vim.v.echospace .. " cells)")
end

function M.run()
  H.main(function()
    test(H.dir_env("PAREX_TEST_WORKSPACE"), H.dir_env("PAREX_TEST_MODEL_WORKSPACE"),
      vim.fn.json_decode(os.getenv("PAREX_TEST_MODEL_ANSWERS") or "{}"))
  end)
end

return M
