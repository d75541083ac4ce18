"""The artifact store's formats: every value an asset hands to the next one, as files that any process (or
pod) reads back without our classes' pickles: parquet for frames, the libraries' own files for models,
JSON for small structured values."""
