"""The `treasury` commands, one module per area; imported lazily by treasury.cli."""
