"""cvn_assets: a Dagster code location for crypto ML finetune-factor sweeps."""

__version__ = "0.1.0"
