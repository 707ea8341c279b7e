-- parex for Neovim: starts `parex-lsp` for workspaces that hold a plan, runs plans
-- (`:ParexRun`), shows per-task news and the run's outcome, puts failed tasks and the errors
-- of their output in the quickfix list, and shows the answers of model tasks side by side
-- (`:ParexAnswers`). Works on Neovim 0.7.2 through 0.11.
--
-- client.lua starts and attaches the server and feeds `parex/taskEvent` to runs.lua (a pure
-- reducer); commands.lua holds the commands; ui.lua what the person sees.
local client = require("parex.client")
local commands = require("parex.commands")
local compat = require("parex.compat")
local options = require("parex.options")
local planning = require("parex.planning")
local runs = require("parex.runs")
local state = require("parex.state")

local M = {}

local defaults = {
  -- Server command: a list, or a function(root_dir) returning one. Default: the
  -- workspace's .venv/bin/parex-lsp when present, else `parex-lsp` on PATH.
  cmd = nil,
  -- Attach to every buffer under a plan root that holds `callN:` lines (plan files always).
  attach_calls = true,
  -- Write a modified plan buffer before running it (the agents work on the files on disk).
  autowrite = true,
  -- A one-line notification when each task starts and ends; the run's outcome is always told.
  notify_tasks = true,
  -- Open the quickfix window when a run has failed tasks.
  open_quickfix = false,
  -- How :ParexLog opens the log: "split", "vsplit", "tabedit" or "edit".
  log_open = "split",
  -- Open the answers of a run's model tasks (a callN: fan-out) in a vertical split when it ends.
  open_answers = true,
  -- Where parex/run runs the tasks: "local" (the server's own processes) or "ray" (a Ray cluster
  -- at ray_address, e.g. "ray://head:10001"); nil leaves it to the server and the plan.
  executor = nil,
  ray_address = nil,
  -- Passed through to the client.
  on_attach = nil,
  capabilities = nil,
  init_options = nil,
  settings = nil,
}

M._state = state
M.defaults = defaults

M.run = commands.run
M.cancel = commands.cancel
M.status = commands.status
M.log = commands.log
M.answers = commands.answers
M.task_ids = commands.task_ids
M.plan = planning.plan
M.plan_cancel = planning.cancel

--- A short text for the statusline: the run in progress, or the last one's outcome;
--- "" before any run.
function M.statusline()
  if state.plan_pending and not (client.current_run() and not client.current_run().result) then
    return "parex: drafting a plan…"
  end
  return runs.statusline(client.current_run(), compat.now())
end

function M.setup(opts)
  state.opts = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  if opts and opts.cmd then
    state.opts.cmd = opts.cmd -- lists are not merged
  end
  -- A bad option is told and left out (the server's default instead): a typo must not stop the plugin.
  for _, problem in ipairs(options.problems(state.opts)) do
    vim.notify("parex: " .. problem.text, vim.log.levels.ERROR, { title = "parex" })
    state.opts[problem.option] = nil
  end
  commands.create()
  require("parex.review").create()
  local group = vim.api.nvim_create_augroup("parex", { clear = true })
  vim.api.nvim_create_autocmd({ "BufReadPost", "BufNewFile" }, {
    group = group,
    callback = client.guarded("attach", function(ev)
      client.maybe_attach(ev.buf)
    end),
  })
  -- Buffers already open when setup runs (e.g. `nvim parex.toml` with a lazy-loaded plugin).
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) then
      client.guarded("attach", client.maybe_attach)(bufnr)
    end
  end
  state.setup_done = true
end

return M
