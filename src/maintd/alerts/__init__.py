"""Alerts: signals that something is wrong, from runs or from outside, identified by fingerprint."""
