"""The one training path: model registry, adapters, `train_one` and evaluation metrics."""
