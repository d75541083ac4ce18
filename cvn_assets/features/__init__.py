"""Feature sets: each one file in `sets/` (or a `cvn_assets.plugins` entry point), registered by name."""
