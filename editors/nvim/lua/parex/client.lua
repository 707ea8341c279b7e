-- Starting `parex-lsp` for a workspace, attaching buffers to it, and its handlers: every
-- `parex/taskEvent` goes through the reducer (parex.runs) and, when it is news, becomes a
-- notification, in the order the server sent them.
local compat = require("parex.compat")
local root = require("parex.root")
local runs = require("parex.runs")
local state = require("parex.state")
local ui = require("parex.ui")

local levels = vim.log.levels

local M = {}

local LEVELS = { info = levels.INFO, warn = levels.WARN, error = levels.ERROR }

-- Runs fn(...) and reports (not raises) its errors: a bug here must not break the client.
function M.guarded(where, fn)
  return function(...)
    local ok, err = xpcall(fn, debug.traceback, ...)
    if not ok then
      ui.notify(where .. ": " .. tostring(err), levels.ERROR)
    end
  end
end

function M.redraw()
  pcall(vim.cmd, "redrawstatus")
  compat.exec_user_autocmd("ParexProgress")
end

-- The first news of a run answers which pending parex/run request it belongs to.
local function claim_pending(run_id, client_id)
  for _, p in ipairs(state.pending) do
    if p.client_id == client_id and p.run_id == nil then
      p.run_id = run_id
      return
    end
  end
end

-- While an agent of the current run cools down, the statusline counts down: redraw it each
-- quarter second (the seconds left change at fractions of the clock's) until no cooldown is left;
-- one ticker at a time.
local ticking = false
local function tick_cooldowns()
  if ticking then
    return
  end
  ticking = true
  local function step()
    local run = M.current_run()
    if not run or run.result or #runs.cooling(run, compat.now()) == 0 then
      ticking = false
      M.redraw()
      return
    end
    M.redraw()
    vim.defer_fn(step, 250)
  end
  vim.defer_fn(step, 250)
end

local function on_task_event(_, event, ctx)
  if type(event) ~= "table" or type(event.runId) ~= "string" then
    return
  end
  local known = state.runs.runs[event.runId] ~= nil
  runs.apply(state.runs, event)
  local run = state.runs.runs[event.runId]
  if run then
    run.client_id = run.client_id or ctx.client_id
    if not known then
      claim_pending(event.runId, ctx.client_id)
    end
  end
  local notice = runs.notice(event)
  if notice and notice.always then
    -- Warnings and the budget stay in :ParexStatus in full, however the notice was cut.
    ui.notify(notice.text, LEVELS[notice.level], notice.text)
  elseif notice and state.opts.notify_tasks then
    ui.notify(notice.text, LEVELS[notice.level])
  end
  if event.kind == "cooldown" then
    tick_cooldowns()
  end
  M.redraw()
end

-- What the server sent on each progress token, for whoever wants to look (the run's state
-- comes from parex/taskEvent, never from progress titles).
local function on_progress(_, result)
  if type(result) == "table" and type(result.value) == "table" and result.token ~= nil then
    local seen = state.progress[result.token] or {}
    state.progress[result.token] = seen
    table.insert(seen, result.value.kind or "?")
    if #seen == 1 then
      -- Forget the tokens of runs the reducer forgot.
      for token in pairs(state.progress) do
        local run_id = tostring(token):match("^parex/([^/]+)")
        if run_id and not state.runs.runs[run_id] and tostring(token) ~= tostring(result.token) then
          state.progress[token] = nil
        end
      end
    end
  end
end

local function default_handler(method)
  return vim.lsp.handlers[method]
end

-- Our handlers wrap the default ones (whatever the user installed there), never replace them.
local function wrap(method, ours, ours_first)
  return function(err, result, ctx, config)
    local default = default_handler(method)
    if ours_first then
      M.guarded(method, ours)(err, result, ctx, config)
    end
    local ret
    if default then
      local ok, value = pcall(default, err, result, ctx, config)
      if ok then
        ret = value
      end
    end
    if not ours_first then
      M.guarded(method, ours)(err, result, ctx, config)
    end
    return ret
  end
end

-- The server shows a task's log with window/showDocument (parex.showLog, the "Show log" code
-- action): a file the reducer knows as a task's log, or one a :ParexLog asked for, opens the
-- way :ParexLog opens logs; other documents the default way.
local function on_show_document(err, result, ctx, config)
  if type(result) == "table" and type(result.uri) == "string" and not result.external and result.uri:match("^file:") then
    local fname = vim.uri_to_fname(result.uri)
    if runs.by_log(state.runs, fname) or state.log_requests > 0 then
      local ok = pcall(ui.open_file, fname, state.opts.log_open)
      if ok then
        state.shown[fname] = true
      end
      return { success = ok }
    end
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
  ["parex/taskEvent"] = M.guarded("parex/taskEvent", on_task_event),
  -- Record first, so that the quickfix list built from them sees the newest ones.
  ["textDocument/publishDiagnostics"] = wrap("textDocument/publishDiagnostics", function(_, result)
    if type(result) == "table" and result.uri then
      state.diagnostics[result.uri] = result.diagnostics or {}
    end
  end, true),
}

--- The server command for a workspace: opts.cmd (a list, or a function(root_dir)), else the
--- workspace's .venv/bin/parex-lsp when present, else `parex-lsp` on PATH.
function M.resolve_cmd(root_dir)
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

local function on_exit(code, signal, client_id)
  vim.schedule(function()
    state.ready[client_id] = nil
    state.waiting[client_id] = nil
    for dir, id in pairs(state.clients) do
      if id == client_id then
        state.clients[dir] = nil
      end
    end
    local plan = state.plan_pending
    if plan and plan.client_id == client_id then
      state.plan_pending = nil
      ui.notify("server exited while drafting a plan", levels.ERROR)
    end
    local lost = 0
    for i = #state.pending, 1, -1 do
      if state.pending[i].client_id == client_id then
        table.remove(state.pending, i)
        lost = lost + 1
      end
    end
    if lost > 0 or (code ~= 0 and code ~= nil) then
      ui.notify(string.format("server exited (code %s, signal %s)", tostring(code), tostring(signal)), levels.ERROR)
    end
    M.redraw()
  end)
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
    cmd = M.resolve_cmd(root_dir),
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
    on_exit = on_exit,
  }
end

--- Start (or reuse) the server for root_dir, attach bufnr (a loaded buffer), then call
--- on_ready(client) once the server is initialized. Returns the client id, or nil.
function M.ensure(root_dir, bufnr, on_ready)
  local config = make_config(root_dir)
  if vim.fn.executable(config.cmd[1]) ~= 1 then
    -- Said once per command (every buffer of the workspace would repeat it), always on a run.
    if on_ready or not state.cmd_warned[config.cmd[1]] then
      state.cmd_warned[config.cmd[1]] = true
      ui.notify("cannot start the server: `" .. config.cmd[1] .. "` is not executable (:checkhealth parex)", levels.ERROR)
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

--- The file of a buffer (absolute), or nil for buffers that are not files.
function M.buf_path(bufnr)
  if vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == "" then
    return nil
  end
  return vim.fn.fnamemodify(name, ":p")
end

--- Attach a buffer when it is a plan, or holds `callN:` lines, under a plan root.
function M.maybe_attach(bufnr)
  local path = M.buf_path(bufnr)
  if not path then
    return
  end
  if not root.is_plan_name(path) and not (state.opts.attach_calls and root.buf_has_calls(bufnr)) then
    return
  end
  local dir = root.find_root(path)
  if dir then
    M.ensure(dir, bufnr)
  end
end

--- The run the statusline follows: the newest run the server told of.
function M.current_run()
  return state.runs.current and state.runs.runs[state.runs.current] or nil
end

--- The client for the current buffer's workspace, or for the current run, or any.
function M.current()
  local path = M.buf_path(vim.api.nvim_get_current_buf())
  local dir = path and root.find_root(path)
  local client = dir and compat.get_client(state.clients[dir])
  if client then
    return client
  end
  local run = M.current_run()
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

return M
