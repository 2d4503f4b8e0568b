"""KPIs computed from what maintd recorded (runs, incidents, notifications, events), never typed in.

Every figure says how it was computed (``Figure.how``) and, where the seed sets one, its target.
"""
