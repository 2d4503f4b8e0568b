"""The alert intake: ``maintd intake``, a light process that validates alert requests and journals
them in the ``alert_intake`` table (committed before its 2xx), and the drain
(``maintd.intake.drain``), run by ``maintd serve``, that takes the journal through the pipeline.

Nothing here may import SQLAlchemy: the intake process imports this package and must stay light.
"""
