-- Finding plans and the workspace root they belong to.
local calls = require("parex.calls")
local uv = require("parex.compat").uv

local M = {}

function M.is_plan_name(path)
  local name = vim.fn.fnamemodify(path, ":t")
  return name == "parex.toml" or name:match("%.parex%.toml$") ~= nil
end

local function dir_has_plan(dir)
  local handle = uv.fs_scandir(dir)
  if not handle then
    return false
  end
  while true do
    local name, kind = uv.fs_scandir_next(handle)
    if not name then
      return false
    end
    if kind ~= "directory" and M.is_plan_name(name) then
      return true
    end
  end
end

local function parent(dir)
  local up = vim.fn.fnamemodify(dir, ":h")
  if up == dir then
    return nil
  end
  return up
end

-- The nearest directory at or above `path` that holds a plan (parex.toml or *.parex.toml).
function M.find_root(path)
  if not path or path == "" then
    return nil
  end
  path = vim.fn.fnamemodify(path, ":p")
  local dir = path
  local stat = uv.fs_stat(dir)
  if not stat or stat.type ~= "directory" then
    dir = vim.fn.fnamemodify(path, ":h")
  end
  dir = dir:gsub("/+$", "")
  if dir == "" then
    dir = "/"
  end
  while dir do
    if dir_has_plan(dir) then
      return dir
    end
    dir = parent(dir)
  end
  return nil
end

-- Where to start a server for a buffer that has `callN:` lines but no plan above it:
-- the enclosing git work tree, or the file's own directory.
function M.fallback_root(path)
  path = vim.fn.fnamemodify(path, ":p")
  local dir = vim.fn.fnamemodify(path, ":h")
  local probe = dir
  while probe do
    if uv.fs_stat(probe .. "/.git") then
      return probe
    end
    probe = parent(probe)
  end
  return dir
end

function M.buf_has_calls(bufnr)
  return calls.any(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false))
end

-- Zero-based line of task `task_id` in the plan text `lines`: its `id = "..."` line
-- in a TOML plan, its `callN:` line in a call plan.
function M.task_line(lines, task_id)
  local plain = vim.pesc(task_id)
  for i, line in ipairs(lines) do
    if line:match("^%s*id%s*=%s*[\"']" .. plain .. "[\"']") then
      return i - 1
    end
  end
  for i, line in ipairs(lines) do
    if calls.call_id(line) == task_id then
      return i - 1
    end
  end
  return nil
end

return M
