-- Tests of the plugin's pure modules (parex.runs, parex.calls, parex.doctor,
-- parex.drafts, parex.options) in a plain Lua interpreter,
-- no Neovim: `luajit tests/clients/lua/test_pure.lua <repo>` (tests/clients/test_nvim_pure.py
-- runs it). Prints "ok - name" per test and "N passed, N failed"; the exit code is the verdict.
local repo = arg[1] or "."
package.path = table.concat({
  repo .. "/editors/nvim/lua/?.lua",
  repo .. "/tests/clients/lua/?.lua",
  package.path,
}, ";")

local json = require("json")
local calls = require("parex.calls")
local runs = require("parex.runs")
local doctor = require("parex.doctor")
local drafts = require("parex.drafts")
local options = require("parex.options")

local passed, failed = 0, 0
local function test(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    passed = passed + 1
    print("ok - " .. name)
  else
    failed = failed + 1
    print("not ok - " .. name .. "\n" .. tostring(err))
  end
end

local function show(v, indent)
  indent = indent or ""
  if type(v) ~= "table" then
    return type(v) == "string" and string.format("%q", v) or tostring(v)
  end
  local keys = {}
  for k in pairs(v) do
    table.insert(keys, k)
  end
  table.sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  local parts = {}
  for _, k in ipairs(keys) do
    table.insert(parts, indent .. "  " .. tostring(k) .. " = " .. show(v[k], indent .. "  "))
  end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end

local function eq(got, want, what)
  if show(got) ~= show(want) then
    error((what or "value") .. ":\n got " .. show(got) .. "\nwant " .. show(want), 2)
  end
end

local function read(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("*a")
  f:close()
  return text
end

local function ev(run_id, task_id, kind, data, attempt)
  return { runId = run_id, taskId = task_id, kind = kind, attempt = attempt or 0, timestamp = 0, data = data }
end

---------------------------------------------------------------------------
-- callN: lines: the shared table
---------------------------------------------------------------------------

local cases = json.decode(read(repo .. "/tests/cases/call_lines.json")).cases
assert(#cases > 0, "no cases in call_lines.json")
for _, case in ipairs(cases) do
  test("call lines: " .. case.name, function()
    local want = {}
    for _, c in ipairs(case.calls) do
      table.insert(want, { id = c.id, line = c.line })
    end
    eq(calls.find(case.lines), want, "calls of " .. show(case.lines))
    eq(calls.any(case.lines), #want > 0, "any()")
  end)
end

test("call lines: not strings are no calls", function()
  eq(calls.call_id(nil), nil)
  eq(calls.call_id(42), nil)
end)

---------------------------------------------------------------------------
-- The reducer
---------------------------------------------------------------------------

local function started_run(tasks)
  local s = runs.new()
  runs.apply(s, ev("r1", nil, "runStarted", { plan = "/w/parex.toml", tasks = tasks, maxConcurrency = 4 }))
  return s, s.runs.r1
end

test("runStarted with task objects: prompts, agents, ranges, log paths, the total", function()
  local range = { start = { line = 3, character = 0 }, ["end"] = { line = 4, character = 10 } }
  local s, run = started_run({
    { id = "call1", prompt = "summarise\nthe parser", agent = "local", range = range, logPath = "/w/.parex/runs/r1/call1.log" },
    { id = "call2", prompt = "next", agent = "local", range = json.null, logPath = "/w/.parex/runs/r1/call2.log" },
  })
  eq(s.current, "r1")
  eq(run.order, { "call1", "call2" })
  eq(run.tasks.call1.prompt, "summarise\nthe parser")
  eq(run.tasks.call1.range, range)
  eq(run.tasks.call2.range, nil, "a null range")
  eq(run.tasks.call2.logPath, "/w/.parex/runs/r1/call2.log")
  eq(run.plan, "/w/parex.toml")
  eq(runs.statusline(run), "parex: 0/2")
end)

test("runStarted with task ids only (older servers): the total, no prompts", function()
  local _, run = started_run({ "a", "b", "c" })
  eq(run.order, { "a", "b", "c" })
  eq(run.tasks.a.prompt, nil)
  eq(runs.counts(run).total, 3)
end)

test("runStarted without tasks, then task events: tasks appear as they are named", function()
  local s = runs.new()
  runs.apply(s, ev("r1", nil, "runStarted", {}))
  runs.apply(s, ev("r1", "x", "started", { agent = "shell", workdir = "/w" }, 1))
  eq(runs.statusline(s.runs.r1), "parex: 0/1 (1 running)")
end)

test("statusline counts every started task (three of four running)", function()
  local s, run = started_run({ "long1", "long2", "long3", "after" })
  for _, id in ipairs({ "long1", "long2", "long3", "after" }) do
    runs.apply(s, ev("r1", id, "queued", {}))
  end
  for _, id in ipairs({ "long1", "long2", "long3" }) do
    runs.apply(s, ev("r1", id, "started", { agent = "shell", workdir = "/w" }, 1))
  end
  eq(runs.statusline(run), "parex: 0/4 (3 running)")
  runs.apply(s, ev("r1", "long2", "failed", { reason = "exit code 3", code = "exit-code", logPath = "/w/l2.log" }, 1))
  eq(runs.statusline(run), "parex: 1/4 (2 running) 1 failed")
  runs.apply(s, ev("r1", "after", "lockWait", { path = "a.py", message = "waiting for a.py" }))
  eq(runs.statusline(run), "parex: 1/4 (2 running) 1 waiting 1 failed")
  eq(run.tasks.after.waitingFor, "waiting for a.py")
end)

test("terminal events keep what the server said: reason, code, log path, tail, answer", function()
  local s, run = started_run({ "t" })
  runs.apply(s, ev("r1", "t", "started", { agent = "local", workdir = "/w" }, 1))
  runs.apply(s, ev("r1", "t", "output", { text = "a\nb\n", last = "b" }, 1))
  eq(run.tasks.t.lastLine, "b")
  runs.apply(s, ev("r1", "t", "output", { text = "\n", last = "" }, 1))
  eq(run.tasks.t.lastLine, "b", "an empty last line keeps the one before")
  runs.apply(s, ev("r1", "t", "failed", {
    durationMs = 1200, exitCode = 3, code = "exit-code", reason = "exited with code 3",
    tail = { "x.py:3:1: boom" }, logPath = "/w/.parex/runs/r1/t.log", answer = "42",
  }, 1))
  local t = run.tasks.t
  eq({ t.status, t.exitCode, t.code, t.reason, t.logPath, t.answer, t.workdir, t.attempt },
    { "failed", 3, "exit-code", "exited with code 3", "/w/.parex/runs/r1/t.log", "42", "/w", 1 })
  eq(t.tail, { "x.py:3:1: boom" })
  local found_run, found = runs.by_log(s, "/w/.parex/runs/r1/t.log")
  eq(found_run and found_run.id, "r1")
  eq(found and found.id, "t")
  eq(select(1, runs.by_log(s, "/elsewhere.log")), nil)
end)

test("late news never revives an ended task; a restart does", function()
  local s, run = started_run({ "t" })
  runs.apply(s, ev("r1", "t", "cancelled", { reason = "cancelled" }, 1))
  runs.apply(s, ev("r1", "t", "output", { text = "late\n", last = "late" }, 1))
  runs.apply(s, ev("r1", "t", "lockWait", { path = "a" }, 1))
  runs.apply(s, ev("r1", "t", "retrying", { delay = 1 }, 1))
  eq(run.tasks.t.status, "cancelled")
  runs.apply(s, ev("r1", "t", "started", {}, 2))
  eq(run.tasks.t.status, "running")
  eq(run.tasks.t.attempt, 2)
end)

test("runFinished and the RunResult settle the run", function()
  local s, run = started_run({ "good", "bad" })
  runs.apply(s, ev("r1", "good", "succeeded", { durationMs = 500 }, 1))
  runs.apply(s, ev("r1", "bad", "failed", { reason = "exit 3" }, 1))
  runs.apply(s, ev("r1", nil, "runFinished", {
    runId = "r1", status = "failed", speedup = 1.43,
    tasks = { { id = "good", status = "succeeded", logUri = "file:///w/g.log" }, { id = "bad", status = "failed" } },
  }))
  eq(run.status, "failed")
  eq(runs.statusline(run), "parex: failed 1/2 1.4x")
  eq(run.tasks.good.logUri, "file:///w/g.log")
  local s2 = runs.new()
  runs.finish(s2, { runId = "r2", status = "succeeded", speedup = 2, tasks = { { id = "a", status = "succeeded" } } })
  eq(runs.statusline(s2.runs.r2), "parex: ok 1/1 2.0x")
end)

test("runs of a resume: kept tasks are succeeded and not news", function()
  local s, run = started_run({ "call1", "call2" })
  local kept = ev("r1", "call1", "succeeded", { durationMs = 0, reusedFrom = "r0", answer = "kept" })
  runs.apply(s, kept)
  eq(run.tasks.call1.reusedFrom, "r0")
  eq(run.tasks.call1.answer, "kept")
  eq(runs.notice(kept), nil)
end)

test("malformed events are ignored", function()
  local s = runs.new()
  for _, bad in ipairs({ 42, {}, { runId = 1, kind = "started" }, { runId = "r", kind = 3 } }) do
    runs.apply(s, bad)
  end
  eq(#s.order, 0)
  runs.apply(s, { runId = "r", kind = "started", taskId = json.null, data = "not a table" })
  eq(s.runs.r.order, {}, "a null task id is run-level")
  runs.apply(s, { runId = "r", kind = "mystery", taskId = "t" })
  eq(s.runs.r.tasks.t.status, "pending", "an unknown kind changes nothing")
end)

test("only the last KEEP runs are kept", function()
  local s = runs.new()
  for i = 1, runs.KEEP + 5 do
    runs.apply(s, ev("r" .. i, nil, "runStarted", { tasks = { "a" } }))
  end
  eq(#s.order, runs.KEEP)
  eq(s.runs.r1, nil)
  eq(s.current, "r" .. (runs.KEEP + 5))
end)

test("notices: text and level per kind, in event order", function()
  eq(runs.notice(ev("r", "a", "started", {}, 1)), { level = "info", text = "a started" })
  eq(runs.notice(ev("r", "a", "started", {}, 2)), { level = "info", text = "a started (attempt 2)" })
  eq(runs.notice(ev("r", "a", "succeeded", { durationMs = 1500 }, 1)), { level = "info", text = "a succeeded (1.5s)" })
  eq(runs.notice(ev("r", "a", "failed", { reason = "exited with code 3" }, 1)), { level = "error", text = "a failed: exited with code 3" })
  eq(runs.notice(ev("r", "a", "cancelled", {}, 1)), { level = "warn", text = "a cancelled" })
  eq(runs.notice(ev("r", "a", "cancelled", { reason = "cancelled" }, 1)), { level = "warn", text = "a cancelled" })
  eq(runs.notice(ev("r", "a", "skipped", { reason = "dependency b failed" })), { level = "warn", text = "a skipped: dependency b failed" })
  eq(runs.notice(ev("r", "a", "retrying", { reason = "429" }, 1)), { level = "warn", text = "a retrying (attempt 1): 429" })
  eq(runs.notice(ev("r", "a", "output", { last = "x" })), nil)
  eq(runs.notice(ev("r", nil, "runStarted", {})), nil)
end)

test("locations: path:line:col lines of task output", function()
  eq(runs.locations({
    "src/app.py:12:5: E501 line too long",
    "  main.go:3:1: undefined: x",
    "Error:3:1 not a place",
    "https://example.org:443:1 neither",
    "plain output",
    "lib/a.ts:7:2 missing semicolon",
  }), {
    { path = "src/app.py", lnum = 12, col = 5, text = "E501 line too long" },
    { path = "main.go", lnum = 3, col = 1, text = "undefined: x" },
    { path = "lib/a.ts", lnum = 7, col = 2, text = "missing semicolon" },
  })
  local many = {}
  for i = 1, 10 do
    many[i] = "a.py:" .. i .. ":1: x"
  end
  eq(#runs.locations(many, 4), 4)
end)

-- A property: whatever order of well-formed events, the counts stay consistent.
test("property: counts stay consistent under random event sequences", function()
  math.randomseed(20261128)
  local kinds = { "queued", "started", "output", "retrying", "lockWait", "succeeded", "failed", "skipped", "cancelled", "usage" }
  for _ = 1, 300 do
    local s = runs.new()
    local n = math.random(1, 6)
    local ids = {}
    for i = 1, n do
      ids[i] = "t" .. i
    end
    runs.apply(s, ev("r", nil, "runStarted", { tasks = ids }))
    for _ = 1, math.random(0, 40) do
      runs.apply(s, ev("r", ids[math.random(1, n)], kinds[math.random(1, #kinds)], { last = "x" }, math.random(0, 3)))
    end
    local run = s.runs.r
    local c = runs.counts(run)
    assert(c.total == n, "total " .. c.total .. " ~= " .. n)
    assert(c.done + c.running + c.waiting <= c.total, show(c))
    assert(c.failed + c.succeeded <= c.done, show(c))
    local line = runs.statusline(run)
    assert(line:match("^parex: %d+/%d+"), line)
  end
end)

test("property: the run's spend is the latest the server told, whatever came between", function()
  math.randomseed(20261129)
  local agents = { "claude", "codex" }
  for _ = 1, 300 do
    local s = runs.new()
    local want, budget, warned, now = nil, nil, {}, 1000
    local cooling = {}
    for _ = 1, math.random(0, 30) do
      local roll = math.random(1, 5)
      local agent = agents[math.random(1, 2)]
      local id = "t" .. math.random(1, 3)
      if roll == 1 then
        local p, c = math.random(0, 50000), math.random(0, 50000)
        want = { promptTokens = p, completionTokens = c }
        budget = math.random(0, 1) == 1 and { tokens = math.random(1, 100000) } or budget
        runs.apply(s, ev("r", id, "usage", { promptTokens = 1, completionTokens = 1, run = want, budget = budget }, 1))
      elseif roll == 2 then
        local ends = now + math.random(-5, 60)
        cooling[agent] = ends
        runs.apply(s, ev("r", nil, "cooldown", { agent = agent, ["until"] = ends, reason = "429" }))
      elseif roll == 3 then
        local max = math.random(1, 8)
        runs.apply(s, ev("r", nil, "concurrency", { agent = agent, level = math.random(1, max), max = max, reason = "x" }))
      elseif roll == 4 then
        local message = "w" .. math.random(1, 3)
        warned[id] = warned[id] or {}
        warned[id][message] = true
        runs.apply(s, ev("r", id, "warning", { reason = "truncated", message = message }, 1))
      else
        runs.apply(s, ev("r", id, ({ "started", "output", "succeeded" })[math.random(1, 3)], { last = "x" }, 1))
      end
    end
    local run = runs.run(s, "r")
    eq(run.spend, want, "spend")
    eq(run.budget, budget, "budget")
    local line = runs.statusline(run, now)
    assert(line:match("^parex: %d+/%d+"), line)
    if want then
      local tokens = runs.tokens(want.promptTokens + want.completionTokens)
      assert(line:find(" · " .. tokens .. " tok", 1, true), line .. " lacks " .. tokens)
    end
    for _, agent in ipairs(agents) do
      local shown = line:find(" · " .. agent .. ": rate limited ", 1, true) ~= nil
      assert(shown == ((cooling[agent] or 0) > now), line)
    end
    for id, messages in pairs(warned) do
      local n = 0
      for _ in pairs(messages) do
        n = n + 1
      end
      eq(#run.tasks[id].warnings, n, "warnings of " .. id)
    end
  end
end)

---------------------------------------------------------------------------
-- Spend, budget, cooldowns, concurrency, warnings
---------------------------------------------------------------------------

test("tokens: short forms for the statusline", function()
  eq({ runs.tokens(0), runs.tokens(950), runs.tokens(1000), runs.tokens(12345), runs.tokens(20000), runs.tokens(1500000) },
    { "0", "950", "1k", "12.3k", "20k", "1.5M" })
end)

test("usage events: the task's own totals, the run's totals and its budget", function()
  local s = runs.new()
  runs.apply(s, ev("r", nil, "runStarted", { tasks = { "a", "b" } }))
  runs.apply(s, ev("r", "a", "started", { agent = "m" }, 1))
  runs.apply(s, ev("r", "b", "started", { agent = "m" }, 1))
  runs.apply(s, ev("r", "a", "usage", {
    promptTokens = 9000, completionTokens = 300,
    run = { promptTokens = 9000, completionTokens = 300 }, budget = { tokens = 20000 },
  }, 1))
  runs.apply(s, ev("r", "b", "usage", {
    promptTokens = 0, completionTokens = 3000,
    run = { promptTokens = 9000, completionTokens = 3300 }, budget = { tokens = 20000 },
  }, 1))
  local run = s.runs.r
  eq(run.tasks.a.usage, { promptTokens = 9000, completionTokens = 300 })
  -- The ending's usage is the task's too, in the same shape.
  runs.apply(s, ev("r", "a", "succeeded", { usage = { promptTokens = 9100, completionTokens = 300, costUsd = 0.5 } }, 1))
  eq(run.tasks.a.usage, { promptTokens = 9100, completionTokens = 300, costUsd = 0.5 })
  eq(run.spend, { promptTokens = 9000, completionTokens = 3300 })
  eq(run.budget, { tokens = 20000 })
  eq(runs.statusline(run, 0), "parex: 1/2 (1 running) · 12.3k tok of 20k")
end)

test("spend without a budget, and against a budget in dollars", function()
  local s = runs.new()
  runs.apply(s, ev("r", "a", "usage", { promptTokens = 800, completionTokens = 100,
    run = { promptTokens = 800, completionTokens = 100, costUsd = 0.0421 } }, 1))
  eq(runs.spend_text(s.runs.r), "900 tok, $0.04")
  runs.apply(s, ev("u", "a", "usage", { promptTokens = 800, completionTokens = 100,
    run = { promptTokens = 800, completionTokens = 100, costUsd = 0.12 }, budget = { usd = 1 } }, 1))
  eq(runs.spend_text(s.runs.u), "$0.12 of $1.00")
  eq(runs.spend_text(runs.run(s, "none")), nil)
  eq(runs.statusline(s.runs.none, 0), "parex: 0/0")
end)

test("budgetExceeded: the statusline says the budget was reached; a notice told even with task news off", function()
  local s = runs.new()
  runs.apply(s, ev("r", "a", "usage", { promptTokens = 15000, completionTokens = 4000,
    run = { promptTokens = 15000, completionTokens = 4000 }, budget = { tokens = 20000 } }, 1))
  local e = ev("r", nil, "budgetExceeded", {
    spent = { tokens = 20100, promptTokens = 16000, completionTokens = 4100 }, budget = { tokens = 20000 },
    message = "the run spent 20100 tokens of its 20000 budget",
  })
  runs.apply(s, e)
  eq(runs.statusline(s.runs.r, 0), "parex: 0/1 · budget reached: 20.1k tok of 20k")
  eq(runs.notice(e), { always = true, level = "warn", text = "budget reached: the run spent 20100 tokens of its 20000 budget" })
  eq(runs.notice(ev("r", nil, "budgetExceeded", { message = "budget reached: spent 1,500 of 1,000 tokens" })).text,
    "budget reached: spent 1,500 of 1,000 tokens")
  eq(runs.notice(ev("r", nil, "budgetExceeded", {})).text, "budget reached: the run stops")
end)

test("the RunResult's budget settles the spend", function()
  local s = runs.new()
  runs.finish(s, { runId = "r", status = "failed", speedup = 1, tasks = { { id = "a", status = "failed" } },
    budget = { spent = { tokens = 500, promptTokens = 400, completionTokens = 100 }, budget = { tokens = 400 },
      exceeded = true, summary = "500 of 400 tokens" } })
  eq(runs.statusline(s.runs.r), "parex: failed 1/1 1.0x · budget reached: 500 tok of 400")
  eq(s.runs.r.budgetExceeded.message, "500 of 400 tokens")
end)

test("cooldowns count down to their end and leave the statusline when over", function()
  local s = runs.new()
  runs.apply(s, ev("r", "a", "started", { agent = "claude" }, 1))
  runs.apply(s, ev("r", nil, "cooldown", { agent = "claude", ["until"] = 1000, reason = "429 Too Many Requests" }))
  runs.apply(s, ev("r", nil, "cooldown", { agent = "codex", ["until"] = 1010.5, reason = "quota" }))
  local run = s.runs.r
  eq(runs.statusline(run, 958), "parex: 0/1 (1 running) · claude: rate limited 42s · codex: rate limited 53s")
  eq(runs.cooling(run, 1000), { { agent = "codex", left = 11, reason = "quota" } })
  eq(runs.statusline(run, 1011), "parex: 0/1 (1 running)")
  -- A cooldown that names no agent is ignored.
  runs.apply(s, ev("r", nil, "cooldown", { reason = "no agent" }))
  eq(runs.cooling(run, 0), { { agent = "claude", left = 1000, reason = "429 Too Many Requests" },
    { agent = "codex", left = 1011, reason = "quota" } })
end)

test("concurrency: agents held below their maximum, until they are back at it", function()
  local s = runs.new()
  runs.apply(s, ev("r", nil, "concurrency", { agent = "claude", level = 2, max = 4, reason = "rate limited" }))
  local run = s.runs.r
  eq(runs.throttled(run), { { agent = "claude", level = 2, max = 4, reason = "rate limited" } })
  eq(runs.statusline(run, 0), "parex: 0/0 · claude: 2 of 4 at once")
  runs.apply(s, ev("r", nil, "concurrency", { agent = "claude", level = 4, max = 4, reason = "recovered" }))
  eq(runs.throttled(run), {})
  -- While the agent cools down, its lowered level is not said twice.
  runs.apply(s, ev("r", nil, "concurrency", { agent = "claude", level = 2, max = 4, reason = "rate limited" }))
  runs.apply(s, ev("r", nil, "cooldown", { agent = "claude", ["until"] = 50, reason = "429" }))
  eq(runs.statusline(run, 40), "parex: 0/0 · claude: rate limited 10s")
  eq(runs.statusline(run, 50), "parex: 0/0 · claude: 2 of 4 at once")
  -- Once the run ended, its cooldowns and levels are history.
  runs.apply(s, ev("r", nil, "concurrency", { agent = "claude", level = 1, max = 4, reason = "rate limited" }))
  runs.apply(s, ev("r", nil, "cooldown", { agent = "claude", ["until"] = 100, reason = "429" }))
  runs.finish(s, { runId = "r", status = "succeeded", tasks = {} })
  eq(runs.statusline(run, 0), "parex: ok 0/0")
end)

test("warnings: kept on the task once each, from the event, the ending and the RunResult; a notice", function()
  local s = runs.new()
  local w = { reason = "truncated", message = "the model's answer was cut at its length limit" }
  local e = ev("r", "a", "warning", w, 1)
  runs.apply(s, ev("r", "a", "started", {}, 1))
  runs.apply(s, e)
  runs.apply(s, ev("r", "a", "succeeded", { durationMs = 5, warnings = { w } }, 1))
  runs.finish(s, { runId = "r", status = "succeeded", tasks = { { id = "a", status = "succeeded", warnings = { w,
    { reason = "other", message = "second" } } } } })
  eq(s.runs.r.tasks.a.warnings, { w, { reason = "other", message = "second" } })
  eq(s.runs.r.tasks.a.status, "succeeded")
  eq(runs.notice(e), { always = true, level = "warn", text = "a: the model's answer was cut at its length limit" })
  eq(runs.notice(ev("r", "a", "warning", { reason = 3 })), nil)
  runs.apply(s, ev("r", "a", "warning", { message = 7 }))
  eq(#s.runs.r.tasks.a.warnings, 2)
end)

---------------------------------------------------------------------------
-- parex.doctor: `doctor --json` as :checkhealth lines
---------------------------------------------------------------------------

local SERVER = { "/ws/.venv/bin/parex-lsp", "--stdio" }

test("doctor: the server command with doctor --json in place of --stdio, the plan last", function()
  eq(doctor.command(SERVER, "/ws/parex.toml"), { "/ws/.venv/bin/parex-lsp", "doctor", "--json", "/ws/parex.toml" })
  eq(doctor.command({ "python", "-m", "parex_lsp" }, nil), { "python", "-m", "parex_lsp", "doctor", "--json" })
  eq(doctor.command(SERVER, ""), { "/ws/.venv/bin/parex-lsp", "doctor", "--json" })
end)

local function doctor_run(answer, code, extra)
  local outcome = { cmd = doctor.command(SERVER), code = code, stdout = answer, stderr = "" }
  for k, v in pairs(extra or {}) do
    outcome[k] = v
  end
  return doctor.report(outcome, json.decode)
end

test("doctor: each check a line, ok, error with its detail as advice, or warn when not required", function()
  local answer = '{"ok": false, "workspace": "/ws", "problems": [], "checks": ['
    .. '{"name": "agent shell", "ok": true, "detail": "runs prompts with /usr/bin/sh", "required": true},'
    .. '{"name": "agent coder", "ok": false, "detail": "`nope` not found on PATH: install it", "required": true},'
    .. '{"name": "git repository", "ok": false, "detail": "/ws is not in a git repository", "required": false}]}'
  eq(doctor_run(answer, 1), {
    title = "parex: doctor (/ws)",
    items = {
      { level = "ok", text = "agent shell: runs prompts with /usr/bin/sh" },
      { level = "error", text = "agent coder failed", advice = { "`nope` not found on PATH: install it" } },
      { level = "warn", text = "git repository: /ws is not in a git repository" },
    },
  })
end)

test("doctor: an invalid plan's problems are errors each", function()
  local got = doctor_run('{"ok": false, "workspace": "/ws", "checks": [], "problems": '
    .. '["p.parex.toml:3:1: unknown agent `wizard`", "p.parex.toml:9:1: dependency cycle: a -> b -> a"]}', 2)
  eq(#got.items, 2)
  eq(got.items[1].level, "error")
  eq(got.items[1].text, "plan problem: p.parex.toml:3:1: unknown agent `wizard`")
  eq(got.items[2].text, "plan problem: p.parex.toml:9:1: dependency cycle: a -> b -> a")
end)

test("doctor: the JSON on the last line of what a wrapper printed", function()
  local got = doctor_run('activating the venv\n{"ok": true, "workspace": "/w", "checks": '
    .. '[{"name": "lock registry", "ok": true, "detail": "free", "required": true}], "problems": []}\n', 0)
  eq(got, { title = "parex: doctor (/w)", items = { { level = "ok", text = "lock registry: free" } } })
end)

test("doctor: output that is not JSON, or not the doctor's, is an error naming the command and what it said", function()
  local got = doctor_run("usage: parex-lsp [-h]\n", 2, { stderr = "parex-lsp: error: invalid choice: 'doctor'\n" })
  eq(#got.items, 1)
  eq(got.items[1].level, "error")
  eq(got.items[1].text, "`/ws/.venv/bin/parex-lsp doctor --json` did not answer JSON (exit code 2): "
    .. "parex-lsp: error: invalid choice: 'doctor'")
  eq(doctor_run('{"checks": 3, "problems": []}', 0).items[1].level, "error")
  eq(doctor_run("", 1).items[1].text, "`/ws/.venv/bin/parex-lsp doctor --json` did not answer JSON (exit code 1)")
end)

test("doctor: an executable that cannot start, and one that does not finish", function()
  local got = doctor_run(nil, nil, { started = false, why = "not executable" })
  eq(got.items[1].level, "error")
  eq(got.items[1].text, "the doctor could not start: `/ws/.venv/bin/parex-lsp doctor --json`: not executable")
  got = doctor_run(nil, nil, { timed_out = true, timeout_s = 60 })
  eq(got.items[1].text, "`/ws/.venv/bin/parex-lsp doctor --json` did not finish within 60s")
end)

---------------------------------------------------------------------------
-- parex.drafts: :ParexPlan's buffer name and diagnostics
---------------------------------------------------------------------------

test("drafts: plan.parex.toml, else the first plan-N.parex.toml no buffer or file has", function()
  local taken = {}
  local function is_taken(path)
    return taken[path] == true
  end
  eq(drafts.free_name("/ws/", is_taken), "/ws/plan.parex.toml")
  taken["/ws/plan.parex.toml"] = true
  eq(drafts.free_name("/ws", is_taken), "/ws/plan-2.parex.toml")
  taken["/ws/plan-2.parex.toml"] = true
  taken["/ws/plan-3.parex.toml"] = true
  eq(drafts.free_name("/ws", is_taken), "/ws/plan-4.parex.toml")
end)

test("drafts: workspace-relative paths of files inside it only", function()
  eq(drafts.relative("/ws", "/ws/docs/a.md"), "docs/a.md")
  eq(drafts.relative("/ws/", "/ws/a.md"), "a.md")
  eq(drafts.relative("/ws", "/wsx/a.md"), nil)
  eq(drafts.relative("/ws", "/ws"), nil)
  eq(drafts.relative("/ws", nil), nil)
end)

test("drafts: the text's lines, its last newline adding none", function()
  eq(drafts.lines("a\nb\n"), { "a", "b" })
  eq(drafts.lines("a\n\nb"), { "a", "", "b" })
  eq(drafts.lines(""), { "" })
end)

test("drafts: LSP problems as vim.diagnostic entries, kept within the buffer", function()
  local problems = {
    { range = { start = { line = 26, character = 0 }, ["end"] = { line = 26, character = 18 } }, severity = 1,
      code = "unknown-agent", source = "parex", message = "unknown agent `wizard`" },
    { range = { start = { line = 90, character = 2 }, ["end"] = { line = 95, character = 0 } }, severity = 2,
      message = "dependency cycle: a -> b -> a" },
    { message = 3 },
  }
  eq(drafts.diagnostics(problems, 30), {
    { lnum = 26, col = 0, end_lnum = 26, end_col = 18, severity = 1, message = "unknown agent `wizard`",
      source = "parex", code = "unknown-agent" },
    { lnum = 29, col = 2, end_lnum = 29, end_col = 0, severity = 2, message = "dependency cycle: a -> b -> a",
      source = "parex" },
  })
  eq(drafts.summary({ valid = true, rounds = 1, problems = {} }, "/ws/plan.parex.toml"),
    "plan drafted in 1 draft: plan.parex.toml (unsaved; :w to keep it)")
  eq(drafts.summary({ valid = false, rounds = 3, problems = { {} } }, "/ws/plan-2.parex.toml"),
    "plan drafted with 1 problem left after 3 drafts: plan-2.parex.toml (unsaved; see its diagnostics)")
end)

---------------------------------------------------------------------------
-- parex.options: executor and ray_address
---------------------------------------------------------------------------

test("options: executor and ray_address go into parex/run as executor and rayAddress when set", function()
  eq(options.run_params({ plan = { uri = "file:///p" } }, {}), { plan = { uri = "file:///p" } })
  eq(options.run_params({}, { executor = "ray", ray_address = "ray://head:10001" }),
    { executor = "ray", rayAddress = "ray://head:10001" })
  eq(options.run_params({ executor = "local" }, { executor = "ray" }), { executor = "local" })
end)

test("options: a bad executor or ray_address is named", function()
  eq(options.problems({ executor = "local" }), {})
  eq(options.problems({ executor = "ray", ray_address = "auto" }), {})
  eq(options.problems({ executor = "k8s", ray_address = "" }), {
    { option = "executor", text = 'setup(): executor must be "local" or "ray", not "k8s"' },
    { option = "ray_address", text = 'setup(): ray_address must be a non-empty string (e.g. "ray://head:10001"), not ""' },
  })
  eq(options.problems({ ray_address = 10001 })[1].text,
    'setup(): ray_address must be a non-empty string (e.g. "ray://head:10001"), not 10001')
end)

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
