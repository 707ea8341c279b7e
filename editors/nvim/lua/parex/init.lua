-- parex for Neovim: starts `parex-lsp` for workspaces that hold a plan, runs plans
-- (`:ParexRun`), shows per-task progress, puts failed tasks in the quickfix list, and shows
-- the answers of model tasks side by side (`:ParexAnswers`). Works on Neovim 0.7.2 through 0.11.
local answers = require("parex.answers")
local compat = require("parex.compat")
local root = require("parex.root")
local ui = require("parex.ui")

local levels = vim.log.levels

local M = {}

local defaults = {
  -- Server command: a list, or a function(root_dir) returning one. Default: the
  -- workspace's .venv/bin/parex-lsp when present, else `parex-lsp` on PATH.
  cmd = nil,
  -- Attach to every buffer under a plan root that holds `callN:` lines (plan files always).
  attach_calls = true,
  -- Write a modified plan buffer before running it (the agents work on the files on disk).
  autowrite = true,
  -- vim.notify when each task starts and ends; the run summary is always shown.
  notify_tasks = true,
  -- Open the quickfix window when a run has failed tasks.
  open_quickfix = false,
  -- How :ParexLog opens the log: "split", "vsplit", "tabedit" or "edit".
  log_open = "split",
  -- Open the answers of a run's model tasks (a callN: fan-out) in a vertical split when it ends.
  open_answers = true,
  -- Passed through to the client.
  on_attach = nil,
  capabilities = nil,
  init_options = nil,
  settings = nil,
}

local state = {
  opts = vim.deepcopy(defaults),
  setup_done = false,
  clients = {}, -- root dir -> client id
  ready = {}, -- client id -> true once initialized
  waiting = {}, -- client id -> callbacks to run once initialized
  runs = {}, -- runId -> { id, client_id, tasks = {taskId -> status}, order = {taskId...}, percentage }
  pending = {}, -- list of { client_id, request_id, plan_uri, run_id? } for parex/run requests in flight
  current = nil, -- runId of the run the statusline follows
  last = nil, -- { result, plan_uri, client_id } of the last finished run
  last_answers = nil, -- { result, prompts, label } of the last finished run that had answers
  diagnostics = {}, -- uri -> the raw LSP diagnostics last published there
  run_order = {}, -- runIds, oldest first (only the last KEEP_RUNS are kept)
  progress = {}, -- progress token -> { kinds seen, in order }
  shown = {}, -- log uri -> true when window/showDocument opened it
  cmd_warned = {}, -- server commands found missing (said once)
}

M._state = state

local function log_error(where, err)
  ui.notify(where .. ": " .. tostring(err), levels.ERROR)
end

-- Runs fn(...) and reports (not raises) its errors: a bug here must not break the client.
local function guarded(where, fn)
  return function(...)
    local ok, err = xpcall(fn, debug.traceback, ...)
    if not ok then
      log_error(where, err)
    end
  end
end

local function redraw()
  pcall(vim.cmd, "redrawstatus")
  compat.exec_user_autocmd("ParexProgress")
end

---------------------------------------------------------------------------
-- Runs and tasks as the server reports them
---------------------------------------------------------------------------

local TERMINAL = { succeeded = true, failed = true, skipped = true, cancelled = true }

local KEEP_RUNS = 20

local function forget_old_runs()
  while #state.run_order > KEEP_RUNS do
    local old = table.remove(state.run_order, 1)
    state.runs[old] = nil
    local prefix = "parex/" .. old
    for token in pairs(state.progress) do
      local t = tostring(token)
      if t == prefix or t:sub(1, #prefix + 1) == prefix .. "/" then
        state.progress[token] = nil
      end
    end
  end
end

local function run_record(run_id, client_id)
  local run = state.runs[run_id]
  if not run then
    run = { id = run_id, client_id = client_id, tasks = {}, order = {}, started = {} }
    state.runs[run_id] = run
    table.insert(state.run_order, run_id)
    forget_old_runs()
    state.current = run_id
    -- The first news of a run answers which pending request it belongs to.
    for _, p in ipairs(state.pending) do
      if p.client_id == client_id and not p.run_id then
        p.run_id = run_id
        break
      end
    end
  end
  return run
end

-- `restart`: the news is the server starting the task (again); late progress never
-- brings an ended task back to life.
local function set_task(run, task_id, status, restart)
  if run.tasks[task_id] == nil then
    table.insert(run.order, task_id)
  end
  if TERMINAL[run.tasks[task_id]] and not restart then
    return
  end
  run.tasks[task_id] = status
end

local function end_status(message)
  local word = type(message) == "string" and message:match("^%s*(%a+)") or nil
  if word and TERMINAL[word] then
    return word
  end
  return "ended"
end

local function on_progress(_, result, ctx)
  if type(result) ~= "table" or type(result.value) ~= "table" then
    return
  end
  local token, value = result.token, result.value
  local seen = state.progress[token] or {}
  state.progress[token] = seen
  table.insert(seen, value.kind or "?")

  local run_id, task_id = tostring(token):match("^parex/(.+)/([^/]+)$")
  if run_id then
    local run = run_record(run_id, ctx.client_id)
    -- Tokens are created with a round trip, so a quick task's begin/end can trail its
    -- parex/taskEvent and even the run's result: no "started" for a task that never ran,
    -- and no per-task news once the run summary has been shown.
    local quiet = not state.opts.notify_tasks or run.result ~= nil
    if value.kind == "begin" then
      local never_ran = TERMINAL[run.tasks[task_id]] and not run.started[task_id]
      set_task(run, task_id, "running")
      if not quiet and not never_ran then
        ui.notify(task_id .. " started")
      end
    elseif value.kind == "report" then
      run.last_output = run.last_output or {}
      run.last_output[task_id] = value.message
    elseif value.kind == "end" then
      local status = end_status(value.message)
      set_task(run, task_id, status)
      if not quiet then
        local level = (status == "failed" and levels.ERROR)
          or ((status == "skipped" or status == "cancelled") and levels.WARN)
          or levels.INFO
        ui.notify(task_id .. " " .. (value.message or status), level)
      end
    end
  else
    -- The run's own progress ("parex: N tasks"): follow its percentage.
    local own_run = tostring(token):match("^parex/([^/]+)$")
    local run = own_run and run_record(own_run, ctx.client_id) or (state.current and state.runs[state.current])
    if run and value.kind == "begin" and type(value.title) == "string" then
      run.total = tonumber(value.title:match("(%d+) tasks?")) or run.total
    end
    if run and (value.kind == "begin" or value.kind == "report") then
      run.percentage = value.percentage or run.percentage
      run.message = value.message or run.message
    end
  end
  redraw()
end

local EVENT_STATUS = {
  queued = "queued",
  started = "running",
  retrying = "retrying",
  lockWait = "waiting",
  succeeded = "succeeded",
  failed = "failed",
  skipped = "skipped",
  cancelled = "cancelled",
}

local function on_task_event(_, event, ctx)
  if type(event) ~= "table" or not event.runId or not event.taskId then
    return
  end
  local run = run_record(event.runId, ctx.client_id)
  if event.kind == "started" then
    run.started[event.taskId] = true
  end
  local status = EVENT_STATUS[event.kind]
  if status then
    set_task(run, event.taskId, status, event.kind == "started" or event.kind == "queued")
  end
  if event.kind == "retrying" and state.opts.notify_tasks then
    ui.notify(string.format("%s retrying (attempt %s)", event.taskId, tostring(event.attempt)), levels.WARN)
  end
  redraw()
end

---------------------------------------------------------------------------
-- The client
---------------------------------------------------------------------------

local function default_handler(method)
  return vim.lsp.handlers[method]
end

-- Our handlers wrap the default ones (whatever the user installed there), never replace them.
local function wrap(method, ours, ours_first)
  return function(err, result, ctx, config)
    local default = default_handler(method)
    if ours_first then
      guarded(method, ours)(err, result, ctx, config)
    end
    local ret
    if default then
      local ok, value = pcall(default, err, result, ctx, config)
      if ok then
        ret = value
      end
    end
    if not ours_first then
      guarded(method, ours)(err, result, ctx, config)
    end
    return ret
  end
end

-- The server shows a task's log with window/showDocument (parex.showLog, the "Show log"
-- code action); open logs the way :ParexLog does, other documents the default way.
local function on_show_document(err, result, ctx, config)
  if type(result) == "table" and type(result.uri) == "string" and not result.external
    and result.uri:match("^file:") and result.uri:match("/%.parex/runs/.+%.log$")
  then
    local ok = pcall(function()
      M._open_uri(result.uri)
    end)
    if ok then
      state.shown[result.uri] = true
    end
    return { success = ok }
  end
  local default = default_handler("window/showDocument")
  if default then
    return default(err, result, ctx, config)
  end
  return { success = false }
end

local handlers = {
  ["window/showDocument"] = on_show_document,
  ["window/workDoneProgress/create"] = function(err, result, ctx, config)
    local default = default_handler("window/workDoneProgress/create")
    if default then
      pcall(default, err, result, ctx, config)
    end
    return vim.NIL
  end,
  ["$/progress"] = wrap("$/progress", on_progress),
  ["parex/taskEvent"] = guarded("parex/taskEvent", on_task_event),
  -- Record first, so that the quickfix list built from them sees the newest ones.
  ["textDocument/publishDiagnostics"] = wrap("textDocument/publishDiagnostics", function(_, result)
    if type(result) == "table" and result.uri then
      state.diagnostics[result.uri] = result.diagnostics or {}
    end
  end, true),
}

local function resolve_cmd(root_dir)
  local cmd = state.opts.cmd
  if type(cmd) == "function" then
    cmd = cmd(root_dir)
  end
  if type(cmd) == "string" then
    cmd = { cmd }
  end
  if type(cmd) == "table" and #cmd > 0 then
    return cmd
  end
  local venv = root_dir .. "/.venv/bin/parex-lsp"
  if vim.fn.executable(venv) == 1 then
    return { venv, "--stdio" }
  end
  return { "parex-lsp", "--stdio" }
end

local function make_config(root_dir)
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.window = capabilities.window or {}
  capabilities.window.workDoneProgress = true
  if state.opts.capabilities then
    capabilities = vim.tbl_deep_extend("force", capabilities, state.opts.capabilities)
  end
  return {
    name = "parex",
    cmd = resolve_cmd(root_dir),
    root_dir = root_dir,
    workspace_folders = { { uri = vim.uri_from_fname(root_dir), name = root_dir } },
    capabilities = capabilities,
    handlers = handlers,
    init_options = state.opts.init_options,
    settings = state.opts.settings,
    on_attach = state.opts.on_attach,
    on_init = function(client)
      state.ready[client.id] = true
      local callbacks = state.waiting[client.id] or {}
      state.waiting[client.id] = nil
      -- Scheduled: on 0.7 the didOpen of already attached buffers follows on_init.
      for _, cb in ipairs(callbacks) do
        vim.schedule(function()
          cb(client)
        end)
      end
    end,
    on_exit = function(code, signal, client_id)
      vim.schedule(function()
        state.ready[client_id] = nil
        state.waiting[client_id] = nil
        for dir, id in pairs(state.clients) do
          if id == client_id then
            state.clients[dir] = nil
          end
        end
        local lost = {}
        for i = #state.pending, 1, -1 do
          if state.pending[i].client_id == client_id then
            table.insert(lost, table.remove(state.pending, i))
          end
        end
        if #lost > 0 or (code ~= 0 and code ~= nil) then
          ui.notify(
            string.format("server exited (code %s, signal %s)", tostring(code), tostring(signal)),
            levels.ERROR
          )
        end
        redraw()
      end)
    end,
  }
end

-- Start (or reuse) the server for root_dir, attach bufnr (a loaded buffer), then call
-- on_ready(client) once the server is initialized.
local function ensure_client(root_dir, bufnr, on_ready)
  local config = make_config(root_dir)
  if vim.fn.executable(config.cmd[1]) ~= 1 then
    -- Said once per command (every buffer of the workspace would repeat it), always on a run.
    if on_ready or not state.cmd_warned[config.cmd[1]] then
      state.cmd_warned[config.cmd[1]] = true
      ui.notify(
        "cannot start the server: `" .. config.cmd[1] .. "` is not executable (install parex-lsp or set cmd)",
        levels.ERROR
      )
    end
    return nil
  end
  local id = compat.start(config, bufnr, state.clients[root_dir])
  if not id then
    ui.notify("could not start " .. table.concat(config.cmd, " "), levels.ERROR)
    return nil
  end
  state.clients[root_dir] = id
  if on_ready then
    local client = vim.lsp.get_client_by_id(id)
    if state.ready[id] or (client and client.initialized) then
      vim.schedule(function()
        on_ready(client)
      end)
    else
      state.waiting[id] = state.waiting[id] or {}
      table.insert(state.waiting[id], on_ready)
    end
  end
  return id
end

local function buf_path(bufnr)
  if vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == "" then
    return nil
  end
  return vim.fn.fnamemodify(name, ":p")
end

-- Attach a buffer when it is a plan, or holds `callN:` lines, under a plan root.
local function maybe_attach(bufnr)
  local path = buf_path(bufnr)
  if not path then
    return
  end
  local is_plan = root.is_plan_name(path)
  if not is_plan and not (state.opts.attach_calls and root.buf_has_calls(bufnr)) then
    return
  end
  local dir = root.find_root(path)
  if dir then
    ensure_client(dir, bufnr)
  end
end

-- The client for the current buffer's workspace, or for the run the statusline follows.
local function current_client()
  local path = buf_path(vim.api.nvim_get_current_buf())
  local dir = path and root.find_root(path)
  local client = dir and compat.get_client(state.clients[dir])
  if client then
    return client
  end
  local run = state.current and state.runs[state.current]
  client = run and compat.get_client(run.client_id)
  if client then
    return client
  end
  for _, id in pairs(state.clients) do
    client = compat.get_client(id)
    if client then
      return client
    end
  end
  return nil
end

---------------------------------------------------------------------------
-- Running
---------------------------------------------------------------------------

local function remove_pending(entry)
  for i, p in ipairs(state.pending) do
    if p == entry then
      table.remove(state.pending, i)
      return
    end
  end
end

local function finish_run(entry, result)
  local run = run_record(result.runId, entry.client_id)
  for _, task in ipairs(result.tasks or {}) do
    set_task(run, task.id, task.status, true)
  end
  run.result = result
  state.current = result.runId
  state.last = { result = result, plan_uri = entry.plan_uri, client_id = entry.client_id }

  local level = result.status == "succeeded" and levels.INFO or (result.status == "failed" and levels.ERROR or levels.WARN)
  local items = ui.quickfix_items(result, entry.plan_uri, state.diagnostics[entry.plan_uri])
  local msg = ui.summary(result)
  if #items > 0 then
    msg = msg .. string.format(" (%d in the quickfix list)", #items)
  end
  ui.notify(msg, level)
  ui.set_quickfix(items, "run " .. tostring(result.runId), state.opts.open_quickfix)
  local answered = answers.with_earlier(result, answers.result)
  if answers.has_answers(answered) then
    local label = entry.label
      or (entry.plan_uri and entry.plan_uri:match("^file:") and vim.fn.fnamemodify(vim.uri_to_fname(entry.plan_uri), ":t"))
      or nil
    answers.remember(answered)
    state.last_answers = { result = answered, prompts = entry.prompts, label = label }
    if state.opts.open_answers then
      answers.open(answered, { prompts = entry.prompts, label = label }, false)
    end
  end
  redraw()
  compat.exec_user_autocmd("ParexRunDone")
end

local INVALID_PARAMS = -32602

local function plan_from_invalid(entry, err)
  local message = type(err) == "table" and err.message or tostring(err)
  ui.notify("plan not run: " .. tostring(message), levels.ERROR)
  if type(err) ~= "table" or err.code ~= INVALID_PARAMS then
    return -- e.g. the plan is running already: the last run's quickfix list stays
  end
  -- An invalid plan: the server names every problem and also publishes them as diagnostics.
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
-- extra: { prompts?, label? } kept for the answers buffer.
local function start_run(root_dir, bufnr, params, extra)
  local plan_uri = params.plan and params.plan.uri
  extra = extra or {}
  ensure_client(root_dir, bufnr, function(client)
    local entry = { client_id = client.id, plan_uri = plan_uri, prompts = extra.prompts, label = extra.label }
    table.insert(state.pending, entry)
    local handler = guarded("parex/run", function(err, result)
      remove_pending(entry)
      if err then
        plan_from_invalid(entry, err)
        redraw()
        return
      end
      if type(result) ~= "table" or not result.runId then
        ui.notify("parex/run answered without a result", levels.ERROR)
        return
      end
      if result.tasks == nil then
        -- detach: the run goes on; progress and events keep the statusline current.
        run_record(result.runId, client.id)
        ui.notify("run " .. result.runId .. " started")
        return
      end
      finish_run(entry, result)
    end)
    local ok, request_id = compat.request(client, "parex/run", params, handler, bufnr)
    if not ok then
      remove_pending(entry)
      ui.notify("could not send parex/run (server stopped?)", levels.ERROR)
      return
    end
    entry.request_id = request_id
    redraw()
  end)
end

local function range_has_calls(lines)
  for _, line in ipairs(lines) do
    if root.call_id(line) then
      return true
    end
  end
  return false
end

--- Run a plan. opts: { plan = path?, line1?, line2?, range? (0, 1 or 2 as in a user command),
--- bufnr?, params? (extra RunParams: maxConcurrency, isolation, only, resume) }
function M.run(opts)
  opts = opts or {}
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  local params = vim.deepcopy(opts.params or {})
  local path, target_buf
  local extra = {}

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
    path = buf_path(bufnr)
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
      if not range_has_calls(lines) then
        if root.is_plan_name(path) then
          params.plan = { uri = vim.uri_from_bufnr(bufnr) }
        else
          ui.notify("no plan here: open a parex.toml, or select callN: lines", levels.ERROR)
          return
        end
      else
        extra.prompts = answers.call_prompts(lines)
        local ids = {}
        for _, line in ipairs(lines) do
          table.insert(ids, root.call_id(line))
        end
        extra.label = vim.fn.fnamemodify(path, ":t") .. ": " .. table.concat(ids, ", ")
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

  if target_buf and state.opts.autowrite and vim.bo[target_buf].modified then
    vim.api.nvim_buf_call(target_buf, function()
      vim.cmd("silent update")
    end)
  end

  local dir = root.find_root(path) or root.fallback_root(path)
  start_run(dir, target_buf, params, extra)
end

--- Cancel the run the statusline follows (or a task of it); without a known run id,
--- cancel the pending parex/run requests ($/cancelRequest cancels their runs).
function M.cancel(task_id)
  local run = state.current and state.runs[state.current]
  local running = run and not run.result
  if running then
    local client = compat.get_client(run.client_id)
    if client then
      local params = { runId = run.id, taskId = (task_id ~= "" and task_id) or nil }
      compat.request(client, "parex/cancel", params, guarded("parex/cancel", function(err, result)
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
    local client = compat.get_client(p.client_id)
    if client and p.request_id then
      compat.cancel_request(client, p.request_id)
      sent = sent + 1
    end
  end
  if sent == 0 then
    ui.notify("no run to cancel", levels.WARN)
  end
end

-- RunStatus: {runId, plan, status, startedAt, tasks: [{id, status, attempt, elapsedMs, lastLine, ...}]}
local function format_status(runs)
  local out = {}
  for _, r in ipairs(runs or {}) do
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
    for _, t in ipairs(tasks) do
      if t.status == "running" or t.status == "waiting" then
        local last = type(t.lastLine) == "string" and t.lastLine ~= "" and (": " .. t.lastLine) or ""
        table.insert(out, string.format("  %s %s %s%s", t.id, t.status, ui.seconds(t.elapsedMs), last))
      end
    end
  end
  return out
end

--- Show the server's live runs (parex/status), or the last finished run.
function M.status()
  local client = current_client()
  if not client then
    ui.notify("no parex server is running", levels.WARN)
    return
  end
  compat.request(client, "parex/status", vim.empty_dict(), guarded("parex/status", function(err, result)
    if err then
      ui.notify("status failed: " .. tostring(err.message or err), levels.ERROR)
      return
    end
    local lines = format_status(result and result.runs)
    if #lines == 0 then
      if state.last then
        lines = { "no live runs; last: " .. ui.summary(state.last.result) }
      else
        lines = { "no runs" }
      end
    end
    ui.notify(table.concat(lines, "\n"))
  end))
end

-- Show a file: jump to a window of this tab that shows it already, else open it with log_open.
local function open_uri(uri)
  local fname = vim.uri_to_fname(uri)
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    local name = vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win))
    if name ~= "" and vim.fn.resolve(name) == vim.fn.resolve(fname) then
      vim.api.nvim_set_current_win(win)
      vim.cmd("silent! checktime")
      return
    end
  end
  local how = state.opts.log_open or "split"
  vim.cmd(how .. " " .. vim.fn.fnameescape(fname))
end

M._open_uri = open_uri

local function last_log_uri(task_id)
  local result = state.last and state.last.result
  for _, task in ipairs(result and result.tasks or {}) do
    if task.id == task_id and task.logUri then
      return task.logUri
    end
  end
  return nil
end

--- Open the log of a task of the run the statusline follows (parex.showLog; the last
--- RunResult's logUri when the server cannot answer).
function M.log(task_id)
  if not task_id or task_id == "" then
    ui.notify("which task? :ParexLog {task}", levels.ERROR)
    return
  end
  local run_id = state.current or (state.last and state.last.result.runId)
  local client = current_client()
  local fallback = function(why)
    local uri = last_log_uri(task_id)
    if uri then
      open_uri(uri)
    else
      ui.notify("no log for " .. task_id .. (why and (": " .. why) or ""), levels.ERROR)
    end
  end
  if not client or not run_id then
    fallback()
    return
  end
  local params = { command = "parex.showLog", arguments = { { runId = run_id, taskId = task_id } } }
  compat.request(client, "workspace/executeCommand", params, guarded("parex.showLog", function(err, result)
    local uri = type(result) == "table" and result.uri or (type(result) == "string" and result) or nil
    if err or not uri then
      fallback(err and tostring(err.message or err) or nil)
      return
    end
    -- A client with window/showDocument (0.8+) has been shown the log already.
    if state.shown[uri] then
      state.shown[uri] = nil
      return
    end
    open_uri(uri)
  end))
end

--- Show the answers of the last run that had model answers, in a vertical split.
function M.answers()
  local last = state.last_answers
  if not last then
    ui.notify("no answers yet: runs of model tasks (e.g. callN: lines with a model agent) have them", levels.WARN)
    return
  end
  answers.open(last.result, { prompts = last.prompts, label = last.label }, true)
end

function M.task_ids()
  local ids = {}
  local run = state.current and state.runs[state.current]
  if run then
    for _, id in ipairs(run.order) do
      table.insert(ids, id)
    end
  end
  if #ids == 0 and state.last then
    for _, task in ipairs(state.last.result.tasks or {}) do
      table.insert(ids, task.id)
    end
  end
  return ids
end

--- A short text for the statusline: the run in progress, or the last one's outcome.
--- "" when no run has happened.
function M.statusline()
  local run = state.current and state.runs[state.current]
  if not run then
    return ""
  end
  if run.result then
    local r = run.result
    local failed = 0
    for _, task in ipairs(r.tasks or {}) do
      if task.status ~= "succeeded" then
        failed = failed + 1
      end
    end
    local speedup = type(r.speedup) == "number" and string.format(" %.1fx", r.speedup) or ""
    if r.status == "succeeded" then
      return string.format("parex: ok %d/%d%s", #(r.tasks or {}), #(r.tasks or {}), speedup)
    end
    return string.format("parex: %s %d/%d%s", tostring(r.status), failed, #(r.tasks or {}), speedup)
  end
  local total, done, running, failed = 0, 0, 0, 0
  for _, id in ipairs(run.order) do
    local s = run.tasks[id]
    total = total + 1
    if TERMINAL[s] then
      done = done + 1
    end
    if s == "failed" then
      failed = failed + 1
    end
    if s == "running" or s == "retrying" then
      running = running + 1
    end
  end
  total = math.max(total, run.total or 0)
  local text = string.format("parex: %d/%d", done, total)
  if running > 0 then
    text = text .. string.format(" (%d running)", running)
  end
  if failed > 0 then
    text = text .. string.format(" %d failed", failed)
  end
  return text
end

---------------------------------------------------------------------------
-- Setup
---------------------------------------------------------------------------

local function create_commands()
  local cmd = vim.api.nvim_create_user_command
  cmd("ParexRun", function(args)
    M.run({ plan = args.args, line1 = args.line1, line2 = args.line2, range = args.range })
  end, { nargs = "?", range = true, complete = "file", desc = "parex: run the plan (or the callN: lines)" })
  cmd("ParexCancel", function(args)
    M.cancel(args.args)
  end, {
    nargs = "?",
    complete = function()
      return M.task_ids()
    end,
    desc = "parex: cancel the run, or one task",
  })
  cmd("ParexAnswers", function()
    M.answers()
  end, { nargs = 0, desc = "parex: the answers of the last run's model tasks, side by side" })
  cmd("ParexStatus", function()
    M.status()
  end, { nargs = 0, desc = "parex: live runs" })
  cmd("ParexLog", function(args)
    M.log(args.args)
  end, {
    nargs = 1,
    complete = function()
      return M.task_ids()
    end,
    desc = "parex: open a task's log",
  })
end

function M.setup(opts)
  state.opts = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  if opts and opts.cmd then
    state.opts.cmd = opts.cmd -- lists are not merged
  end
  create_commands()
  local group = vim.api.nvim_create_augroup("parex", { clear = true })
  vim.api.nvim_create_autocmd({ "BufReadPost", "BufNewFile" }, {
    group = group,
    callback = guarded("attach", function(ev)
      maybe_attach(ev.buf)
    end),
  })
  -- Buffers already open when setup runs (e.g. `nvim parex.toml` with a lazy-loaded plugin).
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) then
      guarded("attach", maybe_attach)(bufnr)
    end
  end
  state.setup_done = true
end

return M
