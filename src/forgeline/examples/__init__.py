"""Example scenarios shipped with Forgeline (``forgeline demo`` uses :mod:`.fraud`)."""
