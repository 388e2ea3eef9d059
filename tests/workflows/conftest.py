"""The training fixtures (real data files and specs) for the flows that train."""

from tests.training.conftest import fraud_frame, fraud_spec

__all__ = ["fraud_frame", "fraud_spec"]
