-- Headless test of :ParexDiff, :ParexAccept, :ParexReject and :ParexRetry against the real
-- parex-lsp, on a git workspace whose plan is in review mode (PAREX_TEST_WORKSPACE).
-- Prints "ok - ..." lines; exits 0 when every check passed, 1 (reason on stderr) otherwise.
local M = {}
local h = require("parex_headless")
local out, check, wait, server_cmd = h.out, h.check, h.wait, h.server_cmd

local function test(ws)
  local parex = require("parex")
  parex.setup({ cmd = server_cmd(), open_answers = false })
  local review = require("parex.review")
  vim.cmd("edit " .. vim.fn.fnameescape(ws .. "/parex.toml"))
  parex.run({})
  local function status(id)
    local run = require("parex.client").current_run()
    return run and run.tasks[id] and run.tasks[id].status
  end
  wait(function()
    return status("keep") == "ready" and status("drop") == "ready" and status("again") == "ready"
  end, "three tasks ready")
  out("ok - three tasks ready for review")

  vim.cmd("ParexDiff keep")
  wait(function()
    return review.last_diff ~= nil
  end, "the diff of keep")
  local text = table.concat(vim.api.nvim_buf_get_lines(review.last_diff.buf, 0, -1, false), "\n")
  check(text:find("+kept", 1, true) and vim.bo[review.last_diff.buf].filetype == "diff", "diff buffer: " .. text)
  out("ok - :ParexDiff keep showed its change")
  vim.cmd("close")

  vim.cmd("ParexAccept keep")
  wait(function()
    return status("keep") == "succeeded"
  end, "keep merged")
  check(vim.fn.readfile(ws .. "/keep.txt")[1] == "kept", "keep.txt is on the base branch")
  out("ok - :ParexAccept keep merged it")

  vim.cmd("ParexReject drop")
  wait(function()
    return status("drop") == "rejected"
  end, "drop rejected")
  check(vim.fn.filereadable(ws .. "/drop.txt") == 0, "drop.txt must not be merged")
  out("ok - :ParexReject drop")

  vim.cmd("ParexRetry again use more words")
  wait(function()
    return review.last_decision and review.last_decision.action == "retry"
  end, "the retry answered")
  wait(function()
    return status("again") == "ready"
  end, "again ready once more")
  vim.cmd("ParexAccept again")
  wait(function()
    return status("again") == "succeeded"
  end, "again merged")
  local said = vim.fn.readfile(ws .. "/again.txt")
  check(said[#said] == "feedback: use more words", "the agent got the feedback: " .. vim.inspect(said))
  out("ok - :ParexRetry again passed its feedback to the agent")
end

function M.run()
  local ws = os.getenv("PAREX_TEST_WORKSPACE")
  h.main(function()
    test(ws)
  end)
end

return M
