-- Which lines of a document are `callN:` lines. Pure Lua (no vim API), so that it is tested
-- with a plain Lua interpreter against the shared table tests/cases/call_lines.json.
--
-- The plugin only detects call lines (to attach buffers, to label a run, to find a task's line
-- when the server gave none): a call's prompt is the server's to read, never the plugin's.
local M = {}

-- A `callN:` line, possibly behind a comment marker or a list bullet
-- (`# call1: ...`, `// call2: ...`, `- call3: ...`); the same shapes the server accepts.
local PREFIXES = { "#+", "//+", "%-%-", ";+", "%*", "%-", ">" }

-- The call id of `line` ("call3"), or nil when it is not a call line.
function M.call_id(line)
  if type(line) ~= "string" then
    return nil
  end
  local id = line:match("^%s*(call%d+)%s*:")
  if id then
    return id
  end
  for _, prefix in ipairs(PREFIXES) do
    id = line:match("^%s*" .. prefix .. "%s*(call%d+)%s*:")
    if id then
      return id
    end
  end
  return nil
end

-- The call lines among `lines`: { {id = "call1", line = zero-based index}, ... }.
function M.find(lines)
  local found = {}
  for i, line in ipairs(lines or {}) do
    local id = M.call_id(line)
    if id then
      table.insert(found, { id = id, line = i - 1 })
    end
  end
  return found
end

function M.any(lines)
  for _, line in ipairs(lines or {}) do
    if M.call_id(line) then
      return true
    end
  end
  return false
end

return M
