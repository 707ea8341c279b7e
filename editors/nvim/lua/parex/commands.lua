-- The commands: :ParexRun, :ParexCancel, :ParexStatus, :ParexLog, :ParexAnswers, :ParexPlan, and the
-- Lua functions behind them.
local answers = require("parex.answers")
local calls = require("parex.calls")
local client = require("parex.client")
local options = require("parex.options")
local compat = require("parex.compat")
local root = require("parex.root")
local runs = require("parex.runs")
local state = require("parex.state")
local ui = require("parex.ui")

local levels = vim.log.levels

local M = {}

local function remove_pending(entry)
  for i, p in ipairs(state.pending) do
    if p == entry then
      table.remove(state.pending, i)
      return
    end
  end
end

local function workspace_of(uri)
  if type(uri) ~= "string" or not uri:match("^file:") then
    return nil
  end
  local path = vim.uri_to_fname(uri)
  return root.find_root(path) or vim.fn.fnamemodify(path, ":h")
end

-- A run's RunResult arrived: settle the reducer, tell the outcome on one line, fill the
-- quickfix list, show the answers of model tasks.
local function finish_run(entry, result)
  runs.finish(state.runs, result)
  local run = state.runs.runs[result.runId]
  run.client_id = run.client_id or entry.client_id
  state.last = { result = result, plan_uri = entry.plan_uri, client_id = entry.client_id }

  local level = result.status == "succeeded" and levels.INFO or (result.status == "failed" and levels.ERROR or levels.WARN)
  local items = ui.quickfix_items(result, entry.plan_uri, state.diagnostics[entry.plan_uri], run, workspace_of(entry.plan_uri))
  local msg = ui.short_summary(result)
  if #items > 0 then
    msg = msg .. string.format(" (%d in quickfix)", #items)
  end
  ui.notify(msg, level, ui.summary(result))
  ui.set_quickfix(items, "run " .. tostring(result.runId), state.opts.open_quickfix)
  local answered = answers.with_earlier(result, answers.result)
  if answers.has_answers(answered) then
    local prompts = answers.prompts(run)
    answers.remember(answered)
    state.last_answers = { result = answered, prompts = prompts, label = entry.label }
    if state.opts.open_answers then
      answers.open(answered, { prompts = prompts, label = entry.label }, false)
    end
  end
  client.redraw()
  compat.exec_user_autocmd("ParexRunDone")
end

local INVALID_PARAMS = -32602

-- The plan was not run: one line; the whole message (every problem) waits in :ParexStatus,
-- and an invalid plan's problems go to the quickfix list from the server's diagnostics.
local function not_run(entry, err)
  local message = tostring(type(err) == "table" and err.message or err)
  -- The server names each problem on a line of its own, as path:line:col: message.
  local problems = {}
  for line in message:gmatch("[^\n]+") do
    local at, what = line:match(":(%d+):%d+:%s*(.+)$")
    if at then
      table.insert(problems, "line " .. at .. ": " .. what)
    end
  end
  local short = ui.first_line(message) or message
  if #problems == 1 then
    short = problems[1]
  elseif #problems > 1 then
    short = string.format("%d problems, first: %s", #problems, problems[1])
  end
  ui.notify("plan not run: " .. short, levels.ERROR, "plan not run: " .. message)
  if type(err) ~= "table" or err.code ~= INVALID_PARAMS then
    return -- e.g. the plan is running already: the last run's quickfix list stays
  end
  local diags = state.diagnostics[entry.plan_uri] or {}
  local items = {}
  local fname = entry.plan_uri and vim.uri_to_fname(entry.plan_uri)
  for _, d in ipairs(diags) do
    if (d.severity or 1) == 1 and fname then
      table.insert(items, {
        filename = fname,
        lnum = d.range.start.line + 1,
        col = d.range.start.character + 1,
        text = ui.first_line(d.message) or "",
        type = "E",
      })
    end
  end
  ui.set_quickfix(items, "invalid plan", state.opts.open_quickfix)
end

-- Send parex/run with `params` to the server of root_dir (bufnr is attached first).
local function start_run(root_dir, bufnr, params, label)
  local plan_uri = params.plan and params.plan.uri
  client.ensure(root_dir, bufnr, function(c)
    local entry = { client_id = c.id, plan_uri = plan_uri, label = label }
    table.insert(state.pending, entry)
    local handler = client.guarded("parex/run", function(err, result)
      remove_pending(entry)
      if err then
        not_run(entry, err)
        client.redraw()
        return
      end
      if type(result) ~= "table" or not result.runId then
        ui.notify("parex/run answered without a result", levels.ERROR)
        return
      end
      if result.tasks == nil then
        -- detach: the run goes on; its taskEvents keep the statusline current.
        runs.run(state.runs, result.runId).client_id = c.id
        ui.notify("run " .. result.runId .. " started")
        return
      end
      finish_run(entry, result)
    end)
    local ok, request_id = compat.request(c, "parex/run", params, handler, bufnr)
    if not ok then
      remove_pending(entry)
      ui.notify("could not send parex/run (server stopped?)", levels.ERROR)
      return
    end
    entry.request_id = request_id
    client.redraw()
  end)
end

--- Run a plan. opts: { plan = path?, line1?, line2?, range? (0, 1 or 2 as in a user command),
--- bufnr?, params? (extra RunParams: maxConcurrency, isolation, only, resume, executor, rayAddress) }
function M.run(opts)
  opts = opts or {}
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  local params = vim.deepcopy(opts.params or {})
  local path, target_buf, label

  if opts.plan and opts.plan ~= "" then
    path = vim.fn.fnamemodify(vim.fn.expand(opts.plan), ":p")
    if vim.fn.filereadable(path) ~= 1 then
      ui.notify("no such plan: " .. path, levels.ERROR)
      return
    end
    params.plan = { uri = vim.uri_from_fname(path) }
    -- Load the plan (hidden) so that the server has it open and its diagnostics land on it.
    target_buf = vim.fn.bufadd(path)
    vim.fn.bufload(target_buf)
  else
    path = client.buf_path(bufnr)
    if not path then
      ui.notify("this buffer is not a file: open a plan (parex.toml) or a file with callN: lines", levels.ERROR)
      return
    end
    target_buf = bufnr
    if root.is_plan_name(path) and (opts.range or 0) == 0 then
      params.plan = { uri = vim.uri_from_bufnr(bufnr) }
    else
      local first, last = 1, vim.api.nvim_buf_line_count(bufnr)
      if (opts.range or 0) > 0 then
        first, last = opts.line1, opts.line2
      end
      local lines = vim.api.nvim_buf_get_lines(bufnr, first - 1, last, false)
      local found = calls.find(lines)
      if #found == 0 then
        if not root.is_plan_name(path) then
          ui.notify("no plan here: open a parex.toml, or select callN: lines", levels.ERROR)
          return
        end
        params.plan = { uri = vim.uri_from_bufnr(bufnr) }
      else
        local ids = {}
        for _, c in ipairs(found) do
          table.insert(ids, c.id)
        end
        label = vim.fn.fnamemodify(path, ":t") .. ": " .. table.concat(ids, ", ")
        params.plan = {
          uri = vim.uri_from_bufnr(bufnr),
          range = {
            start = { line = first - 1, character = 0 },
            ["end"] = { line = last - 1, character = #(lines[#lines] or "") },
          },
        }
      end
    end
  end
  if not label then
    label = vim.fn.fnamemodify(path, ":t")
  end

  if target_buf and state.opts.autowrite and vim.bo[target_buf].modified then
    vim.api.nvim_buf_call(target_buf, function()
      vim.cmd("silent update")
    end)
  end

  local dir = root.find_root(path) or root.fallback_root(path)
  start_run(dir, target_buf, options.run_params(params, state.opts), label)
end

--- Cancel the run the statusline follows (or a task of it); without a known run id,
--- cancel the pending parex/run requests ($/cancelRequest cancels their runs).
function M.cancel(task_id)
  local run = client.current_run()
  if run and not run.result then
    local c = compat.get_client(run.client_id)
    if c then
      local params = { runId = run.id, taskId = (task_id ~= "" and task_id) or nil }
      compat.request(c, "parex/cancel", params, client.guarded("parex/cancel", function(err, result)
        if err then
          ui.notify("cancel failed: " .. tostring(err.message or err), levels.ERROR)
          return
        end
        local ids = result and result.cancelled or {}
        ui.notify("cancelled " .. (#ids > 0 and table.concat(ids, ", ") or "nothing"), levels.WARN)
      end))
      return
    end
  end
  local sent = 0
  for _, p in ipairs(state.pending) do
    local c = compat.get_client(p.client_id)
    if c and p.request_id then
      compat.cancel_request(c, p.request_id)
      sent = sent + 1
    end
  end
  if sent == 0 then
    ui.notify("no run to cancel", levels.WARN)
  end
end

-- RunStatus: {runId, plan, status, startedAt, tasks: [{id, status, attempt, elapsedMs, lastLine, ...}]}
local function live_lines(live)
  local out = {}
  for _, r in ipairs(live or {}) do
    local line = string.format("run %s: %s", tostring(r.runId), tostring(r.status or "running"))
    if type(r.plan) == "string" then
      line = line .. " " .. vim.fn.fnamemodify(r.plan, ":t")
    end
    local tasks = type(r.tasks) == "table" and r.tasks or {}
    local counts = ui.count_statuses(tasks)
    if counts ~= "" then
      line = line .. " (" .. counts .. ")"
    end
    table.insert(out, line)
    if type(r.spent) == "table" then
      table.insert(out, "  spent: " .. runs.spend_text({ spend = runs.usage(r.spent), budget = runs.budget(r.budget) }))
    end
    if type(r.agents) == "table" then
      for name, a in pairs(r.agents) do
        if type(a) == "table" then
          local left = tonumber(a.cooldownUntil) and math.ceil(a.cooldownUntil - compat.now()) or 0
          table.insert(out, string.format("  %s: %s of %s at once%s%s", tostring(name), tostring(a.level), tostring(a.max),
            left > 0 and string.format(", rate limited for %ds", left) or "",
            type(a.reason) == "string" and (" (" .. a.reason .. ")") or ""))
        end
      end
    end
    for _, t in ipairs(tasks) do
      if t.status == "running" or t.status == "waiting" then
        local last = type(t.lastLine) == "string" and t.lastLine ~= "" and (": " .. t.lastLine) or ""
        table.insert(out, string.format("  %s %s %s%s", t.id, t.status, ui.seconds(t.elapsedMs), last))
      end
    end
  end
  return out
end

-- What a run spent and how its agents fare, in full: spend against the budget, the budget's
-- end, cooling agents ("claude: rate limited, resuming in 42s (429 ...)"), throttled agents.
local function spend_lines(run, now)
  local out = {}
  local spend = runs.spend_text(run)
  if spend then
    local s = run.spend
    table.insert(out, string.format("  spend: %s (%d prompt + %d completion tokens%s)", spend, s.promptTokens,
      s.completionTokens, (s.costUsd or 0) > 0 and string.format(", $%.4f", s.costUsd) or ""))
  end
  if run.budgetExceeded and run.budgetExceeded.message then
    table.insert(out, "  budget reached: " .. run.budgetExceeded.message)
  end
  if not run.result then
    for _, c in ipairs(runs.cooling(run, now)) do
      table.insert(out, string.format("  %s: rate limited, resuming in %ds%s", c.agent, c.left,
        c.reason and (" (" .. c.reason .. ")") or ""))
    end
    for _, a in ipairs(runs.throttled(run)) do
      table.insert(out, string.format("  %s: %d of %d tasks at once%s", a.agent, a.level, a.max,
        a.reason and (" (" .. a.reason .. ")") or ""))
    end
  end
  return out
end

-- The runs this Neovim saw, newest first: each task with its status and what it last said,
-- then its warnings.
local function known_lines()
  local out = {}
  local order = state.runs.order
  local now = compat.now()
  for i = #order, math.max(1, #order - 4), -1 do
    local run = state.runs.runs[order[i]]
    local head = run.result and ui.summary(run.result) or ("run " .. run.id .. " " .. run.status)
    table.insert(out, head .. "  [" .. runs.statusline(run, now) .. "]")
    vim.list_extend(out, spend_lines(run, now))
    for _, id in ipairs(run.order) do
      local t = run.tasks[id]
      local why = t.reason or t.waitingFor or t.lastLine
      -- The task's own spend, when a model agent told it.
      local spent = ""
      if t.usage and t.usage.promptTokens + t.usage.completionTokens > 0 then
        spent = "  " .. runs.tokens(t.usage.promptTokens + t.usage.completionTokens) .. " tok"
          .. ((t.usage.costUsd or 0) > 0 and string.format(" $%.4f", t.usage.costUsd) or "")
      end
      table.insert(out, string.format("  %-12s %-10s%s%s", id, t.status, spent, why and ("  " .. why:gsub("\n", " ")) or ""))
      for _, w in ipairs(t.warnings or {}) do
        table.insert(out, string.format("    warning (%s): %s", w.reason, (w.message:gsub("\n", " "))))
      end
    end
  end
  return out
end

local function status_lines(live, err)
  local out = { "# parex status", "", "## live runs (server)" }
  if err then
    table.insert(out, "status failed: " .. tostring(err.message or err))
  else
    local lines = live_lines(live)
    vim.list_extend(out, #lines > 0 and lines or { "no live runs" })
  end
  vim.list_extend(out, { "", "## runs seen here" })
  local known = known_lines()
  vim.list_extend(out, #known > 0 and known or { "no runs" })
  if #state.messages > 0 then
    vim.list_extend(out, { "", "## messages in full (newest last)" })
    for _, m in ipairs(state.messages) do
      vim.list_extend(out, vim.split(m.text, "\n"))
    end
  end
  return out
end

--- Show the server's live runs (parex/status), the runs seen here and the messages that were
--- shortened, in the parex://status buffer.
function M.status()
  local c = client.current()
  if not c then
    ui.show_status(status_lines(nil, "no parex server is running"))
    return
  end
  compat.request(c, "parex/status", vim.empty_dict(), client.guarded("parex/status", function(err, result)
    ui.show_status(status_lines(result and result.runs, err))
  end))
end

-- The log of a task as the server named it: the reducer's logPath, else a RunResult's logUri.
local function known_log(task_id)
  local run = client.current_run()
  local t = run and run.tasks[task_id]
  if t and t.logPath then
    return t.logPath
  end
  if t and t.logUri then
    return vim.uri_to_fname(t.logUri)
  end
  local result = state.last and state.last.result
  for _, task in ipairs(result and result.tasks or {}) do
    if task.id == task_id and task.logUri then
      return vim.uri_to_fname(task.logUri)
    end
  end
  return nil
end

--- Open the log of a task of the run the statusline follows (parex.showLog; the log the
--- server named in its events when it cannot answer).
function M.log(task_id)
  if not task_id or task_id == "" then
    ui.notify("which task? :ParexLog {task}", levels.ERROR)
    return
  end
  local run = client.current_run()
  local c = client.current()
  local fallback = function(why)
    local path = known_log(task_id)
    if path then
      ui.open_file(path, state.opts.log_open)
    else
      ui.notify("no log for " .. task_id .. (why and (": " .. why) or ""), levels.ERROR)
    end
  end
  if not c or not run then
    fallback()
    return
  end
  local params = { command = "parex.showLog", arguments = { { runId = run.id, taskId = task_id } } }
  state.log_requests = state.log_requests + 1
  compat.request(c, "workspace/executeCommand", params, client.guarded("parex.showLog", function(err, result)
    state.log_requests = math.max(0, state.log_requests - 1)
    local uri = type(result) == "table" and result.uri or (type(result) == "string" and result) or nil
    if err or not uri then
      fallback(err and tostring(err.message or err) or nil)
      return
    end
    local fname = vim.uri_to_fname(uri)
    -- A client with window/showDocument (0.8+) has been shown the log already.
    if state.shown[fname] then
      state.shown[fname] = nil
      return
    end
    ui.open_file(fname, state.opts.log_open)
  end))
end

--- Show the answers of the last run that had model answers, in a vertical split.
function M.answers()
  local last = state.last_answers
  if not last then
    ui.notify("no answers yet (model tasks, e.g. callN: lines, have them)", levels.WARN)
    return
  end
  answers.open(last.result, { prompts = last.prompts, label = last.label }, true)
end

function M.task_ids()
  local ids = runs.task_ids(client.current_run())
  if #ids == 0 and state.last then
    for _, task in ipairs(state.last.result.tasks or {}) do
      table.insert(ids, task.id)
    end
  end
  return ids
end

function M.create()
  local cmd = vim.api.nvim_create_user_command
  cmd("ParexRun", function(args)
    M.run({ plan = args.args, line1 = args.line1, line2 = args.line2, range = args.range })
  end, { nargs = "?", range = true, complete = "file", desc = "parex: run the plan (or the callN: lines)" })
  cmd("ParexCancel", function(args)
    M.cancel(args.args)
  end, { nargs = "?", complete = M.task_ids, desc = "parex: cancel the run, or one task" })
  cmd("ParexAnswers", M.answers, { nargs = 0, desc = "parex: the answers of the last run's model tasks, side by side" })
  cmd("ParexStatus", M.status, { nargs = 0, desc = "parex: live runs, the runs seen here, messages in full" })
  cmd("ParexPlan", function(args)
    require("parex.planning").plan(args.args)
  end, { nargs = "+", desc = "parex: draft a plan with the workspace's planning agent" })
  cmd("ParexPlanCancel", function()
    require("parex.planning").cancel()
  end, { nargs = 0, desc = "parex: stop the plan being drafted" })
  cmd("ParexLog", function(args)
    M.log(args.args)
  end, { nargs = 1, complete = M.task_ids, desc = "parex: open a task's log" })
end

return M
