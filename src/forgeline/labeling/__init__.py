"""Labelling: labelling functions, the LLM labeller, the label model, label errors and the
review queue (``forgeline label``). Each source is one column of a label matrix of class
indices (``-1``: abstain)."""
