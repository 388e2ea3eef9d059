"""Small helpers every layer may use: atomic writes (:mod:`.files`) and time (:mod:`.time`).

Foundation: nothing here imports Forgeline above ``errors``.
"""
