"""The built-in remediation actions, one module each (see maintd.remediation.registry)."""
