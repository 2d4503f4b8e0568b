"""Notifications: the log of what is to be sent to whom, and the senders that deliver it."""
