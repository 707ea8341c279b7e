-- Small shims over the Neovim API differences between 0.7 and 0.11.
local M = {}

M.uv = vim.uv or vim.loop

--- Epoch seconds with a fraction: cooldowns end at fractional `until`s, and a whole-second
--- clock would show "4s" of a 3-second wait.
function M.now()
  local sec, usec = M.uv.gettimeofday()
  if type(sec) ~= "number" then
    return os.time()
  end
  return sec + (usec or 0) / 1e6
end

local function has(version)
  return vim.fn.has("nvim-" .. version) == 1
end

M.has = has

-- Client methods became colon methods in 0.11 (the dot form is deprecated there).
local colon = has("0.11")

function M.request(client, method, params, handler, bufnr)
  if colon then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.notify(client, method, params)
  if colon then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.cancel_request(client, id)
  if colon then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

function M.is_stopped(client)
  if colon then
    return client:is_stopped()
  end
  return client.is_stopped()
end

function M.stop(client, force)
  if colon then
    return client:stop(force)
  end
  return client.stop(force)
end

function M.get_client(id)
  if not id then
    return nil
  end
  local client = vim.lsp.get_client_by_id(id)
  if client and not M.is_stopped(client) then
    return client
  end
  return nil
end

-- Start a client for config.root_dir (or reuse the one running there) and attach bufnr to it.
-- Returns the client id. `existing` is the id we already hold for that root, if any.
-- vim.lsp.start (0.8+) takes opts.bufnr only from 0.9 on; before, start_client + attach.
function M.start(config, bufnr, existing)
  local client = M.get_client(existing)
  local id = client and client.id
  if not id then
    if vim.lsp.start and has("0.9") then
      id = vim.lsp.start(config, {
        bufnr = bufnr,
        reuse_client = function(c, conf)
          return c.name == conf.name and c.config.root_dir == conf.root_dir
        end,
      })
    else
      id = vim.lsp.start_client(config)
    end
  end
  if id and not vim.lsp.buf_is_attached(bufnr, id) then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

function M.lsp_namespace(client_id)
  return vim.lsp.diagnostic.get_namespace(client_id)
end

function M.exec_user_autocmd(pattern)
  if vim.api.nvim_exec_autocmds then
    pcall(vim.api.nvim_exec_autocmds, "User", { pattern = pattern, modeline = false })
  end
end

return M
