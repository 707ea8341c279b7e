from parex_lsp.cli import main

raise SystemExit(main())
