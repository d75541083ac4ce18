"""In-tree ensembles, one file each, registered with `@register_ensemble`."""
