"""Who may do what with reviews: one table for the API routes and the dashboard's forms."""

from __future__ import annotations

from maintd.auth import Role

READ = Role.viewer  # the reviews, their checklists and findings
# Open a review, record an area reviewed, add and change findings, complete: the sign-off.
RECORD = Role.team_lead
