"""The CLI commands, one module per side of the pipeline; runegen.cli registers them."""
