"""Pure domain logic: no Dagster import anywhere below this package."""
