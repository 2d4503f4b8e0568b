"""maintd: the maintenance and incident engine.

A maintenance plan written as YAML runs itself: tasks on schedules inside their
windows, every run recorded, every state change an event.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
