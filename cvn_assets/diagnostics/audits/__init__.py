"""The in-tree diagnostics, one file each (found by `diagnostics.registry.discover`)."""
