-- :ParexPlan {request}: the workspace's planning agent drafts a plan (parex/plan), which opens in
-- a new unsaved buffer (plan.parex.toml, or plan-N.parex.toml when that name is taken) with what
-- is left of its problems as diagnostics. :ParexPlanCancel stops a draft in progress.
local client = require("parex.client")
local compat = require("parex.compat")
local drafts = require("parex.drafts")
local root = require("parex.root")
local state = require("parex.state")
local ui = require("parex.ui")

local levels = vim.log.levels

local M = {}

local REQUEST_CANCELLED = -32800

--- The namespace of a drafted plan's problems (the server's own diagnostics take over once it is saved).
function M.namespace()
  return vim.api.nvim_create_namespace("parex.plan")
end

local function taken(path)
  return vim.fn.bufexists(path) == 1 or compat.uv.fs_stat(path) ~= nil
end

-- A plan of the workspace to attach the server with: the current buffer when it is one, else
-- the workspace's parex.toml (or its first *.parex.toml), loaded hidden.
local function plan_buffer(dir, bufnr, path)
  if path and root.is_plan_name(path) then
    return bufnr
  end
  local plan = dir .. "/parex.toml"
  if vim.fn.filereadable(plan) ~= 1 then
    plan = vim.fn.glob(dir .. "/*.parex.toml", false, true)[1]
  end
  if not plan then
    return nil
  end
  local buf = vim.fn.bufadd(plan)
  vim.fn.bufload(buf)
  return buf
end

-- The draft in a new split: an unsaved buffer with the plan's name, filetype toml.
local function open_draft(dir, result)
  local path = drafts.free_name(dir, taken)
  vim.cmd("new")
  local buf = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_name(buf, path)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, drafts.lines(result.text))
  vim.bo[buf].filetype = "toml"
  local ns = M.namespace()
  if not result.valid then
    vim.diagnostic.set(ns, buf, drafts.diagnostics(result.problems, vim.api.nvim_buf_line_count(buf)))
  end
  -- Once saved it is a plan like any other: the server lints it from then on.
  vim.api.nvim_create_autocmd("BufWritePost", {
    buffer = buf,
    once = true,
    callback = client.guarded("draft saved", function(ev)
      vim.diagnostic.reset(ns, ev.buf)
      client.maybe_attach(ev.buf)
    end),
  })
  ui.notify(drafts.summary(result, path), result.valid and levels.INFO or levels.WARN)
  return buf
end

local function on_answer(entry, dir)
  return client.guarded("parex/plan", function(err, result)
    if state.plan_pending ~= entry then
      return -- cancelled: whatever comes back is not wanted any more
    end
    state.plan_pending = nil
    client.redraw()
    if err then
      if err.code == REQUEST_CANCELLED then
        ui.notify("plan drafting cancelled", levels.WARN)
        return
      end
      local message = tostring(err.message or err)
      ui.notify("no plan drafted: " .. message, levels.ERROR, "no plan drafted: " .. message)
      return
    end
    if type(result) ~= "table" or type(result.text) ~= "string" then
      ui.notify("parex/plan answered without a plan", levels.ERROR)
      return
    end
    entry.buf = open_draft(dir, result)
    compat.exec_user_autocmd("ParexPlanDone")
  end)
end

--- Ask the workspace's planning agent for a plan. opts: { bufnr?, files? (workspace-relative
--- paths; default the current buffer's file when it lies in the workspace) }.
function M.plan(request, opts)
  opts = opts or {}
  request = vim.trim(request or "")
  if request == "" then
    ui.notify("what should the plan do? :ParexPlan {request}", levels.ERROR)
    return
  end
  if state.plan_pending then
    ui.notify("a plan is being drafted already (:ParexPlanCancel stops it)", levels.WARN)
    return
  end
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  local path = client.buf_path(bufnr)
  local start = path or vim.fn.getcwd()
  local dir = root.find_root(start)
  if not dir then
    ui.notify("no parex.toml at or above " .. start .. ": the planning agent is set there ([run] plan_agent)",
      levels.ERROR)
    return
  end
  local attach = plan_buffer(dir, bufnr, path)
  if not attach then
    ui.notify("no plan file in " .. dir .. " to start the server with", levels.ERROR)
    return
  end
  local files = opts.files
  if files == nil then
    local relative = drafts.relative(dir, path)
    files = relative and { relative } or {}
  end
  local params = { request = request, files = files, uri = vim.uri_from_fname(drafts.free_name(dir, taken)) }
  local entry = { request = request }
  state.plan_pending = entry
  local id = client.ensure(dir, attach, function(c)
    if state.plan_pending ~= entry then
      return
    end
    entry.client_id = c.id
    local ok, request_id = compat.request(c, "parex/plan", params, on_answer(entry, dir), attach)
    if not ok then
      state.plan_pending = nil
      ui.notify("could not send parex/plan (server stopped?)", levels.ERROR)
      return
    end
    entry.request_id = request_id
  end)
  if not id then
    state.plan_pending = nil
    return
  end
  entry.client_id = entry.client_id or id -- a server that exits before it is ready ends the draft too
  ui.notify("drafting a plan… (:ParexPlanCancel stops it)")
  client.redraw()
end

--- Stop the plan being drafted.
function M.cancel()
  local entry = state.plan_pending
  if not entry then
    ui.notify("no plan is being drafted", levels.WARN)
    return
  end
  state.plan_pending = nil
  local c = compat.get_client(entry.client_id)
  if c and entry.request_id then
    compat.cancel_request(c, entry.request_id)
  end
  ui.notify("plan drafting cancelled", levels.WARN)
  client.redraw()
end

return M
