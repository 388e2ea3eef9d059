"""Labelling: labelling functions, the LLM labeller, the label model, label errors and the
review queue (issue 17). Every source becomes one column of a :class:`~.matrix.LabelMatrix`."""
