"""Smaller and faster variants of a trained model: distillation, compression and
compilation of tree ensembles, quantization of neural networks (``forgeline optimize``)."""
