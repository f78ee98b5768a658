"""Dijkstra's distance fields from the query points of one graph, kept between
calls: a run of many pairs then computes each point's field once, not once per
pair."""

from collections import OrderedDict

import numpy as np
from jaxtyping import Float, Int

from ._graph import GraphPaths

# Bytes a run may keep fields in: 170 points of a 512-cell lattice.
BUDGET = 512 * 2**20


class DistanceFields:
    """The distances and predecessors from query points of `graph`, each
    point's computed once (`GraphPaths.dijkstra`) and kept while they fit in
    `budget` bytes, the least recently used dropped first. Host-side state
    for one run, so a plain class rather than a module.

    Distances are kept in float32: they rank routes against a slack of a
    percent or more, far above float32's resolution.
    """

    def __init__(self, graph: GraphPaths, budget: int = BUDGET):
        self._graph = graph
        self._kept: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        # float32 distance and int32 predecessor per node and point
        self._capacity = max(1, budget // (8 * graph.nodes.shape[0]))

    def __call__(
        self, sources: Int[np.ndarray, " S"]
    ) -> tuple[Float[np.ndarray, "S V"], Int[np.ndarray, "S V"]]:
        """Distances `(S, V)` and predecessors `(S, V)` from the query points
        `sources`."""
        sources = [int(s) for s in np.asarray(sources)]
        missing = [s for s in dict.fromkeys(sources) if s not in self._kept]
        found = {}
        if missing:
            distances, predecessors = self._graph.dijkstra(np.array(missing))
            for s, d, p in zip(missing, distances, predecessors):
                found[s] = (d.astype(np.float32), p.astype(np.int32))
        rows = [found.get(s) or self._kept[s] for s in sources]
        for s in sources:
            if s in self._kept:
                self._kept.move_to_end(s)
        for s, field in found.items():
            self._kept[s] = field
        while len(self._kept) > self._capacity:
            self._kept.popitem(last=False)
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])
