"""In-tree model adapters, one file each, registered with `@register_model`."""
