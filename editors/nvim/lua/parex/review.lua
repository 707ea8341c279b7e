-- Review-mode runs (docs/review.md): :ParexDiff {task} shows a ready task's change, and
-- :ParexAccept / :ParexReject {task} and :ParexRetry {task} {feedback} decide it, for the run
-- the statusline follows (parex/diff and parex/review).
local client = require("parex.client")
local compat = require("parex.compat")
local runs = require("parex.runs")
local ui = require("parex.ui")

local levels = vim.log.levels

local M = {}

local function with_run(what, task_id, fn)
  if not task_id or task_id == "" then
    ui.notify("which task? :" .. what .. " {task}", levels.ERROR)
    return
  end
  local run = client.current_run()
  local c = client.current()
  if not run or not c then
    ui.notify("no run to review", levels.WARN)
    return
  end
  fn(c, run)
end

--- The unified diff of a task's branch against where it started, in a parex://diff buffer.
function M.diff(task_id)
  with_run("ParexDiff", task_id, function(c, run)
    local params = { runId = run.id, taskId = task_id }
    compat.request(c, "parex/diff", params, client.guarded("parex/diff", function(err, result)
      if err or type(result) ~= "table" then
        ui.notify("no diff for " .. task_id .. ": " .. tostring(err and err.message or err), levels.ERROR)
        return
      end
      vim.cmd("split")
      local buf = vim.api.nvim_create_buf(false, true)
      vim.api.nvim_win_set_buf(0, buf)
      pcall(vim.api.nvim_buf_set_name, buf, "parex://diff/" .. run.id .. "/" .. task_id)
      local lines = vim.split(result.diff or "", "\n", { plain = true })
      if lines[#lines] == "" then
        table.remove(lines)
      end
      vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
      vim.bo[buf].filetype = "diff"
      vim.bo[buf].modifiable = false
      vim.bo[buf].bufhidden = "wipe"
      M.last_diff = { task = task_id, files = #(result.files or {}), buf = buf }
    end))
  end)
end

--- accept | reject | retry (feedback required) a ready task.
function M.decide(task_id, action, feedback)
  local names = { accept = "ParexAccept", reject = "ParexReject", retry = "ParexRetry" }
  with_run(names[action], task_id, function(c, run)
    if action == "retry" and (not feedback or feedback == "") then
      ui.notify("retry needs feedback: :ParexRetry {task} {what to do differently}", levels.ERROR)
      return
    end
    local params = { runId = run.id, taskId = task_id, action = action, feedback = feedback }
    compat.request(c, "parex/review", params, client.guarded("parex/review", function(err, result)
      if err then
        ui.notify(action .. " " .. task_id .. " failed: " .. tostring(err.message or err), levels.ERROR)
        return
      end
      local status = type(result) == "table" and result.status or "?"
      ui.notify(task_id .. ": " .. tostring(status), status == "failed" and levels.ERROR or levels.INFO)
      M.last_decision = { task = task_id, action = action, status = status }
    end))
  end)
end

--- Ids of the current run's tasks that are ready for review (for completion).
function M.ready_ids()
  local run = client.current_run()
  local ids = {}
  for _, id in ipairs(runs.task_ids(run)) do
    if run.tasks[id] and run.tasks[id].status == "ready" then
      table.insert(ids, id)
    end
  end
  return ids
end

function M.create()
  local cmd = vim.api.nvim_create_user_command
  cmd("ParexDiff", function(args)
    M.diff(args.args)
  end, { nargs = 1, complete = M.ready_ids, desc = "parex: a ready task's change" })
  cmd("ParexAccept", function(args)
    M.decide(args.args, "accept")
  end, { nargs = 1, complete = M.ready_ids, desc = "parex: merge a ready task" })
  cmd("ParexReject", function(args)
    M.decide(args.args, "reject")
  end, { nargs = 1, complete = M.ready_ids, desc = "parex: reject a ready task (its branch is kept)" })
  cmd("ParexRetry", function(args)
    local task_id, feedback = args.args:match("^%s*(%S+)%s*(.*)$")
    M.decide(task_id, "retry", feedback)
  end, { nargs = "+", complete = M.ready_ids, desc = "parex: run a ready task again with feedback" })
end

return M
