"""Canonical training nodes, one implementation each, shared by every model and ensemble."""
