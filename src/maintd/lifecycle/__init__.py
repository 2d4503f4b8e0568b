"""Lifecycle: the component inventory and its version support policy, the documentation registry
and the training matrix. The plan declares (maintd.plan.lifecycle); this room records what happens
(stage transitions, reviews, trainings completed) as events and reads status back from them."""
