-- :checkhealth parex — on Neovim 0.7–0.9 (`require("health").report_*`) and on newer ones
-- (`vim.health.start/ok/...`).
local M = {}

local function reporter()
  local h = vim.health
  if not (h and h.start) then
    h = require("health")
  end
  return {
    start = h.start or h.report_start,
    ok = h.ok or h.report_ok,
    info = h.info or h.report_info,
    warn = h.warn or h.report_warn,
    error = h.error or h.report_error,
  }
end

function M.check()
  local report = reporter()
  local state = require("parex.state")
  local root = require("parex.root")
  local client = require("parex.client")

  report.start("parex: Neovim")
  local v = vim.version()
  local version = string.format("%d.%d.%d", v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.7.2") == 1 then
    report.ok("Neovim " .. version)
  else
    report.error("Neovim " .. version .. " is too old", { "parex needs Neovim 0.7.2 or later" })
  end

  report.start("parex: setup")
  if state.setup_done then
    report.ok("require('parex').setup() ran")
  else
    report.warn("require('parex').setup() has not run", { "call it in your init.lua (docs/neovim.md)" })
  end

  report.start("parex: server")
  -- The checkhealth buffer itself (health://) is no file: then the working directory.
  local file = vim.api.nvim_buf_get_name(0)
  local is_file = file ~= "" and (vim.fn.filereadable(file) == 1 or vim.fn.isdirectory(file) == 1)
  local start = is_file and file or vim.fn.getcwd()
  local dir = root.find_root(start)
  if dir then
    report.ok("workspace (the nearest directory with a plan): " .. dir)
  else
    dir = vim.fn.getcwd()
    report.info("no parex.toml or *.parex.toml at or above " .. start .. "; checking the command for " .. dir)
  end
  local ok, cmd = pcall(client.resolve_cmd, dir)
  if not ok or type(cmd) ~= "table" or type(cmd[1]) ~= "string" then
    report.error("the server command could not be made: " .. tostring(cmd), { "check the `cmd` option of setup()" })
  elseif vim.fn.executable(cmd[1]) == 1 then
    report.ok("server command: " .. table.concat(cmd, " "))
  else
    report.error("`" .. cmd[1] .. "` is not executable", {
      "pip install parex-lsp (or pip install -e . in a checkout)",
      "or set cmd = { '/path/to/parex-lsp', '--stdio' } in setup()",
    })
  end

  local running = 0
  for root_dir, id in pairs(state.clients) do
    local c = vim.lsp.get_client_by_id(id)
    if c then
      running = running + 1
      report.ok(string.format("client %d for %s%s", id, root_dir, state.ready[id] and " (initialized)" or " (starting)"))
    end
  end
  if running == 0 then
    report.info("no parex-lsp client is running (it starts when a plan, or a file with callN: lines, is opened)")
  end

  report.start("parex: progress")
  if vim.lsp.handlers["window/workDoneProgress/create"] then
    report.ok("window/workDoneProgress/create has a handler: per-task progress reaches progress plugins")
  else
    report.warn("no default handler for window/workDoneProgress/create")
  end
end

return M
