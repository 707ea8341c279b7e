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

-- The token and cost fields of a `usage`: {promptTokens, completionTokens, costUsd?}.
function M.usage(v)
  if type(v) ~= "table" then
    return nil
  end
  local u = {
    promptTokens = tonumber(v.promptTokens) or 0,
    completionTokens = tonumber(v.completionTokens) or 0,
    costUsd = tonumber(v.costUsd),
  }
  -- budgetExceeded's `spent` has `tokens`, which may be all there is.
  local tokens = tonumber(v.tokens)
  if tokens and u.promptTokens + u.completionTokens == 0 then
    u.promptTokens = tokens
  end
  return u
end

-- A budget {usd?, tokens?}, or nil when it names neither.
function M.budget(v)
  if type(v) ~= "table" then
    return nil
  end
  local b = { usd = tonumber(v.usd), tokens = tonumber(v.tokens) }
  if not b.usd and not b.tokens then
    return nil
  end
  return b
end

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
    -- spend: the run's totals (usage); budget: {usd?, tokens?}; cooldowns: agent -> {until,
    -- reason}; agents: agent -> {level, max, reason} (concurrency); budgetExceeded: its data.
    run = { id = run_id, status = "running", tasks = {}, order = {}, cooldowns = {}, agents = {} }
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

-- Adds the warnings in `list` ({reason, message}) to the task's, each once: a terminal event
-- and the RunResult repeat the `warning` events that came before.
local function add_warnings(t, list)
  for _, w in ipairs(tbl(list) or {}) do
    local message = tbl(w) and str(w.message)
    if message then
      local reason = str(w.reason) or "warning"
      t.warnings = t.warnings or {}
      local seen = false
      for _, have in ipairs(t.warnings) do
        seen = seen or (have.reason == reason and have.message == message)
      end
      if not seen then
        table.insert(t.warnings, { reason = reason, message = message })
      end
    end
  end
end

-- A RunResult's (or runFinished's) budget {spent, budget, exceeded, summary} and usage.
local function settle_spend(run, data)
  local b = tbl(data.budget)
  if b then
    run.spend = M.usage(b.spent) or run.spend
    run.budget = M.budget(b.budget) or run.budget
    if b.exceeded == true and not run.budgetExceeded then
      run.budgetExceeded = { spent = b.spent, budget = b.budget, message = str(b.summary) }
    end
  elseif M.usage(data.usage) and not run.spend then
    run.spend = M.usage(data.usage)
  end
end

local function run_event(run, kind, data)
  if kind == "cooldown" then
    local agent = str(data.agent)
    if agent then
      run.cooldowns[agent] = { ["until"] = tonumber(data["until"]), reason = str(data.reason) }
    end
  elseif kind == "concurrency" then
    local agent = str(data.agent)
    if agent then
      run.agents[agent] = { level = tonumber(data.level), max = tonumber(data.max), reason = str(data.reason) }
    end
  elseif kind == "budgetExceeded" then
    run.budgetExceeded = { spent = data.spent, budget = data.budget, message = str(data.message) }
    run.spend = M.usage(data.spent) or run.spend
    run.budget = M.budget(data.budget) or run.budget
  elseif kind == "runStarted" then
    run.plan = str(data.plan) or run.plan
    run.maxConcurrency = data.maxConcurrency
    run.resumedFrom = str(data.resumedFrom)
    plan_tasks(run, data.tasks)
  elseif kind == "runFinished" then
    run.status = str(data.status) or "finished"
    run.result = data
    settle_spend(run, data)
    for _, r in ipairs(tbl(data.tasks) or {}) do
      if tbl(r) and str(r.id) then
        local t = task(run, r.id)
        t.status = str(r.status) or t.status
        t.logUri = str(r.logUri) or t.logUri
        add_warnings(t, r.warnings)
      end
    end
  end
end

local function task_event(run, t, kind, ev, data)
  if kind == "warning" then
    add_warnings(t, { data })
    return
  end
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
    -- data: the task's totals, plus the run's (`run`) and the run's budget.
    t.usage = M.usage(data)
    run.spend = M.usage(data.run) or run.spend
    run.budget = M.budget(data.budget) or run.budget
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
    t.usage = M.usage(t.usage)
  end
  add_warnings(t, data.warnings)
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

--- Tokens the way a statusline has room for: 950, 12.3k, 20k, 1.5M.
function M.tokens(n)
  n = tonumber(n) or 0
  local text
  if n < 1000 then
    return string.format("%d", n)
  elseif n < 1e6 then
    text = string.format("%.1fk", n / 1000)
  else
    text = string.format("%.1fM", n / 1e6)
  end
  return (text:gsub("%.0([kM])$", "%1"))
end

local function dollars(x)
  return string.format("$%.2f", x)
end

--- The run's spend, against its budget when it has one: "12.3k tok of 20k", "$0.12 of $1.00",
--- "budget reached: 20.1k tok of 20k"; nil before any spend was told.
function M.spend_text(run)
  local spend, budget = run and run.spend, run and run.budget
  if not spend then
    return nil
  end
  local tokens = spend.promptTokens + spend.completionTokens
  local parts = {}
  if not budget or budget.tokens then
    table.insert(parts, M.tokens(tokens) .. " tok" .. (budget and (" of " .. M.tokens(budget.tokens)) or ""))
  end
  if budget and budget.usd then
    table.insert(parts, dollars(spend.costUsd or 0) .. " of " .. dollars(budget.usd))
  elseif not budget and spend.costUsd then
    table.insert(parts, dollars(spend.costUsd))
  end
  local text = table.concat(parts, ", ")
  if run.budgetExceeded then
    text = "budget reached: " .. text
  end
  return text
end

--- The agents of a run that wait out a rate limit at `now` (epoch seconds), by name:
--- { {agent, left (whole seconds), reason} }.
function M.cooling(run, now)
  local found = {}
  for agent, c in pairs(run and run.cooldowns or {}) do
    local left = c["until"] and math.ceil(c["until"] - now) or 0
    if left > 0 then
      table.insert(found, { agent = agent, left = left, reason = c.reason })
    end
  end
  table.sort(found, function(a, b)
    return a.agent < b.agent
  end)
  return found
end

--- The agents of a run held below their concurrency, by name: { {agent, level, max, reason} }.
function M.throttled(run)
  local found = {}
  for agent, a in pairs(run and run.agents or {}) do
    if a.level and a.max and a.level < a.max then
      table.insert(found, { agent = agent, level = a.level, max = a.max, reason = a.reason })
    end
  end
  table.sort(found, function(a, b)
    return a.agent < b.agent
  end)
  return found
end

local function counts_text(run, c)
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

--- The statusline text of a run: "parex: 2/5 (3 running) 1 failed" while it goes on,
--- "parex: ok 5/5 3.1x" or "parex: failed 1/5 2.4x" once it ended; then the spend
--- ("· 12.3k tok of 20k") and, while it goes on, cooling agents ("· claude: rate limited 42s")
--- and agents held below their concurrency that are not cooling ("· claude: 2 of 4 at once").
--- now: epoch seconds (default os.time()).
function M.statusline(run, now)
  if not run then
    return ""
  end
  local text = counts_text(run, M.counts(run))
  local spend = M.spend_text(run)
  if spend then
    text = text .. " · " .. spend
  end
  if not run.result then
    local cooling = {}
    for _, c in ipairs(M.cooling(run, now or os.time())) do
      cooling[c.agent] = true
      text = text .. string.format(" · %s: rate limited %ds", c.agent, c.left)
    end
    -- A cooling agent's lowered level is implied; :ParexStatus says it in full.
    for _, a in ipairs(M.throttled(run)) do
      if not cooling[a.agent] then
        text = text .. string.format(" · %s: %d of %d at once", a.agent, a.level, a.max)
      end
    end
  end
  return text
end

local function seconds(ms)
  return type(ms) == "number" and string.format(" (%.1fs)", ms / 1000) or ""
end

--- What to tell the person about an event: { text, level = "info" | "warn" | "error",
--- always = true for what is told even when task news is off (warnings, the budget) },
--- or nil when the event is not news (output, queued, kept tasks of a resume).
function M.notice(ev)
  if type(ev) ~= "table" then
    return nil
  end
  local data = tbl(ev.data) or {}
  if ev.kind == "budgetExceeded" then
    local message = str(data.message) or "the run stops"
    -- The server's message may say "budget reached" itself.
    if not message:lower():match("^budget") then
      message = "budget reached: " .. message
    end
    return { text = message, level = "warn", always = true }
  end
  if not str(ev.taskId) then
    return nil
  end
  local id = ev.taskId
  local kind = ev.kind
  if kind == "warning" then
    local message = str(data.message) or str(data.reason)
    if not message then
      return nil
    end
    return { text = id .. ": " .. message, level = "warn", always = true }
  elseif kind == "started" then
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
