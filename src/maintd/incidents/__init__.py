"""Incidents: alerts grouped under a priority, with a state, a response deadline and a timeline."""
