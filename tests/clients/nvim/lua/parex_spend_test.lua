-- Headless test of what the plugin shows of a model run's spend and warnings, against the real
-- parex-lsp and a local OpenAI stand-in (PAREX_TEST_WORKSPACE, made by test_nvim_spend.py):
-- parex.toml spends 12.3k tokens of a 20k budget, truncated.parex.toml gets an answer cut at
-- its length limit, limited.parex.toml's agent is rate limited for 3 seconds. Prints "ok - ..." lines; exits 0 when every check passed, 1 otherwise.
local M = {}
local h = require("parex_headless")
local out, check, wait, server_cmd = h.out, h.check, h.wait, h.server_cmd
local notifications = h.notifications -- every vim.notify of the test, filled by h.main

local function status_text()
  local bufnr = vim.fn.bufnr("parex://status")
  if bufnr == -1 then
    return ""
  end
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
end

local function show_status(want)
  vim.cmd("ParexStatus")
  local text = ""
  vim.wait(h.TIMEOUT, function()
    text = status_text()
    return text:find(want, 1, true) ~= nil
  end, 20)
  check(text:find(want, 1, true), ":ParexStatus does not show " .. vim.inspect(want) .. "; it shows:\n" .. text)
  vim.cmd("silent! only")
  return text
end

local function test(ws)
  local parex = require("parex")
  -- Task news off: warnings are told all the same.
  parex.setup({ cmd = server_cmd(), open_answers = false, notify_tasks = false })
  local function current()
    return parex._state.runs.runs[parex._state.runs.current]
  end

  -- 1. The spend while the run goes on: the model's first turn (a tool call) spent 12.3k tokens,
  -- its second turn is slow to come.
  vim.cmd("edit " .. vim.fn.fnameescape(ws .. "/parex.toml"))
  parex.run({})
  local seen
  wait(function()
    local run = current()
    seen = parex.statusline()
    return run and not run.result and seen:find("tok", 1, true) ~= nil
  end, "the statusline to show the spend while ask runs (have: " .. tostring(seen) .. ")")
  check(seen == "parex: 0/1 (1 running) · 12.3k tok of 20k", "statusline while ask runs: " .. seen)
  out("ok - statusline while the run goes on: " .. seen)

  wait(function()
    local last = parex._state.last
    return last ~= nil and last.result.status ~= nil
  end, "the budgeted run to end")
  local result = parex._state.last.result
  check(result.status == "succeeded", "budgeted run: " .. vim.inspect(result))
  local done = parex.statusline()
  check(done:match("^parex: ok 1/1 .* · 12%.3k tok of 20k$") ~= nil, "statusline after the run: " .. done)
  out("ok - statusline after the run: " .. done)
  local text = show_status("spend: 12.3k tok of 20k (9000 prompt + 3300 completion tokens)")
  check(text:match("\n  ask +succeeded +12%.3k tok ") ~= nil, "the task's own spend in :ParexStatus: " .. text)
  out("ok - :ParexStatus shows the run's spend against its budget")

  -- 2. A truncated answer: one warning notice, on one line, and the warning in :ParexStatus.
  local before = #notifications
  vim.cmd("ParexRun " .. vim.fn.fnameescape(ws .. "/truncated.parex.toml"))
  wait(function()
    local last = parex._state.last
    return last ~= nil and last.result.runId ~= result.runId
  end, "the truncated run to end")
  local warned
  for i = before + 1, #notifications do
    local n = notifications[i]
    if n.msg:find("long: ", 1, true) then
      check(warned == nil, "the warning was told twice: " .. n.msg)
      warned = n
    end
  end
  check(warned, "no warning notice among " .. vim.inspect(notifications))
  check(warned.level == vim.log.levels.WARN, "warning level: " .. tostring(warned.level))
  -- Cut to the message area as need be; the whole text waits in :ParexStatus.
  check(warned.msg:find("parex: long: the model's answer was cut", 1, true) == 1, "warning text: " .. warned.msg)
  check(not warned.msg:find("\n") and vim.fn.strdisplaywidth(warned.msg) <= math.max(20, vim.v.echospace),
    "the warning notice is more than one line of the message area: " .. vim.inspect(warned.msg))
  for i = before + 1, #notifications do
    check(not notifications[i].msg:find(" started", 1, true), "task news told with notify_tasks off: " .. notifications[i].msg)
  end
  out("ok - the truncated answer's warning was one notice: " .. warned.msg)
  text = show_status("warning (truncated): ")
  check(text:find("warning (truncated): the model's answer was cut at its length limit", 1, true) ~= nil, ":ParexStatus: " .. text)
  check(text:find("long: the model's answer was cut at its length limit (finish_reason \"length\")", 1, true) ~= nil,
    "the notice in full among the messages of :ParexStatus: " .. text)
  out("ok - :ParexStatus lists the warning under its task")

  -- 3. A rate limit: the agent's cooldown counts down in the statusline, redrawn each second.
  local previous = parex._state.last.result.runId
  vim.cmd("ParexRun " .. vim.fn.fnameescape(ws .. "/limited.parex.toml"))
  local first
  wait(function()
    first = parex.statusline()
    return first:find("rate limited", 1, true) ~= nil
  end, "the statusline to show the cooldown")
  out("ok - statusline during the cooldown: " .. first)
  text = show_status("local: rate limited, resuming in ")
  out("ok - :ParexStatus showed the cooldown in full: " .. text:match("local: rate limited, resuming in [^\n]*"))
  local redraws = 0
  local group = vim.api.nvim_create_augroup("parex_spend_test", { clear = true })
  vim.api.nvim_create_autocmd("User", { group = group, pattern = "ParexProgress", callback = function()
    redraws = redraws + 1
  end })
  local later
  wait(function()
    later = parex.statusline()
    return later:find("rate limited 1s", 1, true) ~= nil
  end, "the cooldown to count down to 1s")
  check(redraws >= 1, "the statusline was not redrawn while the cooldown went on")
  out("ok - the cooldown counted down to " .. later .. " (" .. redraws .. " redraws)")
  wait(function()
    local last = parex._state.last
    return last ~= nil and last.result.runId ~= previous
  end, "the rate-limited run to end")
  check(parex._state.last.result.status == "succeeded", "rate-limited run: " .. vim.inspect(parex._state.last.result))
  local after = parex.statusline()
  check(not after:find("rate limited", 1, true), "the cooldown is still shown after the run: " .. after)

  -- 4. The budget reached: the run stops; one notice (task news is off), the statusline says it.
  previous = parex._state.last.result.runId
  before = #notifications
  vim.cmd("ParexRun " .. vim.fn.fnameescape(ws .. "/over.parex.toml"))
  wait(function()
    local last = parex._state.last
    return last ~= nil and last.result.runId ~= previous
  end, "the over-budget run to end")
  local told = {}
  for i = before + 1, #notifications do
    if notifications[i].msg:find("^parex: budget reached: ") then
      table.insert(told, notifications[i])
    end
  end
  check(#told == 1, "budget notices: " .. vim.inspect(told))
  check(told[1].level == vim.log.levels.WARN and not told[1].msg:find("\n"), "budget notice: " .. vim.inspect(told[1]))
  check(not told[1].msg:find("budget reached: budget reached", 1, true), "budget notice says it twice: " .. told[1].msg)
  out("ok - the budget reached: one notice: " .. told[1].msg)
  local over = parex.statusline()
  check(over:match("^parex: failed 1/1 .* · budget reached: 1%.5k tok of 1k$") ~= nil, "statusline: " .. over)
  out("ok - statusline after the budget was reached: " .. over)
end

function M.run()
  local ws = os.getenv("PAREX_TEST_WORKSPACE")
  h.main(function()
    test(ws)
  end)
end

return M
