-- Drafted plans (:ParexPlan): the name of the new buffer, and the answer's problems as
-- vim.diagnostic entries. Pure (no vim.*): tests/clients/lua/test_pure.lua runs it in luajit.
local M = {}

--- `<root>/plan.parex.toml`, else plan-2.parex.toml, plan-3... : the first name `taken(path)`
--- says is free (no buffer has it, no file is there: a draft never overwrites a file).
function M.free_name(root_dir, taken)
  local dir = root_dir:gsub("/+$", "")
  local path = dir .. "/plan.parex.toml"
  local n = 1
  while taken(path) do
    n = n + 1
    path = string.format("%s/plan-%d.parex.toml", dir, n)
  end
  return path
end

--- The workspace-relative path of `path` when it lies inside root_dir, else nil.
function M.relative(root_dir, path)
  if type(path) ~= "string" then
    return nil
  end
  local dir = root_dir:gsub("/+$", "") .. "/"
  if path:sub(1, #dir) == dir and #path > #dir then
    return path:sub(#dir + 1)
  end
  return nil
end

--- The lines of a drafted plan's text (its last newline ends the last line, it adds none).
function M.lines(text)
  local lines = {}
  for line in (tostring(text or "") .. "\n"):gmatch("([^\n]*)\n") do
    table.insert(lines, line)
  end
  if #lines > 1 and lines[#lines] == "" then
    table.remove(lines)
  end
  return lines
end

local function clamp(n, low, high)
  n = tonumber(n) or low
  if n < low then
    return low
  end
  if n > high then
    return high
  end
  return n
end

--- The answer's problems (LSP Diagnostics on the text) as vim.diagnostic entries, their lines
--- kept within the buffer's `line_count` lines.
function M.diagnostics(problems, line_count)
  local out = {}
  local last = math.max(0, (line_count or 1) - 1)
  for _, p in ipairs(problems or {}) do
    if type(p) == "table" and type(p.message) == "string" then
      local range = type(p.range) == "table" and p.range or {}
      local start = type(range.start) == "table" and range.start or {}
      local stop = type(range["end"]) == "table" and range["end"] or start
      local lnum = clamp(start.line, 0, last)
      local end_lnum = clamp(stop.line, lnum, last)
      table.insert(out, {
        lnum = lnum,
        col = clamp(start.character, 0, math.huge),
        end_lnum = end_lnum,
        end_col = clamp(stop.character, 0, math.huge),
        severity = clamp(p.severity or 1, 1, 4),
        message = p.message,
        source = type(p.source) == "string" and p.source or "parex",
        code = p.code,
      })
    end
  end
  return out
end

--- One line telling what came back: rounds, and how many problems are left.
function M.summary(result, path)
  local name = tostring(path):match("([^/]+)$") or tostring(path)
  local rounds = tonumber(result.rounds) or 0
  local drafts = rounds == 1 and "1 draft" or string.format("%d drafts", rounds)
  if result.valid then
    return string.format("plan drafted in %s: %s (unsaved; :w to keep it)", drafts, name)
  end
  local n = #(result.problems or {})
  return string.format("plan drafted with %d problem%s left after %s: %s (unsaved; see its diagnostics)", n,
    n == 1 and "" or "s", drafts, name)
end

return M
