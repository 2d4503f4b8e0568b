"""What a page says: severity, summary, target, runbook, links, deadline."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Message(BaseModel):
    """Stored with its notification as it was when queued, so a resend says the same."""

    title: str
    summary: str
    state: str  # triggered, acknowledged, resolved, handoff, ...
    incident_id: int | None = None
    priority: str | None = None
    severity: str | None = None
    target: str | None = None
    runbook: str | None = None
    deadline: datetime | None = None
    url: str | None = None  # the incident in the API
    ack_url: str | None = None
    resolve_url: str | None = None
    details: list[str] = []  # further lines: escalation level, alerts, handoff report

    def heading(self) -> str:
        """The subject line: ``[P1] TRIGGERED #42 disk full on db01``."""
        parts = [f"[{self.priority}]" if self.priority else "", self.state.upper()]
        parts += [f"#{self.incident_id}" if self.incident_id is not None else "", self.title]
        return " ".join(p for p in parts if p)

    def body(self) -> str:
        """Plain text, one fact a line; apprise renders it per service."""
        lines = [self.summary]
        facts = (
            ("Priority", self.priority),
            ("Severity", self.severity),
            ("Target", self.target),
            ("Acknowledge by", self.deadline.strftime("%Y-%m-%d %H:%M UTC") if self.deadline else None),
            ("Runbook", self.runbook),
            ("Acknowledge", self.ack_url),
            ("Resolve", self.resolve_url),
            ("Incident", self.url),
        )
        lines += [f"{name}: {value}" for name, value in facts if value]
        lines += self.details
        return "\n".join(lines)
