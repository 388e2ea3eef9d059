"""The PyTorch side of :mod:`forgeline.training.mlp`: the network, its training loop and
its export to ONNX. Imported only when an MLP is fitted, so that loading and serving a
fitted MLP never needs torch.

The network reads the preprocessor's matrix as it comes: the first ``len(cardinalities)``
columns are category codes (0 .. k-1, NaN for a missing or unseen category, which gets an
embedding of its own), the others are numbers that may be missing (the training mean is
used, and columns that had missing values get an indicator), standardized inside the
network with the training means and deviations (after ``log1p`` for columns that are
never negative and right-skewed, such as amounts). So the exported graph is the whole
estimator: one float32 matrix in, probabilities (classifier) or values (regressor) out.

Determinism on CPU: the seed sets the initial weights and the dropout masks (torch's
global generator, forked so that the caller's is left as it was) and the batch order (a
``torch.Generator`` of its own), and training runs on one thread.
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["Fitted", "Layout", "Settings", "export_onnx", "fit_network", "pick_device"]

OPSET = 17  # the serving converter (serving/onnx.py) writes opset 17 graphs
INPUT, OUTPUT = "features", "output"


@dataclass(frozen=True, slots=True)
class Settings:
    width: int
    depth: int
    dropout: float
    learning_rate: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    seed: int
    device: str


@dataclass(frozen=True, slots=True)
class Layout:
    """What the network is built for, learned from the training matrix."""

    cardinalities: tuple[int, ...]  # per category column: codes seen (0 .. k-1)
    mean: np.ndarray  # per numeric column (NaN ignored)
    scale: np.ndarray
    indicators: tuple[int, ...]  # numeric columns (0-based among them) with missing values
    outputs: int  # classes, or 1 for regression
    logs: np.ndarray  # per numeric column: log1p first (non-negative and right-skewed)
    y_mean: float = 0.0  # regression: the target is standardized for training
    y_scale: float = 1.0

    @classmethod
    def of(cls, X: np.ndarray, codes: int, outputs: int, y: np.ndarray | None = None
           ) -> Layout:
        cards = tuple(int(np.nanmax(X[:, j], initial=-1)) + 1 for j in range(codes))
        numbers = X[:, codes:].astype(np.float64)
        with warnings.catch_warnings():  # an all-missing column: mean 0, scale 1
            warnings.simplefilter("ignore", RuntimeWarning)
            logs = _right_skewed(numbers)
            numbers = np.where(logs, np.log1p(np.maximum(numbers, 0)), numbers)
            mean = np.nan_to_num(np.nanmean(numbers, axis=0)) if numbers.size else (
                np.zeros(numbers.shape[1]))
            scale = np.nan_to_num(np.nanstd(numbers, axis=0)) if numbers.size else (
                np.ones(numbers.shape[1]))
        scale[scale < 1e-12] = 1.0
        missing = np.isnan(numbers).any(axis=0)
        y_mean = float(np.mean(y)) if y is not None else 0.0
        y_scale = float(np.std(y)) if y is not None and np.std(y) > 0 else 1.0
        return cls(cards, mean.astype(np.float32), scale.astype(np.float32),
                   tuple(int(j) for j in np.flatnonzero(missing)), outputs, logs, y_mean,
                   y_scale)


def _right_skewed(numbers: np.ndarray) -> np.ndarray:
    """Columns that are never negative and have a long right tail (skewness above 2,
    amounts and counts): a standardized heavy tail leaves most rows near one value."""
    mean = np.nanmean(numbers, axis=0)
    centred = numbers - mean
    m2, m3 = np.nanmean(centred ** 2, axis=0), np.nanmean(centred ** 3, axis=0)
    skew = np.divide(m3, m2 ** 1.5, out=np.zeros_like(m3), where=m2 > 1e-12)
    return (np.nan_to_num(np.nanmin(numbers, axis=0), nan=-1.0) >= 0) & (skew > 2)


def _embedding_size(cardinality: int) -> int:
    """fast.ai's rule of thumb, capped: 1.6 * n^0.56, at most 16."""
    return max(1, min(16, round(1.6 * (cardinality + 1) ** 0.56)))


class Network(nn.Module):
    """Embeddings + numbers -> (Linear, BatchNorm, ReLU, Dropout) x depth -> Linear."""

    def __init__(self, layout: Layout, width: int, depth: int, dropout: float,
                 classify: bool) -> None:
        super().__init__()
        self.codes = len(layout.cardinalities)
        self.classify = classify
        # one extra code per column: missing or unseen
        self.embeddings = nn.ModuleList(nn.Embedding(k + 1, _embedding_size(k))
                                        for k in layout.cardinalities)
        self.register_buffer("unknown", torch.tensor(layout.cardinalities,
                                                     dtype=torch.float32).reshape(1, -1))
        self.register_buffer("logs", torch.from_numpy(layout.logs).reshape(1, -1))
        self.any_logs = bool(layout.logs.any())
        self.register_buffer("mean", torch.from_numpy(layout.mean).reshape(1, -1))
        self.register_buffer("scale", torch.from_numpy(layout.scale).reshape(1, -1))
        self.register_buffer("indicators", torch.tensor(layout.indicators, dtype=torch.long))
        self.register_buffer("y_mean", torch.tensor(layout.y_mean, dtype=torch.float32))
        self.register_buffer("y_scale", torch.tensor(layout.y_scale, dtype=torch.float32))
        size = (sum(e.embedding_dim for e in self.embeddings) + len(layout.mean)
                + len(layout.indicators))
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.BatchNorm1d(width), nn.ReLU(),
                       nn.Dropout(dropout)]
            size = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, layout.outputs)
        self.training_output = True  # logits / standardized values while training

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        codes, numbers = x[:, :self.codes], x[:, self.codes:]
        parts = []
        if self.codes:
            codes = torch.where(torch.isnan(codes), self.unknown, codes)
            codes = torch.minimum(codes, self.unknown).to(torch.long)
            parts += [embed(codes[:, j]) for j, embed in enumerate(self.embeddings)]
        missing = torch.isnan(numbers)
        if self.any_logs:
            numbers = torch.where(self.logs, torch.log1p(torch.clamp(numbers, min=0.0)),
                                  numbers)
        parts.append(torch.where(missing, torch.zeros_like(numbers),
                                 (numbers - self.mean) / self.scale))
        if len(self.indicators):
            parts.append(missing.index_select(1, self.indicators).to(x.dtype))
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.body(self.inputs(x)))
        if self.training_output:
            return out
        if self.classify:
            return torch.softmax(out, dim=1)
        return out * self.y_scale + self.y_mean


class _Frozen(nn.Module):
    """The trained network for export: each BatchNorm folded into its Linear, dropout gone,
    the layers as MatMul + Add (which ONNX Runtime's dynamic quantization rewrites;
    it leaves Gemm alone)."""

    def __init__(self, net: Network) -> None:
        super().__init__()
        self.net = net
        pairs, modules = [], list(net.body)
        for i in range(0, len(modules), 4):
            pairs.append(torch.nn.utils.fusion.fuse_linear_bn_eval(modules[i], modules[i + 1]))
        pairs.append(net.head)
        self.weights = nn.ParameterList(nn.Parameter(p.weight.detach().t().contiguous())
                                        for p in pairs)
        self.biases = nn.ParameterList(nn.Parameter(p.bias.detach().clone()) for p in pairs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net.inputs(x)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.matmul(h, w) + b
            if i < last:
                h = torch.relu(h)
        if self.net.classify:
            return torch.softmax(h, dim=1)
        return h * self.net.y_scale + self.net.y_mean


@dataclass(frozen=True, slots=True)
class Fitted:
    onnx: bytes
    epochs: int  # trained
    best_epoch: int  # whose weights are kept (early stopping)
    device: str


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def fit_network(X: np.ndarray, y: np.ndarray, valid: np.ndarray, layout: Layout,
                settings: Settings, classify: bool, class_weight: np.ndarray | None
                ) -> Fitted:
    """Train on the rows not in ``valid`` (a boolean mask), stop early on the loss over the
    ``valid`` rows, keep the best epoch's weights and export them to ONNX.

    ``y``: class indices (classifier) or the raw target (regressor).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # parallelism is at the level of trials
    cuda = pick_device(settings.device) == "cuda"
    try:  # the seeding below leaves the caller's random generators as they were
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cuda else []):
            return _fit(X, y, valid, layout, settings, classify, class_weight)
    finally:
        torch.set_num_threads(threads)


def _fit(X: np.ndarray, y: np.ndarray, valid: np.ndarray, layout: Layout,
         settings: Settings, classify: bool, class_weight: np.ndarray | None) -> Fitted:
    device = torch.device(pick_device(settings.device))
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)  # dropout masks (CPU) and the initial weights
    if device.type == "cuda":
        torch.cuda.manual_seed_all(settings.seed)
    net = Network(layout, settings.width, settings.depth, settings.dropout, classify)
    net.to(device)
    features = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(device)
    if classify:
        target = torch.from_numpy(y.astype(np.int64)).to(device)
        weight = None if class_weight is None else torch.from_numpy(
            class_weight.astype(np.float32)).to(device)
        loss_fn: nn.Module = nn.CrossEntropyLoss(weight=weight)
    else:
        target = torch.from_numpy(((y - layout.y_mean) / layout.y_scale).astype(
            np.float32).reshape(-1, 1)).to(device)
        loss_fn = nn.MSELoss()
    fit_rows = torch.from_numpy(np.flatnonzero(~valid)).to(device)
    valid_rows = torch.from_numpy(np.flatnonzero(valid)).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    best, best_epoch, best_state, epoch = float("inf"), 0, copy.deepcopy(net.state_dict()), 0
    for epoch in range(1, settings.max_epochs + 1):
        net.train()
        order = fit_rows[torch.randperm(len(fit_rows), generator=generator).to(device)]
        for start in range(0, len(order), settings.batch_size):
            batch = order[start:start + settings.batch_size]
            if len(batch) < 2:  # BatchNorm needs two rows
                continue
            optimizer.zero_grad()
            loss = loss_fn(net(features[batch]), target[batch])
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            rows = valid_rows if len(valid_rows) else fit_rows
            score = float(loss_fn(net(features[rows]), target[rows]))
        if score < best - 1e-6:
            best, best_epoch, best_state = score, epoch, copy.deepcopy(net.state_dict())
        elif epoch - best_epoch >= settings.patience:
            break
    net.load_state_dict(best_state)
    net.to("cpu").eval()
    net.training_output = False
    return Fitted(export_onnx(net, X.shape[1]), epoch, best_epoch, device.type)


def export_onnx(net: Network, n_features: int) -> bytes:
    """The trained network as a float32 ONNX graph: ``features`` (n x n_features) in,
    ``output`` out; the batch dimension is dynamic.

    torch 2.13's TorchScript exporter (``dynamo=False``): ~0.1 s a network against ~1.5 s
    for the torch.export-based one (which also needs onnxscript), and this runs after every
    fit, CV folds included. The graph is checked against the network by the tests.
    """
    frozen = _Frozen(net).eval()
    buffer = io.BytesIO()
    sample = torch.zeros(2, n_features)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice
        torch.onnx.export(frozen, (sample,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "rows"}, OUTPUT: {0: "rows"}})
    return buffer.getvalue()
