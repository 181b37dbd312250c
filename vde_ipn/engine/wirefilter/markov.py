"""wirefilter's Markov mode (vde-2 2.3.2 semantics), sans-IO.

The cable is in one of N states (nodes), each with its own parameter set
and an optional name.  ``weights[i][j]`` is the weight (a percentage) of
the edge i -> j; the self edge i -> i always holds 100 minus the sum of
the other outgoing weights of i (it may go negative).  Every ``period``
milliseconds one step is taken from the current node: a number ``r`` is
drawn uniformly in [0, 100) and the outgoing edges are scanned starting
with the self edge and going on with i+1, i+2, ... (modulo N); the first
edge whose weight is at least the remaining ``r`` wins, otherwise its
weight is subtracted from ``r``.  When no edge wins, the last one
scanned (i-1) is taken.

Changing the number of nodes or the period restarts the clock: a step is
taken at once and the next one is due ``period`` ms later.  Missed
periods are all stepped when :meth:`Markov.advance` is called late.
Time is in milliseconds and always passed in.
"""

from __future__ import annotations

import random
from typing import Callable, List, Optional, Tuple


class Node:
    """One state: a name (None when unset) and a parameter table."""

    def __init__(self, params: dict):
        self.name: Optional[str] = None
        self.params = params

    def label(self) -> str:
        return self.name or ""


class Markov:
    """The nodes, the edge weights and the clock of the state changes."""

    def __init__(self, rng: random.Random, new_params: Callable[[], dict]):
        self.rng = rng
        self.new_params = new_params
        self.nodes: List[Node] = [Node(new_params())]
        self.weights: List[List[float]] = [[100.0]]
        self.current = 0
        self.period = 100.0
        self.next_step = 0.0

    @property
    def count(self) -> int:
        return len(self.nodes)

    # -- structure --------------------------------------------------------
    def _recompute(self, i: int) -> None:
        row, n = self.weights[i], self.count
        own = 100.0
        for j in range(1, n):
            own -= row[(i + j) % n]
        row[i] = own

    def resize(self, n: int, now: float) -> List[Tuple[int, int]]:
        """Set the number of nodes (n > 0).  Kept nodes keep their values,
        names and the edges between kept nodes; self edges are recomputed;
        a current node that vanished becomes node 0.  Returns the
        transitions of the restart (see :meth:`start`)."""
        if n <= 0:
            raise ValueError(n)
        old = self.count
        if n != old:
            if n > old:
                self.nodes += [Node(self.new_params()) for _ in range(n - old)]
            else:
                del self.nodes[n:]
                if self.current >= n:
                    self.current = 0
            rows = []
            for i in range(n):
                row = [0.0] * n
                if i < old:
                    for j in range(n):
                        if j != i and j < old:
                            row[j] = self.weights[i][j]
                rows.append(row)
            self.weights = rows
            for i in range(n):
                self._recompute(i)
        return self.start(now)

    def set_edge(self, i: int, j: int, weight: float) -> bool:
        if not (0 <= i < self.count and 0 <= j < self.count):
            return False
        self.weights[i][j] = weight
        self._recompute(i)
        return True

    def set_period(self, ms: float, now: float) -> List[Tuple[int, int]]:
        if not ms > 0:
            raise ValueError(ms)
        self.period = ms
        return self.start(now)

    def set_current(self, n: int) -> bool:
        if not 0 <= n < self.count:
            return False
        self.current = n
        return True

    def set_name(self, n: int, name: str) -> bool:
        if not 0 <= n < self.count:
            return False
        self.nodes[n].name = name or None
        return True

    # -- time -------------------------------------------------------------
    def _step(self) -> Tuple[int, int]:
        i, n = self.current, self.count
        r = self.rng.random() * 100
        self.next_step += self.period
        k = i
        for j in range(n):
            k = (i + j) % n
            w = self.weights[i][k]
            if r <= w:
                break
            r -= w
        self.current = k
        return i, k

    def start(self, now: float) -> List[Tuple[int, int]]:
        """Restart the clock at ``now`` and take one step at once (only
        with more than one node)."""
        if self.count <= 1:
            return []
        self.next_step = now
        return self._moved([self._step()])

    def advance(self, now: float) -> List[Tuple[int, int]]:
        """Take every step due by ``now``; returns the transitions that
        changed node, as (from, to)."""
        steps = []
        while self.count > 1 and self.next_step <= now:
            steps.append(self._step())
        return self._moved(steps)

    def next_due(self) -> Optional[float]:
        """When the next step is due (ms), or None with a single node."""
        return self.next_step if self.count > 1 else None

    @staticmethod
    def _moved(steps):
        return [(i, k) for i, k in steps if i != k]

    # -- reports ----------------------------------------------------------
    def transition_line(self, i: int, k: int) -> str:
        return '%04d Node %d "%s" -> %d "%s"' % (3800 + k, i, self.nodes[i].label(),
                                                 k, self.nodes[k].label())

    def node_line(self, n: int) -> str:
        return 'Node %d "%s" (0,..,%d) Markov-time %s' % (
            n, self.nodes[n].label(), self.count - 1, "%g" % self.period)

    def current_line(self) -> str:
        return 'Current Markov Node %d "%s" (0,..,%d)' % (
            self.current, self.nodes[self.current].label(), self.count - 1)

    def edge_lines(self, n: int) -> List[str]:
        return ['Edge %-2d->%-2d "%s"->"%s" weigth %g' % (
                    n, j, self.nodes[n].label(), self.nodes[j].label(), w)
                for j, w in enumerate(self.weights[n]) if w != 0]
