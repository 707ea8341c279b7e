-- setup() options that reach the server: checked once, then added to each parex/run.
-- Pure (no vim.*): tests/clients/lua/test_pure.lua runs it in luajit.
local M = {}

local EXECUTORS = { ["local"] = true, ray = true }

local function shown(v)
  return type(v) == "string" and string.format("%q", v) or tostring(v)
end

--- What is wrong with the options: { option = name, text } each ({} when nothing is).
function M.problems(opts)
  local out = {}
  if opts.executor ~= nil and not EXECUTORS[opts.executor] then
    table.insert(out, { option = "executor",
      text = 'setup(): executor must be "local" or "ray", not ' .. shown(opts.executor) })
  end
  if opts.ray_address ~= nil and not (type(opts.ray_address) == "string" and opts.ray_address:match("%S")) then
    table.insert(out, { option = "ray_address",
      text = 'setup(): ray_address must be a non-empty string (e.g. "ray://head:10001"), not ' .. shown(opts.ray_address) })
  end
  return out
end

--- `params` of a parex/run with the executor options of setup() (executor, rayAddress) when
--- they are set and the call did not give its own.
function M.run_params(params, opts)
  if opts.executor ~= nil and params.executor == nil then
    params.executor = opts.executor
  end
  if opts.ray_address ~= nil and params.rayAddress == nil then
    params.rayAddress = opts.ray_address
  end
  return params
end

return M
