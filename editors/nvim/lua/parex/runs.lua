-- Runs and tasks as the server tells them: a reducer over `parex/taskEvent` notifications.
--
--   state = runs.apply(state, event)
--
-- Pure Lua (no vim API), tested with a plain Lua interpreter (tests/clients/lua). Everything
-- the plugin shows of a run in progress (statusline, notifications, :ParexStatus, the log
-- paths) comes from here; events arrive in the order the server sent them, which progress
-- notifications do not (their tokens are created with a round trip).
local M = {}

M.TERMINAL = { succeeded = true, failed = true, skipped = true, cancelled = true, rejected = true }

-- How many runs are remembered (the oldest are forgotten first).
M.KEEP = 20

-- Status of a task by the kind of the event that changed it.
local STATUS = {
  queued = "queued",
  started = "running",
  retrying = "retrying",
  lockWait = "waiting",
  ready = "ready",
  succeeded = "succeeded",
  failed = "failed",
  skipped = "skipped",
  cancelled = "cancelled",
  rejected = "rejected",
}

-- Fields of a terminal event's data kept on the task.
local END_FIELDS = { "durationMs", "exitCode", "code", "reason", "tail", "logPath", "usage", "answer", "reusedFrom" }

function M.new()
  return { runs = {}, order = {}, current = nil }
end

local function str(v)
  return type(v) == "string" and v or nil
end

local function tbl(v)
  return type(v) == "table" and v or nil
end

local function forget_old(state)
  while #state.order > M.KEEP do
    local old = table.remove(state.order, 1)
    state.runs[old] = nil
  end
end

-- The run `run_id`, made when this is its first news.
function M.run(state, run_id)
  local run = state.runs[run_id]
  if not run then
    run = { id = run_id, status = "running", tasks = {}, order = {} }
    state.runs[run_id] = run
    table.insert(state.order, run_id)
    forget_old(state)
  end
  return run
end

local function task(run, task_id)
  local t = run.tasks[task_id]
  if not t then
    t = { id = task_id, status = "pending", attempt = 0 }
    run.tasks[task_id] = t
    table.insert(run.order, task_id)
  end
  return t
end

-- runStarted's data.tasks: task ids (older servers) or {id, prompt, agent, range, logPath}.
local function plan_tasks(run, list)
  for _, entry in ipairs(tbl(list) or {}) do
    local id = str(entry) or (tbl(entry) and str(entry.id))
    if id then
      local t = task(run, id)
      if tbl(entry) then
        t.prompt = str(entry.prompt) or t.prompt
        t.agent = str(entry.agent) or t.agent
        -- An LSP range, or null (vim.NIL inside Neovim) for a task without a place.
        local range = tbl(entry.range)
        t.range = (range and tbl(range.start) and range) or t.range
        t.logPath = str(entry.logPath) or t.logPath
      end
    end
  end
  run.total = #run.order
end

local function run_event(run, kind, data)
  if kind == "runStarted" then
    run.plan = str(data.plan) or run.plan
    run.maxConcurrency = data.maxConcurrency
    run.resumedFrom = str(data.resumedFrom)
    plan_tasks(run, data.tasks)
  elseif kind == "runFinished" then
    run.status = str(data.status) or "finished"
    run.result = data
    for _, r in ipairs(tbl(data.tasks) or {}) do
      if tbl(r) and str(r.id) then
        local t = task(run, r.id)
        t.status = str(r.status) or t.status
        t.logUri = str(r.logUri) or t.logUri
      end
    end
  end
end

local function task_event(run, t, kind, ev, data)
  local attempt = tonumber(ev.attempt)
  if attempt and attempt > t.attempt then
    t.attempt = attempt
  end
  if kind == "output" then
    local last = str(data.last)
    if last and last:match("%S") then
      t.lastLine = last
    end
    return
  end
  if kind == "usage" then
    t.usage = data
    return
  end
  if kind == "merged" then
    t.merged = str(data.commit) or true
    return
  end
  local status = STATUS[kind]
  if not status then
    return
  end
  -- Only a (re)start takes a task out of an ending; anything else late leaves it ended.
  if M.TERMINAL[t.status] and kind ~= "queued" and kind ~= "started" then
    if not M.TERMINAL[kind] then
      return
    end
  end
  t.status = status
  if kind == "started" then
    t.agent = str(data.agent) or t.agent
    t.workdir = str(data.workdir) or t.workdir
    t.waitingFor = nil
  elseif kind == "lockWait" then
    t.waitingFor = str(data.message) or str(data.path)
  elseif kind == "retrying" then
    t.retry = { delay = data.delay, code = str(data.code), reason = str(data.reason) }
  elseif M.TERMINAL[kind] then
    for _, key in ipairs(END_FIELDS) do
      if data[key] ~= nil then
        t[key] = data[key]
      end
    end
  end
end

--- Apply one `parex/taskEvent` to the state; returns the state. Malformed events are ignored.
function M.apply(state, ev)
  if type(ev) ~= "table" or not str(ev.runId) or not str(ev.kind) then
    return state
  end
  local run = M.run(state, ev.runId)
  state.current = ev.runId
  local data = tbl(ev.data) or {}
  local task_id = str(ev.taskId)
  if task_id then
    task_event(run, task(run, task_id), ev.kind, ev, data)
  else
    run_event(run, ev.kind, data)
  end
  return state
end

--- The RunResult a parex/run request answered: it settles the run's tasks.
function M.finish(state, result)
  if type(result) ~= "table" or not str(result.runId) then
    return state
  end
  local run = M.run(state, result.runId)
  run_event(run, "runFinished", result)
  return state
end

--- Counts of a run: total (the plan's, once runStarted named its tasks), done, running (with
--- retrying), waiting (for a lock), failed.
function M.counts(run)
  local c = { total = 0, done = 0, running = 0, waiting = 0, failed = 0, succeeded = 0 }
  for _, id in ipairs(run.order) do
    local s = run.tasks[id].status
    c.total = c.total + 1
    if M.TERMINAL[s] then
      c.done = c.done + 1
    end
    if s == "failed" then
      c.failed = c.failed + 1
    elseif s == "succeeded" then
      c.succeeded = c.succeeded + 1
    elseif s == "running" or s == "retrying" then
      c.running = c.running + 1
    elseif s == "waiting" then
      c.waiting = c.waiting + 1
    end
  end
  if run.total and run.total > c.total then
    c.total = run.total
  end
  return c
end

--- The statusline text of a run: "parex: 2/5 (3 running) 1 failed" while it goes on,
--- "parex: ok 5/5 3.1x" or "parex: failed 1/5 2.4x" once it ended.
function M.statusline(run)
  if not run then
    return ""
  end
  local c = M.counts(run)
  local r = run.result
  if r then
    local speedup = type(r.speedup) == "number" and string.format(" %.1fx", r.speedup) or ""
    if run.status == "succeeded" then
      return string.format("parex: ok %d/%d%s", c.total, c.total, speedup)
    end
    return string.format("parex: %s %d/%d%s", tostring(run.status), c.total - c.succeeded, c.total, speedup)
  end
  local text = string.format("parex: %d/%d", c.done, c.total)
  if c.running > 0 then
    text = text .. string.format(" (%d running)", c.running)
  end
  if c.waiting > 0 then
    text = text .. string.format(" %d waiting", c.waiting)
  end
  if c.failed > 0 then
    text = text .. string.format(" %d failed", c.failed)
  end
  return text
end

local function seconds(ms)
  return type(ms) == "number" and string.format(" (%.1fs)", ms / 1000) or ""
end

--- What to tell the person about an event: { text, level = "info" | "warn" | "error" },
--- or nil when the event is not news (output, queued, kept tasks of a resume).
function M.notice(ev)
  if type(ev) ~= "table" or not str(ev.taskId) then
    return nil
  end
  local id, data = ev.taskId, tbl(ev.data) or {}
  local kind = ev.kind
  if kind == "started" then
    local attempt = tonumber(ev.attempt) or 1
    return { text = id .. " started" .. (attempt > 1 and (" (attempt " .. attempt .. ")") or ""), level = "info" }
  elseif kind == "retrying" then
    local why = str(data.reason) or str(data.code)
    return { text = string.format("%s retrying (attempt %s)%s", id, tostring(ev.attempt), why and (": " .. why) or ""), level = "warn" }
  elseif kind == "succeeded" then
    if str(data.reusedFrom) then
      return nil
    end
    return { text = id .. " succeeded" .. seconds(data.durationMs), level = "info" }
  elseif kind == "failed" then
    local why = str(data.reason) or str(data.code)
    return { text = id .. " failed" .. (why and (": " .. why) or ""), level = "error" }
  elseif kind == "skipped" or kind == "cancelled" then
    local why = str(data.reason)
    if why == kind then
      why = nil -- "a cancelled", not "a cancelled: cancelled"
    end
    return { text = id .. " " .. kind .. (why and (": " .. why) or ""), level = "warn" }
  end
  return nil
end

--- `path:line:col: message` lines among `lines` (compiler and linter output):
--- { {path, lnum, col, text}, ... }, at most `limit` (default 100).
function M.locations(lines, limit)
  limit = limit or 100
  local found = {}
  for _, line in ipairs(lines or {}) do
    local path, lnum, col, text = line:match("^%s*([^%s:][^:]-):(%d+):(%d+):?%s*(.*)$")
    -- A path has a dot or a slash: "Error:3:1" or "at:12:5" are not places.
    if path and path:find("[./]") then
      table.insert(found, { path = path, lnum = tonumber(lnum), col = tonumber(col), text = text })
      if #found >= limit then
        break
      end
    end
  end
  return found
end

--- The task ids of a run, in the plan's order.
function M.task_ids(run)
  local ids = {}
  for _, id in ipairs(run and run.order or {}) do
    table.insert(ids, id)
  end
  return ids
end

--- The run that knows `path` as a task's log: run, task (nil, nil when none does).
function M.by_log(state, path)
  for _, run_id in ipairs(state.order) do
    local run = state.runs[run_id]
    for _, id in ipairs(run.order) do
      local t = run.tasks[id]
      if t.logPath == path then
        return run, t
      end
    end
  end
  return nil, nil
end

return M
