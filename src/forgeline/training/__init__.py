"""Training: the spec, features, the model zoo, cross-validated tuning, model selection and
evaluation. The flow that runs them in order (``forgeline train``) is
:mod:`forgeline.workflows.train`.
"""
