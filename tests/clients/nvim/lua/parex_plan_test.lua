-- Headless tests of :checkhealth parex's doctor section and of :ParexPlan, against the real
-- parex-lsp (and, for :ParexPlan, the local OpenAI stand-in as the planning agent); the
-- workspaces are made by tests/clients/test_nvim_plan.py. Prints "ok - ..." lines.
local h = require("parex_headless")
local check, out, wait = h.check, h.out, h.wait

local M = {}

---------------------------------------------------------------------------
-- :checkhealth parex
---------------------------------------------------------------------------

-- The doctor's section of :checkhealth parex run from `file` (the last section).
local function doctor_section(file)
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  vim.cmd("checkhealth parex")
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  vim.cmd("tabclose")
  for i, line in ipairs(lines) do
    if line:find("parex: doctor", 1, true) then
      return table.concat(vim.list_slice(lines, i), "\n")
    end
  end
  check(false, "no doctor section in :checkhealth parex:\n" .. table.concat(lines, "\n"))
end

-- A report line of the doctor's section: `level` (OK, WARNING, ERROR) then `text`, as 0.7's
-- "- ERROR: text" and 0.10+'s "- ❌ ERROR text" write it.
local function has(section, level, text)
  for line in section:gmatch("[^\n]+") do
    local at = line:find(level, 1, true)
    if at and line:find(text, at, true) then
      return true
    end
  end
  return false
end

local function count(section, level)
  local n = 0
  for line in section:gmatch("[^\n]+") do
    if line:match("^%s*%-[^%w]*" .. level) then
      n = n + 1
    end
  end
  return n
end

local function health(healthy, failing)
  local parex = require("parex")
  parex.setup({ cmd = h.server_cmd() })

  -- A git workspace whose plan's agent is the shell: every check passes.
  local section = doctor_section(healthy .. "/parex.toml")
  check(section:find("parex: doctor (" .. healthy .. ")", 1, true), "no workspace in the title:\n" .. section)
  for _, name in ipairs({ "agent shell: runs prompts with ", "git repository: ", "git commit: ", "git branch: ",
    "git clean: no uncommitted changes", "lock registry: " }) do
    check(has(section, "OK", name), "no OK line " .. name .. ":\n" .. section)
  end
  check(count(section, "ERROR") == 0 and count(section, "WARNING") == 0, "a healthy workspace:\n" .. section)
  out("ok - checkhealth: the doctor's checks of a healthy workspace, each OK (" .. count(section, "OK") .. ")")

  -- An agent whose executable is not there: an error with the doctor's advice; no git: warnings.
  section = doctor_section(failing .. "/parex.toml")
  check(has(section, "ERROR", "agent ghost failed"), "no error for the missing agent:\n" .. section)
  check(section:find("`no-such-agent-parex` not found on PATH: install it", 1, true),
    "the doctor's advice is not shown:\n" .. section)
  check(has(section, "WARNING", "git repository: "), "no git warning:\n" .. section)
  check(has(section, "OK", "agent shell: "), "the shell agent:\n" .. section)
  out("ok - checkhealth: a missing agent executable is an error with the doctor's advice, no git a warning")

  -- An invalid plan: each problem an error, with its place.
  section = doctor_section(failing .. "/broken.parex.toml")
  check(has(section, "ERROR", "broken.parex.toml:8:1: task `twice` depends on unknown task `missing`"),
    "the unknown dependency:\n" .. section)
  check(has(section, "ERROR", "broken.parex.toml:11:1: duplicate task id `twice`"), "the duplicate id:\n" .. section)
  check(count(section, "ERROR") == 2 and count(section, "OK") == 0, "only the plan's problems:\n" .. section)
  out("ok - checkhealth: an invalid plan's problems, one error each")

  -- A server command that cannot start, and one that answers no JSON.
  parex.setup({ cmd = { failing .. "/no-such-parex-lsp", "--stdio" } })
  section = doctor_section(failing .. "/parex.toml")
  check(has(section, "ERROR", "the doctor could not start: `" .. failing .. "/no-such-parex-lsp doctor --json "),
    "a command that cannot start:\n" .. section)
  parex.setup({ cmd = { "/bin/echo", "--stdio" } })
  section = doctor_section(failing .. "/parex.toml")
  check(has(section, "ERROR", "`/bin/echo doctor --json " .. failing .. "/parex.toml` did not answer JSON (exit code 0): "
    .. "doctor --json"), "a command that answers no JSON:\n" .. section)
  out("ok - checkhealth: a doctor that cannot start, or answers no JSON, is an error saying so")
end

---------------------------------------------------------------------------
-- setup() executor and ray_address
---------------------------------------------------------------------------

-- What the plugin sends in parex/run (the server may refuse what it does not know yet).
local function executor_options(ws)
  local parex = require("parex")
  local compat = require("parex.compat")
  local before = #h.notifications
  parex.setup({ cmd = h.server_cmd(), executor = "k8s" })
  check(h.notifications[before + 1] and h.notifications[before + 1].msg
    == 'parex: setup(): executor must be "local" or "ray", not "k8s"', "a bad executor is not told")
  check(parex._state.opts.executor == nil, "the bad executor was kept")

  parex.setup({ cmd = h.server_cmd(), executor = "local", ray_address = "ray://127.0.0.1:10001" })
  local sent
  local request = compat.request
  compat.request = function(c, method, params, ...)
    if method == "parex/run" then
      sent = vim.deepcopy(params)
    end
    return request(c, method, params, ...)
  end
  vim.cmd("edit " .. vim.fn.fnameescape(ws .. "/parex.toml"))
  vim.cmd("ParexRun")
  wait(function()
    return sent ~= nil
  end, "parex/run to be sent")
  compat.request = request
  check(sent.executor == "local" and sent.rayAddress == "ray://127.0.0.1:10001", "parex/run params: " .. vim.inspect(sent))
  out("ok - setup() executor and ray_address are sent in parex/run as executor and rayAddress; a bad one is told")
end

---------------------------------------------------------------------------
-- :ParexPlan
---------------------------------------------------------------------------

local function buffer_named(path)
  local bufnr = vim.fn.bufnr(path)
  return bufnr ~= -1 and bufnr or nil
end

local function draft_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
end

-- The workspace holds plan.parex.toml already: the draft is plan-2.parex.toml, and the file stays.
local function plan_valid(ws)
  local parex = require("parex")
  parex.setup({ cmd = h.server_cmd() })
  local existing = vim.fn.readfile(ws .. "/plan.parex.toml")
  vim.cmd("edit " .. vim.fn.fnameescape(ws .. "/docs/architecture.md"))
  local windows = #vim.api.nvim_tabpage_list_wins(0)
  vim.cmd("ParexPlan add rate limiting to the API")
  local line = parex.statusline()
  check(line == "parex: drafting a plan…", "statusline while drafting: " .. line)
  local told = h.notifications[#h.notifications]
  check(told and told.msg:find("parex: drafting a plan…", 1, true) == 1, "no progress message: " .. vim.inspect(told))
  out("ok - :ParexPlan: drafting a plan… told, and in the statusline")

  local path = ws .. "/plan-2.parex.toml"
  wait(function()
    return buffer_named(path) ~= nil
  end, "the draft buffer " .. path)
  local bufnr = buffer_named(path)
  check(vim.api.nvim_get_current_buf() == bufnr and #vim.api.nvim_tabpage_list_wins(0) == windows + 1,
    "the draft is not in a new split")
  local text = draft_text(bufnr)
  check(text:find('id = "limiter"', 1, true) and text:find('id = "wire"', 1, true), "the draft:\n" .. text)
  check(not text:find("wizard", 1, true), "the first (invalid) draft was opened:\n" .. text)
  check(text:find('plan_agent = "planner"', 1, true), "the workspace's configuration is not in the draft:\n" .. text)
  check(vim.bo[bufnr].filetype == "toml", "filetype " .. vim.bo[bufnr].filetype)
  check(vim.bo[bufnr].modified, "the draft buffer is not modified (unsaved)")
  check(vim.fn.filereadable(path) == 0, "the draft was written to disk")
  check(vim.deep_equal(vim.fn.readfile(ws .. "/plan.parex.toml"), existing), "plan.parex.toml was changed")
  local ns = require("parex.planning").namespace()
  check(#vim.diagnostic.get(bufnr, { namespace = ns }) == 0, "a valid draft has diagnostics")
  told = h.notifications[#h.notifications]
  check(told.msg:find("parex: plan drafted in 2 drafts: plan-2.parex.toml", 1, true) == 1, "told: " .. told.msg)
  check(parex.statusline() == "", "statusline after the draft: " .. parex.statusline())
  out("ok - :ParexPlan opened the valid plan after 2 rounds in plan-2.parex.toml, unsaved, filetype toml")

  -- Saved, it is a plan like any other: the server lints it.
  vim.cmd("write")
  check(vim.fn.filereadable(path) == 1, "not written")
  wait(function()
    local id = parex._state.clients[ws]
    return id ~= nil and vim.lsp.buf_is_attached(bufnr, id)
  end, "the saved draft to be attached to the server")
  out("ok - the saved draft is attached to the server")
end

-- The stand-in always answers a plan with a cycle and an unknown agent; the first request
-- ("slowly") is answered late and cancelled before.
local function plan_invalid(ws)
  local parex = require("parex")
  parex.setup({ cmd = h.server_cmd() })
  vim.cmd("edit " .. vim.fn.fnameescape(ws .. "/parex.toml"))
  vim.cmd("ParexPlan draft slowly")
  wait(function()
    local p = parex._state.plan_pending
    return p ~= nil and p.request_id ~= nil
  end, "the slow parex/plan request to be sent")
  vim.wait(1000) -- the server asks the model meanwhile (test_nvim_plan.py checks that it did)
  vim.cmd("ParexPlanCancel")
  check(parex._state.plan_pending == nil and parex.statusline() == "", "still drafting after :ParexPlanCancel")
  check(h.notifications[#h.notifications].msg == "parex: plan drafting cancelled", "cancel not told")
  out("ok - :ParexPlanCancel stopped the draft in progress")

  local cancelled_at = vim.loop.hrtime()
  vim.cmd("ParexPlan add rate limiting")
  local path = ws .. "/plan.parex.toml"
  wait(function()
    return buffer_named(path) ~= nil
  end, "the draft buffer " .. path)
  local bufnr = buffer_named(path)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local wizard
  for i, line in ipairs(lines) do
    if line:find('agent = "wizard"', 1, true) then
      wizard = i - 1
    end
  end
  check(wizard, "the invalid draft is not in the buffer:\n" .. table.concat(lines, "\n"))
  local ns = require("parex.planning").namespace()
  local diags = vim.diagnostic.get(bufnr, { namespace = ns })
  local unknown, cycle
  for _, d in ipairs(diags) do
    if d.message:find("wizard", 1, true) then
      unknown = d
    elseif d.message:find("cycle", 1, true) then
      cycle = d
    end
  end
  check(unknown and unknown.lnum == wizard and unknown.severity == vim.diagnostic.severity.ERROR,
    "the unknown agent's diagnostic at line " .. tostring(wizard) .. ": " .. vim.inspect(diags))
  check(cycle and cycle.lnum >= 0 and cycle.lnum < #lines, "the cycle's diagnostic: " .. vim.inspect(diags))
  check(#vim.diagnostic.get(bufnr) == #diags, "diagnostics outside the plan namespace")
  local told = h.notifications[#h.notifications]
  check(told.msg:find("parex: plan drafted with " .. #diags .. " problems left after 3 drafts", 1, true) == 1,
    "told: " .. told.msg)
  out(string.format("ok - the invalid draft holds its %d problems as diagnostics (unknown agent at line %d)", #diags,
    wizard + 1))

  -- The cancelled request's late answer (3 s after it was asked) opens nothing.
  vim.wait(math.max(0, 3500 - (vim.loop.hrtime() - cancelled_at) / 1e6))
  check(buffer_named(ws .. "/plan-2.parex.toml") == nil, "the cancelled draft was opened")
  out("ok - the cancelled draft's answer was ignored")
end

function M.run(which)
  h.main(function()
    if which == "health" then
      health(h.dir_env("PAREX_TEST_HEALTHY"), h.dir_env("PAREX_TEST_FAILING"))
      executor_options(h.dir_env("PAREX_TEST_HEALTHY"))
    elseif which == "plan_valid" then
      plan_valid(h.dir_env("PAREX_TEST_WORKSPACE"))
    elseif which == "plan_invalid" then
      plan_invalid(h.dir_env("PAREX_TEST_WORKSPACE"))
    else
      check(false, "no such test: " .. tostring(which))
    end
  end)
end

return M
