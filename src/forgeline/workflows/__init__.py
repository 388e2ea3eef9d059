"""The flows that cross stages: train (data → tuning → evaluation → package → registry →
report), retrain (monitor → train a challenger → compare → promote), the server's periodic
monitor, the demo, and the one scheduler they run on. Stages never import each other;
what needs two of them lives here."""
