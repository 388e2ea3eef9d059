"""The lineage of a model version as a small graph laid out on the server, drawn as SVG by
``lineage.html`` (no script): version → its training run → the run's datasets, its code
version and its parent runs (the whole ``parent_run_id`` chain, left to right).

Columns are fixed: the version, the run, then one row per input of the run; a parent's own
parent continues its row to the right. Text is cut to fit a box; the full text is the
box's tooltip.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeline.entities import Lineage
from forgeline.server.ui.render import UI_PREFIX, fmt_time

__all__ = ["Edge", "Graph", "Node", "layout"]

W, H = 230, 62  # a box
GAP_X, GAP_Y = 80, 14
PAD = 8
CHARS = 32  # what fits on one line of a box at the template's font size


@dataclass(frozen=True, slots=True)
class Node:
    """A box: ``kind`` picks its colour (version, run, dataset, code, parent)."""

    x: int
    y: int
    kind: str
    title: str
    lines: tuple[str, ...]
    href: str | None
    tooltip: str

    @property
    def short_title(self) -> str:
        return _cut(self.title, CHARS - 4)

    @property
    def short_lines(self) -> tuple[str, ...]:
        return tuple(_cut(line, CHARS) for line in self.lines)


@dataclass(frozen=True, slots=True)
class Edge:
    """A curve from the right side of one box to the left side of another."""

    x1: int
    y1: int
    x2: int
    y2: int
    label: str

    @property
    def path(self) -> str:
        mid = (self.x1 + self.x2) / 2
        return f"M{self.x1},{self.y1} C{mid},{self.y1} {mid},{self.y2} {self.x2},{self.y2}"


@dataclass(frozen=True, slots=True)
class Graph:
    width: int
    height: int
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    box_w: int = W
    box_h: int = H


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _x(column: int) -> int:
    return PAD + column * (W + GAP_X)


def _y(row: int) -> int:
    return PAD + row * (H + GAP_Y)


def _edge(a: Node, b: Node, label: str) -> Edge:
    return Edge(a.x + W, a.y + H // 2, b.x, b.y + H // 2, label)


def layout(lineage: Lineage) -> Graph:
    """Boxes and arrows for ``lineage``; links go to the UI's run and model pages."""
    mv, run = lineage.model_version, lineage.run
    inputs: list[tuple[Node, str]] = []  # column 2, one row each, with the edge's label
    if run is not None:
        for dataset, context in lineage.datasets:
            shape = (f"{dataset.num_rows:,} rows, {dataset.num_columns} columns"
                     if dataset.num_rows is not None and dataset.num_columns is not None
                     else "")
            inputs.append((Node(0, 0, "dataset", dataset.name,
                                (shape, f"sha256 {dataset.digest[:12]}"), None,
                                f"{dataset.name} ({context}): {dataset.source}\n"
                                f"sha256 {dataset.digest}"), context or "data"))
        if lineage.git_commit:
            dirty = " + uncommitted changes" if lineage.git_dirty else ""
            inputs.append((Node(0, 0, "code", f"commit {lineage.git_commit[:10]}",
                                (("clean" if lineage.git_dirty is False else dirty.strip(" +"))
                                 or "git",), None, f"git commit {lineage.git_commit}{dirty}"),
                           "code"))
    rows = max(1, len(inputs) + (1 if lineage.parent_runs else 0))
    middle = _y(0) + (_y(rows - 1) - _y(0)) // 2
    aliases = ", ".join(f"@{a}" for a in mv.aliases)
    version = Node(_x(0), middle, "version", f"{mv.name} v{mv.version}",
                   (aliases or "no alias", fmt_time(mv.creation_time)),
                   f"{UI_PREFIX}/models/{mv.name}?version={mv.version}#lineage",
                   f"{mv.ref} {aliases}".strip())
    nodes, edges = [version], []
    if run is None:
        return Graph(_x(1) - GAP_X + PAD, _y(1) - GAP_Y + PAD, tuple(nodes), ())
    run_node = Node(_x(1), middle, "run", f"run {run.name or run.run_id[:8]}",
                    (run.status.value.lower() + " " + fmt_time(run.start_time),
                     run.run_id), f"{UI_PREFIX}/runs/{run.run_id}",
                    f"training run {run.name} ({run.run_id})")
    nodes.append(run_node)
    edges.append(_edge(version, run_node, "trained by"))
    for row, (node, label) in enumerate(inputs):
        placed = Node(_x(2), _y(row), node.kind, node.title, node.lines, node.href,
                      node.tooltip)
        nodes.append(placed)
        edges.append(_edge(run_node, placed, label))
    previous, columns = run_node, 2
    for depth, parent in enumerate(lineage.parent_runs):
        node = Node(_x(2 + depth), _y(len(inputs)), "parent",
                    f"run {parent.name or parent.run_id[:8]}",
                    (parent.tags.get("forgeline.kind", "parent run"), parent.run_id),
                    f"{UI_PREFIX}/runs/{parent.run_id}", f"parent run {parent.name} "
                    f"({parent.run_id})")
        nodes.append(node)
        edges.append(_edge(previous, node, "child of"))
        previous, columns = node, 3 + depth
    columns = max(columns, 3 if inputs else 2)
    return Graph(_x(columns) - GAP_X + PAD, _y(rows) - GAP_Y + PAD, tuple(nodes),
                 tuple(edges))
