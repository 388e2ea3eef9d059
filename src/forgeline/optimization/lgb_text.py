"""LightGBM's text model, read and rewritten: trees cut off and leaves that change nothing
merged away.

LightGBM saves a booster as text (``Booster.model_to_string``) and builds one from it
(``Booster(model_str=...)``): a header, one ``Tree=i`` block per tree, ``end of trees``,
then feature importances and parameters. A tree block lists its internal nodes
(``split_feature``, ``threshold``, ``decision_type``, ``left_child``/``right_child`` where
``-(j + 1)`` names leaf ``j``, the ``internal_*`` statistics), its leaves (``leaf_value``,
``leaf_weight``, ``leaf_count``) and, for categorical splits, ``cat_boundaries`` and
``cat_threshold`` (a split's ``threshold`` is then its index into the boundaries).

:func:`prune` rewrites the tree blocks only; every other line is kept byte for byte, and
the header's ``tree_sizes`` (each block's length, which LightGBM uses to parse the trees
in parallel) is recomputed. Values are kept as the text LightGBM wrote (no float round
trip), so a model with nothing to prune comes back identical (tested).

Invariant: a row's raw score under the pruned model differs from the original's by at most
``tolerance`` per tree it passes through, where ``tolerance`` is relative to the model's
largest leaf value (1e-12 by default, far below the 1e-9 the tests hold it to).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PruneResult", "prune"]

_TREE = "Tree="
_END = "end of trees"
_NODE_KEYS = ("split_feature", "split_gain", "threshold", "decision_type", "internal_value",
              "internal_weight", "internal_count")
_LEAF_KEYS = ("leaf_value", "leaf_weight", "leaf_count")
_ORDER = ("num_leaves", "num_cat", "split_feature", "split_gain", "threshold",
          "decision_type", "left_child", "right_child", "leaf_value", "leaf_weight",
          "leaf_count", "internal_value", "internal_weight", "internal_count",
          "cat_boundaries", "cat_threshold")


@dataclass(frozen=True, slots=True)
class PruneResult:
    """The pruned model text and what was removed."""

    text: str
    leaves_before: int
    leaves_after: int
    trees_before: int
    trees_after: int


@dataclass(slots=True)
class _Leaf:
    index: int  # its place in the original tree (the rewrite keeps that order)
    value: str  # as LightGBM wrote it
    weight: str
    count: str

    @property
    def number(self) -> float:
        return float(self.value)


@dataclass(slots=True)
class _Node:
    index: int
    fields: dict[str, str]  # the _NODE_KEYS of this split, as written
    cats: list[str]  # cat_threshold words of a categorical split, else []
    left: _Node | _Leaf
    right: _Node | _Leaf


@dataclass(slots=True)
class _Tree:
    root: _Node | _Leaf
    rest: list[str] = field(default_factory=list)  # is_linear=..., shrinkage=..., as written


def prune(text: str, tolerance: float = 1e-12) -> PruneResult:
    """Merge sibling leaves whose values differ by at most ``tolerance`` (relative to the
    largest leaf value of the model), repeatedly up the tree, and drop the boosting rounds
    whose every tree is then one leaf of value ~0.

    Linear trees (``linear_tree``) are left as they are.
    """
    head, blocks, tail = _split(text)
    per_round = int(_header_value(head, "num_tree_per_iteration") or 1)
    trees = [_parse(b) for b in blocks]
    scale = max((abs(leaf.number) for t in trees for leaf in _leaves(t.root)), default=0.0)
    tol = tolerance * max(scale, 1e-300)
    before = sum(len(_leaves(t.root)) for t in trees)
    for tree in trees:
        if not any(line == "is_linear=1" for line in tree.rest):
            tree.root = _merge(tree.root, tol)
    kept: list[_Tree] = []
    for start in range(0, len(trees), per_round):
        group = trees[start:start + per_round]
        empty = all(isinstance(t.root, _Leaf) and abs(t.root.number) <= tol for t in group)
        if not empty:
            kept += group
    kept = kept or trees[:per_round]  # a model keeps at least one round
    new_blocks = [f"{_TREE}{i}\n{_write(t)}\n" for i, t in enumerate(kept)]
    sizes = " ".join(str(len(b.encode())) for b in new_blocks)
    head = "\n".join(f"tree_sizes={sizes}" if line.startswith("tree_sizes=") else line
                     for line in head.split("\n"))
    return PruneResult(head + "".join(new_blocks) + tail, before,
                       sum(len(_leaves(t.root)) for t in kept), len(trees), len(kept))


def _split(text: str) -> tuple[str, list[str], str]:
    """(header up to the first tree, the tree blocks, ``end of trees`` and what follows)."""
    first = text.index(f"\n{_TREE}") + 1
    end = text.index(f"\n{_END}", first) + 1
    body = text[first:end]
    starts = [i for i in range(len(body)) if body.startswith(_TREE, i)
              and (i == 0 or body[i - 1] == "\n")]
    return text[:first], [body[a:b] for a, b in zip(starts, [*starts[1:], len(body)],
                                                    strict=True)], text[end:]


def _header_value(head: str, key: str) -> str | None:
    for line in head.split("\n"):
        if line.startswith(f"{key}="):
            return line.partition("=")[2]
    return None


def _parse(block: str) -> _Tree:
    lines = [line for line in block.split("\n")[1:] if line]
    values = dict(line.split("=", 1) for line in lines if line.partition("=")[0] in _ORDER)
    rest = [line for line in lines if line.partition("=")[0] not in _ORDER]
    words = {k: v.split(" ") if v else [] for k, v in values.items()}
    n_leaves = int(values["num_leaves"])
    leaves = [_Leaf(j, words["leaf_value"][j],
                    words["leaf_weight"][j] if words.get("leaf_weight") else "0",
                    words["leaf_count"][j] if words.get("leaf_count") else "0")
              for j in range(n_leaves)]
    if n_leaves == 1:
        return _Tree(leaves[0], rest)
    bounds = [int(b) for b in words.get("cat_boundaries", [])]

    def build(i: int) -> _Node | _Leaf:
        if i < 0:
            return leaves[-i - 1]
        node_fields = {k: words[k][i] for k in _NODE_KEYS}
        cats: list[str] = []
        if int(node_fields["decision_type"]) & 1:  # categorical: threshold indexes bounds
            c = int(node_fields["threshold"])
            cats = words["cat_threshold"][bounds[c]:bounds[c + 1]]
        return _Node(i, node_fields, cats, build(int(words["left_child"][i])),
                     build(int(words["right_child"][i])))

    return _Tree(build(0), rest)


def _leaves(node: _Node | _Leaf) -> list[_Leaf]:
    if isinstance(node, _Leaf):
        return [node]
    return _leaves(node.left) + _leaves(node.right)


def _nodes(node: _Node | _Leaf) -> list[_Node]:
    if isinstance(node, _Leaf):
        return []
    return [node, *_nodes(node.left), *_nodes(node.right)]


def _merge(node: _Node | _Leaf, tol: float) -> _Node | _Leaf:
    if isinstance(node, _Leaf):
        return node
    node.left, node.right = _merge(node.left, tol), _merge(node.right, tol)
    left, right = node.left, node.right
    if isinstance(left, _Leaf) and isinstance(right, _Leaf) and (
            abs(left.number - right.number) <= tol):
        # the leaf most rows reach keeps its value; the others move by at most ``tol``
        keep = left if float(left.count) >= float(right.count) else right
        weight = float(left.weight) + float(right.weight)
        count = int(float(left.count) + float(right.count))
        return _Leaf(min(left.index, right.index), keep.value, repr(weight), str(count))
    return node


def _write(tree: _Tree) -> str:
    """A tree block's lines after ``Tree=i``, in LightGBM's order."""
    nodes = sorted(_nodes(tree.root), key=lambda n: n.index)  # the root keeps index 0
    leaves = sorted(_leaves(tree.root), key=lambda leaf: leaf.index)
    node_at = {id(n): i for i, n in enumerate(nodes)}
    leaf_at = {id(leaf): j for j, leaf in enumerate(leaves)}

    def ref(child: _Node | _Leaf) -> str:
        return str(node_at[id(child)] if isinstance(child, _Node) else -leaf_at[id(child)] - 1)

    cols: dict[str, list[str]] = {k: [n.fields[k] for n in nodes] for k in _NODE_KEYS}
    bounds, cats = [0], []
    for i, node in enumerate(nodes):
        if node.cats:
            cols["threshold"][i] = str(len(bounds) - 1)
            cats += node.cats
            bounds.append(len(cats))
    cols["left_child"] = [ref(n.left) for n in nodes]
    cols["right_child"] = [ref(n.right) for n in nodes]
    cols["leaf_value"] = [leaf.value for leaf in leaves]
    cols["leaf_weight"] = [leaf.weight for leaf in leaves]
    cols["leaf_count"] = [leaf.count for leaf in leaves]
    out = [f"num_leaves={len(leaves)}", f"num_cat={len(bounds) - 1}"]
    out += [f"{k}={' '.join(cols[k])}" for k in _ORDER[2:14]]
    if len(bounds) > 1:
        out += [f"cat_boundaries={' '.join(map(str, bounds))}",
                f"cat_threshold={' '.join(cats)}"]
    return "\n".join([*out, *tree.rest]) + "\n\n"
