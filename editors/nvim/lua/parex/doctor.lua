-- `parex-lsp doctor --json` for :checkhealth parex: the command, and what its answer means as
-- health report lines. Pure (no vim.*): tests/clients/lua/test_pure.lua runs it in luajit.
local M = {}

--- The doctor command from the server command: `doctor --json [PLAN]` in place of `--stdio`.
function M.command(server_cmd, plan)
  local cmd = {}
  for _, word in ipairs(server_cmd) do
    if word ~= "--stdio" then
      table.insert(cmd, word)
    end
  end
  table.insert(cmd, "doctor")
  table.insert(cmd, "--json")
  if plan and plan ~= "" then
    table.insert(cmd, plan)
  end
  return cmd
end

local function first_line(text)
  for line in tostring(text or ""):gmatch("[^\n]+") do
    if line:match("%S") then
      return line
    end
  end
  return nil
end

-- The JSON object in the doctor's stdout: the whole of it, else its last line (whatever a wrapper
-- printed before). nil when there is none.
local function parse(stdout, decode)
  local candidates = { stdout }
  local last
  for line in stdout:gmatch("[^\n]+") do
    if line:match("%S") then
      last = line
    end
  end
  if last and last ~= stdout then
    table.insert(candidates, last)
  end
  for _, text in ipairs(candidates) do
    local ok, value = pcall(decode, text)
    if ok and type(value) == "table" then
      return value
    end
  end
  return nil
end

local function is_list(v)
  return type(v) == "table" and (next(v) == nil or v[1] ~= nil)
end

--- What :checkhealth shows of one doctor run. `outcome`: { cmd (list), started (false when the
--- executable could not start, with `why`), timed_out, timeout_s, code, stdout, stderr };
--- decode(text) parses JSON (raises on bad input). Returns { title, items = { { level =
--- "ok"|"warn"|"error"|"info", text, advice? } } }.
function M.report(outcome, decode)
  local shown = table.concat(outcome.cmd or {}, " ")
  local items = {}
  local function add(level, text, advice)
    table.insert(items, { level = level, text = text, advice = advice })
  end
  if outcome.started == false then
    add("error", "the doctor could not start: `" .. shown .. "`" .. (outcome.why and (": " .. outcome.why) or ""),
      { "check the `cmd` option of setup(), or install parex-lsp (pip install parex-lsp)" })
    return { title = "parex: doctor", items = items }
  end
  if outcome.timed_out then
    add("error", string.format("`%s` did not finish within %ds", shown, outcome.timeout_s or 0),
      { "run it in a terminal to see where it waits" })
    return { title = "parex: doctor", items = items }
  end
  local stdout = tostring(outcome.stdout or "")
  local answer = parse(stdout, decode)
  if not answer or not is_list(answer.checks) or not is_list(answer.problems) then
    local said = first_line(outcome.stderr) or first_line(stdout)
    add("error", string.format("`%s` did not answer JSON (exit code %s)%s", shown, tostring(outcome.code),
      said and (": " .. said) or ""), { "is this parex-lsp recent enough to have `doctor --json`?" })
    return { title = "parex: doctor", items = items }
  end
  local title = "parex: doctor"
  if type(answer.workspace) == "string" then
    title = title .. " (" .. answer.workspace .. ")"
  end
  for _, check in ipairs(answer.checks) do
    local name = tostring(check.name)
    local detail = type(check.detail) == "string" and check.detail or ""
    if check.ok == true then
      add("ok", detail ~= "" and (name .. ": " .. detail) or name)
    elseif check.required == false then
      add("warn", detail ~= "" and (name .. ": " .. detail) or name)
    else
      add("error", name .. " failed", detail ~= "" and { detail } or nil)
    end
  end
  for _, problem in ipairs(answer.problems) do
    add("error", "plan problem: " .. tostring(problem), { "fix the plan (the same problems are its diagnostics)" })
  end
  if #answer.checks == 0 and #answer.problems == 0 then
    if answer.ok == false or (outcome.code or 0) ~= 0 then
      add("error", string.format("`%s` failed (exit code %s) and named no check", shown, tostring(outcome.code)))
    else
      add("info", "the doctor checked nothing")
    end
  end
  return { title = title, items = items }
end

return M
