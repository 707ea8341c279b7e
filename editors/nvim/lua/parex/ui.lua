-- What the user sees of a run: notifications, the statusline, the quickfix list.
local root = require("parex.root")

local M = {}

local levels = vim.log.levels

function M.notify(msg, level)
  vim.notify("parex: " .. msg, level or levels.INFO, { title = "parex" })
end

function M.seconds(ms)
  if type(ms) ~= "number" then
    return "?"
  end
  return string.format("%.1fs", ms / 1000)
end

-- "2 succeeded, 1 failed" for a RunResult's tasks (statuses in a fixed order).
local ORDER = { "succeeded", "failed", "skipped", "cancelled" }

function M.count_statuses(tasks)
  local counts = {}
  for _, task in ipairs(tasks or {}) do
    counts[task.status] = (counts[task.status] or 0) + 1
  end
  local parts = {}
  for _, status in ipairs(ORDER) do
    if counts[status] then
      table.insert(parts, counts[status] .. " " .. status)
      counts[status] = nil
    end
  end
  for status, n in pairs(counts) do
    table.insert(parts, n .. " " .. tostring(status))
  end
  return table.concat(parts, ", "), counts
end

function M.summary(result)
  local counts = M.count_statuses(result.tasks)
  local speedup = type(result.speedup) == "number" and string.format("%.2fx", result.speedup) or "?"
  return string.format(
    "run %s %s: %s; wall %s, work %s, speedup %s",
    tostring(result.runId),
    tostring(result.status),
    counts ~= "" and counts or "no tasks",
    M.seconds(result.wallMs),
    M.seconds(result.workMs),
    speedup
  )
end

local function first_line(text)
  if type(text) ~= "string" then
    return nil
  end
  for line in text:gmatch("[^\n]+") do
    if line:match("%S") then
      return vim.trim(line)
    end
  end
  return nil
end

M.first_line = first_line

local function plan_lines(uri)
  local ok, bufnr = pcall(vim.uri_to_bufnr, uri)
  if ok and bufnr and vim.api.nvim_buf_is_loaded(bufnr) then
    return vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  end
  local fname = vim.uri_to_fname(uri)
  if vim.fn.filereadable(fname) == 1 then
    return vim.fn.readfile(fname)
  end
  return {}
end

-- The server's diagnostic for task `task_id` among the raw LSP diagnostics of the plan
-- document: source "parex", at a line that names the task (or carrying its id in data).
local function task_diagnostic(diagnostics, lines, task_id)
  for _, d in ipairs(diagnostics or {}) do
    if d.source == "parex" and type(d.data) == "table" and d.data.taskId == task_id then
      return d
    end
  end
  for _, d in ipairs(diagnostics or {}) do
    if d.source == "parex" and d.range then
      local line = lines[d.range.start.line + 1]
      if line and root.task_line({ line }, task_id) == 0 then
        return d
      end
    end
  end
  return nil
end

-- Quickfix items for the failed (and skipped) tasks of a RunResult. The line comes from
-- the server's diagnostic for the task when there is one, else from the plan text.
function M.quickfix_items(result, plan_uri, diagnostics)
  local items = {}
  local lines = plan_uri and plan_lines(plan_uri) or {}
  local filename = plan_uri and vim.uri_to_fname(plan_uri) or nil
  for _, task in ipairs(result.tasks or {}) do
    if task.status == "failed" or task.status == "skipped" then
      local diag = task_diagnostic(diagnostics, lines, task.id)
      local lnum, col
      if diag then
        lnum, col = diag.range.start.line, diag.range.start.character
      else
        lnum, col = root.task_line(lines, task.id), 0
      end
      local reason = task.code or (task.exitCode and ("exit code " .. task.exitCode)) or task.status
      local detail = first_line(task.error) or (diag and first_line(diag.message))
      local text = string.format("%s %s (%s)", task.id, task.status, reason)
      if detail then
        text = text .. ": " .. detail
      end
      local item = {
        lnum = (lnum or 0) + 1,
        col = (col or 0) + 1,
        text = text,
        type = task.status == "failed" and "E" or "W",
      }
      if filename then
        item.filename = filename
      elseif task.logUri then
        item.filename = vim.uri_to_fname(task.logUri)
        item.lnum, item.col = 1, 1
      end
      table.insert(items, item)
    end
  end
  return items
end

local QF_TITLE = "parex"

local function current_qf_is_ours()
  local info = vim.fn.getqflist({ title = 0 })
  return type(info.title) == "string" and info.title:sub(1, #QF_TITLE) == QF_TITLE
end

-- Put `items` in the quickfix list: a new list for a run with failures; an empty run
-- only clears a list that parex made.
function M.set_quickfix(items, title, open)
  if #items == 0 then
    if current_qf_is_ours() then
      vim.fn.setqflist({}, "r", { title = QF_TITLE .. ": " .. title, items = {} })
    end
    return
  end
  local action = current_qf_is_ours() and "r" or " "
  vim.fn.setqflist({}, action, { title = QF_TITLE .. ": " .. title, items = items })
  if open then
    vim.cmd("botright copen")
    vim.cmd("wincmd p")
  end
end

return M
