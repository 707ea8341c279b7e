-- The plugin's state, one table shared by its modules (the reducer's part is `runs`).
local runs = require("parex.runs")

return {
  opts = {},
  setup_done = false,
  runs = runs.new(), -- the reducer's state: every run and task the server told of
  clients = {}, -- root dir -> client id
  ready = {}, -- client id -> true once initialized
  waiting = {}, -- client id -> callbacks to run once initialized
  pending = {}, -- { client_id, request_id, plan_uri, label } of parex/run requests in flight
  plan_pending = nil, -- { request, client_id, request_id } of the parex/plan request in flight
  last = nil, -- { result, plan_uri, client_id } of the last finished run
  last_answers = nil, -- { result, prompts, label } of the last finished run that had answers
  diagnostics = {}, -- uri -> the raw LSP diagnostics last published there
  progress = {}, -- progress token -> { kinds seen, in order } (what the server sent; not state)
  messages = {}, -- { text, level } of the notices shortened to one line, newest last
  log_requests = 0, -- :ParexLog requests in flight (their window/showDocument opens a log)
  shown = {}, -- log path -> true when window/showDocument opened it
  cmd_warned = {}, -- server commands found missing (said once)
}
