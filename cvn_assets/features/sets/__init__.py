"""The in-tree feature sets: every module here is imported and registers one (`features/registry.py`)."""
