"""The scheduler: keeps one due time per task and target, and claims what is due."""
