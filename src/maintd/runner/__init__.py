"""The runner: executes claimed runs under concurrency limits and deadlines, and records them."""
