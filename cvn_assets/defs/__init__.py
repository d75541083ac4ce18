"""The thin Dagster shell: partitions, asset factories, checks, jobs and resources wiring `cvn_assets.steps`."""
