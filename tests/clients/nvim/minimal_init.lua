-- Minimal init for the headless test: the plugin and the test module on the runtimepath,
-- nothing from the user's configuration.
local this = debug.getinfo(1, "S").source:sub(2)
local test_dir = vim.fn.fnamemodify(this, ":p:h")
local repo = vim.fn.fnamemodify(test_dir, ":h:h:h")

vim.opt.runtimepath:prepend(repo .. "/editors/nvim")
vim.opt.runtimepath:prepend(test_dir)
vim.opt.swapfile = false
vim.opt.shadafile = "NONE"
vim.opt.more = false

vim.g.parex_test_repo = repo
