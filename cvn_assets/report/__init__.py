"""The proxy-vs-economy report's presentation: plots and the self-contained HTML page (no Dagster)."""
