"""Hyperparameters live in configuration, not code: key naming, the one type table, the resolver."""
