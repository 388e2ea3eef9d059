"""Write a dataset that ships inside scikit-learn to CSV, for the spec beside this file.

    python examples/sklearn/export.py   # writes examples/sklearn/breast_cancer.csv
"""

from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_breast_cancer


def export(out: Path = Path(__file__).with_name("breast_cancer.csv")) -> Path:
    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    frame.to_csv(out, index=False)
    return out


if __name__ == "__main__":
    print(f"wrote {export()}")
