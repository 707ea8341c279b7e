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

-- How long :checkhealth waits for the doctor (each of its checks has a 5 s timeout of its own).
M.doctor_timeout_ms = 60000

-- The buffer :checkhealth was called from: the health buffer is current by then, the one
-- before it is the alternate.
local function origin_file()
  for _, bufnr in ipairs({ vim.api.nvim_get_current_buf(), vim.fn.bufnr("#") }) do
    if bufnr > 0 and vim.api.nvim_buf_is_valid(bufnr) and vim.bo[bufnr].buftype == "" then
      local name = vim.api.nvim_buf_get_name(bufnr)
      if name ~= "" and (vim.fn.filereadable(name) == 1 or vim.fn.isdirectory(name) == 1) then
        return vim.fn.fnamemodify(name, ":p")
      end
    end
  end
  return nil
end

-- Run `cmd` in `cwd`, waiting at most timeout_ms: the outcome parex.doctor.report reads.
local function run_sync(cmd, cwd, timeout_ms)
  local outcome = { cmd = cmd, timeout_s = math.floor(timeout_ms / 1000) }
  local stdout, stderr = {}, {}
  local ok, job = pcall(vim.fn.jobstart, cmd, {
    cwd = cwd,
    stdout_buffered = true,
    stderr_buffered = true,
    on_stdout = function(_, data)
      stdout = data
    end,
    on_stderr = function(_, data)
      stderr = data
    end,
  })
  if not ok or job <= 0 then
    outcome.started = false
    outcome.why = not ok and tostring(job) or (job == -1 and "not executable" or "invalid arguments")
    return outcome
  end
  local code = vim.fn.jobwait({ job }, timeout_ms)[1]
  if code == -1 then
    vim.fn.jobstop(job)
    outcome.timed_out = true
    return outcome
  end
  outcome.code = code
  outcome.stdout = table.concat(stdout, "\n")
  outcome.stderr = table.concat(stderr, "\n")
  return outcome
end

local function decode_json(text)
  return vim.fn.json_decode(text)
end

-- `parex-lsp doctor --json [PLAN]` in the workspace, each of its checks a report line.
local function doctor_section(report, cmd, dir, plan)
  local doctor = require("parex.doctor")
  local outcome = run_sync(doctor.command(cmd, plan), dir, M.doctor_timeout_ms)
  local shown = doctor.report(outcome, decode_json)
  report.start(shown.title)
  for _, item in ipairs(shown.items) do
    if item.advice then
      report[item.level](item.text, item.advice)
    else
      report[item.level](item.text)
    end
  end
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
  -- The buffer checkhealth was called from, else the working directory.
  local file = origin_file()
  local start = file or vim.fn.getcwd()
  local dir = root.find_root(start)
  if dir then
    report.ok("workspace (the nearest directory with a plan): " .. dir)
  else
    dir = vim.fn.getcwd()
    report.info("no parex.toml or *.parex.toml at or above " .. start .. "; checking the command for " .. dir)
  end
  local ok, cmd = pcall(client.resolve_cmd, dir)
  local cmd_ok = ok and type(cmd) == "table" and type(cmd[1]) == "string"
  if not cmd_ok then
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

  if cmd_ok then
    doctor_section(report, cmd, dir, file and root.is_plan_name(file) and file or nil)
  end
end

return M
