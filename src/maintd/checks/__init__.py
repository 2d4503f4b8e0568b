"""Task kinds: one folder each (config model + code + docs), registered in maintd.registry."""
