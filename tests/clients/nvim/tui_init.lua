-- Init for the terminal test (tests/clients/test_nvim_tui.py): Neovim's own screen in tmux,
-- the plugin set up, the statusline showing the run, nothing of the user's configuration.
local this = debug.getinfo(1, "S").source:sub(2)
local repo = vim.fn.fnamemodify(this, ":p:h:h:h:h")
vim.opt.runtimepath:prepend(repo .. "/editors/nvim")
vim.opt.swapfile = false
vim.opt.shadafile = "NONE"
vim.o.laststatus = 2
vim.o.statusline = "%f%=%{v:lua.require'parex'.statusline()} "
local cmd = os.getenv("PAREX_LSP_CMD")
require("parex").setup({ cmd = cmd and vim.fn.json_decode(cmd) or nil })
