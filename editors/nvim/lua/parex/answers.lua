-- The answers of a run's model tasks (a `callN:` fan-out), side by side: a markdown scratch
-- buffer `parex://answers/<runId>` in a vertical split, one section per task in plan order.
local ui = require("parex.ui")

local M = {}

-- True when at least one task of the RunResult carries a model's answer.
function M.has_answers(result)
  for _, task in ipairs(type(result) == "table" and result.tasks or {}) do
    if type(task.answer) == "string" then
      return true
    end
  end
  return false
end

-- The result with the answers of the tasks a resume kept (`reusedFrom`), taken from that
-- earlier run's result when earlier(runId) knows it and the result itself lacks them.
function M.with_earlier(result, earlier)
  local tasks, changed = {}, false
  for i, task in ipairs(result.tasks or {}) do
    tasks[i] = task
    if type(task.reusedFrom) == "string" and task.answer == nil then
      local before = earlier(task.reusedFrom)
      for _, t in ipairs(before and before.tasks or {}) do
        if t.id == task.id and type(t.answer) == "string" then
          tasks[i] = vim.tbl_extend("force", task, { answer = t.answer })
          changed = true
        end
      end
    end
  end
  if not changed then
    return result
  end
  return vim.tbl_extend("force", result, { tasks = tasks })
end

function M.title(run_id)
  return "parex answers — " .. tostring(run_id)
end

function M.buf_name(run_id)
  return "parex://answers/" .. tostring(run_id)
end

local function count(n)
  local s = tostring(math.floor(n + 0.5))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

local function cost(usd)
  if usd < 1 then
    return string.format("$%.4f", usd)
  end
  return string.format("$%.2f", usd)
end

local function number(v)
  return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
end

-- "1,200 prompt + 340 completion tokens · $0.0019"; "" when there is nothing to say (none, or all zero).
function M.format_usage(usage)
  if type(usage) ~= "table" then
    return ""
  end
  local any = false
  for _, key in ipairs({ "promptTokens", "completionTokens", "costUsd" }) do
    any = any or (number(usage[key]) and usage[key] > 0)
  end
  if not any then
    return ""
  end
  local tokens = {}
  if number(usage.promptTokens) then
    table.insert(tokens, count(usage.promptTokens) .. " prompt")
  end
  if number(usage.completionTokens) then
    table.insert(tokens, count(usage.completionTokens) .. " completion")
  end
  local parts = {}
  if #tokens > 0 then
    table.insert(parts, table.concat(tokens, " + ") .. " tokens")
  end
  if number(usage.costUsd) and usage.costUsd >= 0 then
    table.insert(parts, cost(usage.costUsd))
  end
  return table.concat(parts, " · ")
end

local function split(text)
  return vim.split(text, "\r?\n")
end

local function rstrip(text)
  return (text:gsub("%s+$", ""))
end

local function add(out, lines)
  for _, line in ipairs(lines) do
    table.insert(out, line)
  end
end

-- The prompt as a markdown block quote.
local function quote(prompt)
  local out = {}
  for _, line in ipairs(split(rstrip(prompt))) do
    table.insert(out, line:match("%S") and ("> " .. line) or ">")
  end
  return out
end

local function section(task, prompt)
  local out = { "## " .. tostring(task.id), "" }
  if type(prompt) == "string" and prompt:match("%S") then
    add(out, quote(prompt))
    table.insert(out, "")
  end
  local failed = task.status ~= "succeeded"
  if failed then
    local why = type(task.code) == "string" and task.code
      or (type(task.exitCode) == "number" and ("exit " .. task.exitCode))
      or nil
    local head = "**" .. tostring(task.status) .. "**" .. (why and (" (" .. why .. ")") or "")
    if type(task.error) == "string" and task.error:match("%S") then
      local err = rstrip(task.error)
      if err:find("\n") then
        add(out, { head .. ":", "", "```text" })
        add(out, split(err))
        add(out, { "```", "" })
      else
        add(out, { head .. ": " .. err, "" })
      end
    else
      add(out, { head, "" })
    end
  end
  if type(task.answer) == "string" then
    if type(task.reusedFrom) == "string" then
      add(out, { "_kept from run " .. task.reusedFrom .. "_", "" })
    end
    if task.answer:match("%S") then
      add(out, split(rstrip(task.answer)))
    else
      table.insert(out, "_(the model answered with no text)_")
    end
    table.insert(out, "")
  elseif not failed then
    if type(task.reusedFrom) == "string" then
      table.insert(out, "_succeeded in run " .. task.reusedFrom .. "; no answer kept_")
    else
      table.insert(out, "_succeeded; no answer (not a model task)_")
    end
    table.insert(out, "")
  end
  local usage = M.format_usage(task.usage)
  if usage ~= "" then
    add(out, { "*" .. usage .. "*", "" })
  end
  return out
end

-- The lines of the answers document of a RunResult. opts: { label?, prompts? = {taskId = prompt} }
function M.lines(result, opts)
  opts = opts or {}
  local prompts = opts.prompts or {}
  local summary = {}
  if type(opts.label) == "string" and opts.label ~= "" then
    table.insert(summary, opts.label)
  end
  local counts = ui.count_statuses(result.tasks)
  table.insert(summary, (counts ~= "" and counts or "no tasks") .. " in " .. ui.seconds(result.wallMs))
  local usage = M.format_usage(result.usage)
  if usage ~= "" then
    table.insert(summary, usage)
  end
  local out = { "# " .. M.title(result.runId), "", table.concat(summary, " · "), "" }
  for _, task in ipairs(result.tasks or {}) do
    add(out, section(task, prompts[task.id]))
  end
  while #out > 0 and out[#out] == "" do
    table.remove(out)
  end
  return out
end

-- The prompts of a run's tasks as the server gave them (runStarted's data.tasks):
-- { taskId = prompt }; empty when the server named no prompts.
function M.prompts(run)
  local prompts = {}
  for _, id in ipairs(run and run.order or {}) do
    local prompt = run.tasks[id].prompt
    if type(prompt) == "string" then
      prompts[id] = prompt
    end
  end
  return prompts
end

-------------------------------------------------------------------------
-- The scratch buffer
---------------------------------------------------------------------------

local KEEP = 10
local buffers = {} -- runId -> bufnr
local order = {} -- runIds, oldest first
local results = {} -- runId -> a RunResult with answers (those of kept tasks filled in)
local result_order = {} -- runIds, oldest first

-- Keep a result with answers: a later resume of its run takes its kept tasks' answers from it.
function M.remember(result)
  if results[result.runId] == nil then
    table.insert(result_order, result.runId)
  end
  results[result.runId] = result
  while #result_order > 20 do
    results[table.remove(result_order, 1)] = nil
  end
end

-- The result remembered for run_id, or nil.
function M.result(run_id)
  return results[run_id]
end

local function shown_in(bufnr)
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_buf(win) == bufnr then
      return true
    end
  end
  return false
end

-- Old answers buffers go, unless a window shows them.
local function forget_old()
  local i = 1
  while #order - (i - 1) > KEEP and i <= #order do
    local run_id = order[i]
    local bufnr = buffers[run_id]
    if bufnr and vim.api.nvim_buf_is_valid(bufnr) and shown_in(bufnr) then
      i = i + 1
    else
      table.remove(order, i)
      buffers[run_id] = nil
      if bufnr and vim.api.nvim_buf_is_valid(bufnr) then
        pcall(vim.api.nvim_buf_delete, bufnr, { force = true })
      end
    end
  end
end

local function buffer_for(run_id)
  local bufnr = buffers[run_id]
  if bufnr and vim.api.nvim_buf_is_valid(bufnr) then
    return bufnr
  end
  bufnr = vim.api.nvim_create_buf(true, true)
  vim.api.nvim_buf_set_name(bufnr, M.buf_name(run_id))
  buffers[run_id] = bufnr
  table.insert(order, run_id)
  forget_old()
  return bufnr
end

function M.bufnr(run_id)
  local bufnr = buffers[run_id]
  if bufnr and vim.api.nvim_buf_is_valid(bufnr) then
    return bufnr
  end
  return nil
end

-- Fill the answers buffer of `result` and show it in a vertical split (a window of this tab
-- that shows it already is reused). focus: move the cursor there; else stay where it is.
function M.open(result, opts, focus)
  local bufnr = buffer_for(result.runId)
  local bo = vim.bo[bufnr]
  bo.buftype = "nofile"
  bo.bufhidden = "hide"
  bo.swapfile = false
  bo.modifiable = true
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, M.lines(result, opts))
  bo.modifiable = false
  bo.modified = false
  if bo.filetype ~= "markdown" then
    bo.filetype = "markdown"
  end

  local win
  for _, w in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.api.nvim_win_get_buf(w) == bufnr then
      win = w
      break
    end
  end
  if win then
    if focus then
      vim.api.nvim_set_current_win(win)
    end
    return bufnr, win
  end
  local from = vim.api.nvim_get_current_win()
  vim.cmd("vertical sbuffer " .. bufnr)
  win = vim.api.nvim_get_current_win()
  vim.wo[win].wrap = true
  vim.wo[win].linebreak = true
  if not focus and vim.api.nvim_win_is_valid(from) then
    vim.api.nvim_set_current_win(from)
  end
  return bufnr, win
end

return M
