"""Remediation: playbooks map an alert type to an action, run under guardrails, then verify.

Flow (the engine drives it, off the alert path):

1. ``intake``: new ``alert.firing`` events, read after a durable cursor, are matched to the
   plan's playbooks; ``guardrails.decide`` (a pure function) says executed, suppressed or
   needs approval, and each decision becomes a ``remediations`` row and an event on the
   incident's timeline.
2. ``executor``: queued rows are claimed one per target at a time (a conditional update and
   a unique index on running targets), the action runs (``actions/``, one module each,
   registered in ``registry``), then the failing check is run again.
3. ``outcome``: success mitigates the incident; failure escalates now with what was tried and
   counts towards the playbook's circuit breaker.
"""
