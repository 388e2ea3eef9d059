"""The model package: save/load, signature, integrity checks, safe formats, the predictor.

    from forgeline.packaging import load_model
    model = load_model("fraud@champion")
    model.predict(df)  # validated against the signature first
"""

from __future__ import annotations

from forgeline.packaging.package import (
    ModelPackage,
    load_package,
    manifest_digest,
    save_package,
    verify_package,
)
from forgeline.packaging.predictor import Predictor, load_model
from forgeline.packaging.signature import InputColumn, Signature

__all__ = ["InputColumn", "ModelPackage", "Predictor", "Signature", "load_model",
           "load_package", "manifest_digest", "save_package", "verify_package"]
