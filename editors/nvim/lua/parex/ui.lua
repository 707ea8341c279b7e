-- What the person sees: one-line notifications, the quickfix list, the :ParexStatus buffer,
-- and opening files (logs). Never a hit-enter prompt: a notice longer than the message line
-- is cut to one line, and its whole text waits in :ParexStatus.
local root = require("parex.root")
local runs = require("parex.runs")
local state = require("parex.state")

local M = {}

local levels = vim.log.levels
local KEEP_MESSAGES = 50

local function echospace()
  local space = tonumber(vim.v.echospace) or 0
  if space < 20 then
    space = math.max(20, vim.o.columns - 12)
  end
  return space
end

-- `text` as one line of at most `width` cells: its first line, cut with "..." when longer.
function M.one_line(text, width)
  local first, rest = text:match("^([^\n]*)\n(.*)$")
  local line = first or text
  if rest and rest:match("%S") then
    line = line .. " ..."
  end
  if vim.fn.strdisplaywidth(line) > width then
    line = vim.fn.strcharpart(line, 0, width - 3) .. "..."
    while vim.fn.strdisplaywidth(line) > width do
      line = vim.fn.strcharpart(line, 0, vim.fn.strchars(line) - 4) .. "..."
    end
  end
  return line
end

--- Tell the person `msg` on one line; `detail` (or msg itself, when it had to be shortened)
--- is kept for :ParexStatus.
function M.notify(msg, level, detail)
  local text = "parex: " .. msg
  local line = M.one_line(text, echospace())
  if line ~= text or detail then
    table.insert(state.messages, { text = detail or text, level = level or levels.INFO })
    while #state.messages > KEEP_MESSAGES do
      table.remove(state.messages, 1)
    end
  end
  vim.notify(line, level or levels.INFO, { title = "parex" })
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
  return table.concat(parts, ", ")
end

local function speedup(result)
  return type(result.speedup) == "number" and string.format("%.2fx", result.speedup) or "?"
end

-- The whole summary: "run <id> failed: 1 succeeded, 1 failed; wall 0.6s, work 0.8s, speedup 1.40x".
function M.summary(result)
  local counts = M.count_statuses(result.tasks)
  return string.format(
    "run %s %s: %s; wall %s, work %s, speedup %s",
    tostring(result.runId),
    tostring(result.status),
    counts ~= "" and counts or "no tasks",
    M.seconds(result.wallMs),
    M.seconds(result.workMs),
    speedup(result)
  )
end

-- The notice: "run failed: 1 succeeded, 1 failed, 1.40x".
function M.short_summary(result)
  local counts = M.count_statuses(result.tasks)
  return string.format("run %s: %s, %s", tostring(result.status), counts ~= "" and counts or "no tasks", speedup(result))
end

function M.first_line(text)
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
-- document: source "parex", carrying its id in data, or at a line that names the task.
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

-- The `path:line:col` places in a failed task's output (its whole log, else its tail).
local function output_items(task, info, fallback_dir)
  local lines = {}
  local log = info and info.logPath or (task.logUri and vim.uri_to_fname(task.logUri))
  if log and vim.fn.filereadable(log) == 1 then
    lines = vim.fn.readfile(log, "", 5000)
  elseif info and type(info.tail) == "table" then
    lines = info.tail
  end
  local dir = (info and info.workdir) or fallback_dir
  local items = {}
  for _, loc in ipairs(runs.locations(lines)) do
    local path = loc.path
    if not path:match("^/") and dir then
      path = dir .. "/" .. path
    end
    table.insert(items, {
      filename = path,
      lnum = loc.lnum,
      col = loc.col,
      text = task.id .. ": " .. loc.text,
      type = "E",
    })
  end
  return items
end

--- Quickfix items for the failed (and skipped) tasks of a RunResult: each task at its line of
--- the plan (the server's diagnostic, the range the server gave, or the plan text), then the
--- `path:line:col` places its output names. run: the reducer's record of that run, or nil.
function M.quickfix_items(result, plan_uri, diagnostics, run, workspace)
  local items = {}
  local lines = plan_uri and plan_lines(plan_uri) or {}
  local filename = plan_uri and vim.uri_to_fname(plan_uri) or nil
  for _, task in ipairs(result.tasks or {}) do
    if task.status == "failed" or task.status == "skipped" then
      local info = run and run.tasks[task.id]
      local diag = task_diagnostic(diagnostics, lines, task.id)
      local lnum, col
      if diag then
        lnum, col = diag.range.start.line, diag.range.start.character
      elseif info and info.range then
        lnum, col = info.range.start.line, info.range.start.character
      else
        lnum, col = root.task_line(lines, task.id), 0
      end
      local reason = task.code or (task.exitCode and ("exit code " .. task.exitCode)) or task.status
      local detail = M.first_line(task.error) or (diag and M.first_line(diag.message))
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
      if task.status == "failed" then
        vim.list_extend(items, output_items(task, info, workspace))
      end
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

--- Show a file: jump to a window of this tab that shows it already, else open it with `how`.
function M.open_file(fname, how)
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    local name = vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win))
    if name ~= "" and vim.fn.resolve(name) == vim.fn.resolve(fname) then
      vim.api.nvim_set_current_win(win)
      vim.cmd("silent! checktime")
      return
    end
  end
  vim.cmd((how or "split") .. " " .. vim.fn.fnameescape(fname))
end

---------------------------------------------------------------------------
-- The :ParexStatus buffer
---------------------------------------------------------------------------

M.STATUS_NAME = "parex://status"

--- Fill the `parex://status` scratch buffer with `lines` and show it in a split (a window of
--- this tab that shows it already is reused); the cursor goes there.
function M.show_status(lines)
  local bufnr = vim.fn.bufnr(M.STATUS_NAME)
  if bufnr == -1 or not vim.api.nvim_buf_is_valid(bufnr) then
    bufnr = vim.api.nvim_create_buf(true, true)
    vim.api.nvim_buf_set_name(bufnr, M.STATUS_NAME)
  end
  local bo = vim.bo[bufnr]
  bo.buftype = "nofile"
  bo.bufhidden = "hide"
  bo.swapfile = false
  bo.modifiable = true
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  bo.modifiable = false
  bo.modified = false
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.api.nvim_win_get_buf(win) == bufnr then
      vim.api.nvim_set_current_win(win)
      return bufnr
    end
  end
  vim.cmd("botright sbuffer " .. bufnr)
  vim.api.nvim_win_set_height(0, math.min(math.max(#lines, 3), math.floor(vim.o.lines / 2)))
  return bufnr
end

return M
