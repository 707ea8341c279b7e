-- What the headless Neovim tests share: "ok - ..." lines on stdout, checks that stop the test
-- with a message, waiting, the server command under test (PAREX_LSP_CMD), the notifications
-- seen, and main(), which exits 0 after every check passed and 1 (with "FAIL: ..." on stderr)
-- otherwise.
local M = {}

M.TIMEOUT = 60000

function M.out(line)
  io.stdout:write(line .. "\n")
  io.stdout:flush()
end

local Failure = {}

function M.check(cond, msg)
  if not cond then
    error(setmetatable({ msg = msg }, Failure), 2)
  end
  return cond
end

function M.wait(cond, what, timeout)
  M.check(vim.wait(timeout or M.TIMEOUT, cond, 20), "timed out waiting for " .. what)
end

-- PAREX_LSP_CMD: a JSON list or a space-separated command; else the checkout's own server.
function M.server_cmd()
  local env = os.getenv("PAREX_LSP_CMD")
  if env and env:match("^%s*%[") then
    return vim.fn.json_decode(env)
  end
  if env and env ~= "" then
    local cmd = {}
    for word in env:gmatch("%S+") do
      table.insert(cmd, word)
    end
    return cmd
  end
  return { vim.g.parex_test_repo .. "/.venv/bin/parex-lsp", "--stdio" }
end

-- An environment variable naming a directory, without its trailing slash.
function M.dir_env(name)
  local dir = os.getenv(name)
  M.check(dir and dir ~= "" and vim.fn.isdirectory(dir) == 1, name .. " is not a directory: " .. tostring(dir))
  return (vim.fn.fnamemodify(dir, ":p"):gsub("/$", ""))
end

M.notifications = {}

function M.main(fn)
  local orig_notify = vim.notify
  vim.notify = function(msg, level, opts)
    table.insert(M.notifications, { msg = tostring(msg), level = level or vim.log.levels.INFO })
    io.stdout:write("  notify[" .. tostring(level) .. "] " .. tostring(msg):gsub("\n", "\n    ") .. "\n")
    return orig_notify(msg, level, opts)
  end
  local ok, err = xpcall(fn, function(e)
    if getmetatable(e) == Failure then
      return e.msg
    end
    return debug.traceback(tostring(e), 2)
  end)
  if ok then
    M.out("ok - all checks passed")
    vim.cmd("qa!")
  else
    io.stderr:write("FAIL: " .. tostring(err) .. "\n")
    io.stderr:flush()
    vim.cmd("cquit 1")
  end
end

return M
