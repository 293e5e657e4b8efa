"""The `mixopt` command line: flow commands, run-table tools, status and serving."""
