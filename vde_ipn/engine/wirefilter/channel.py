"""The emulated cable of ``wirefilter`` (vde-2 2.3.2 semantics), sans-IO.

A :class:`Channel` has two directions, ``LR`` (0) and ``RL`` (1), each
with nine parameters (:data:`PARAMS`), every one a :class:`WireValue`
``value +- plus`` drawn uniformly or from a normal law.  A frame pushed
with :meth:`Channel.push` goes through, in this order: MTU (drop when
its record, frame + 2 length bytes, is longer), loss (independent, or
the Gilbert two-state model when ``lostburst`` is set), duplication
(each extra copy with probability dup%), and for each copy: channel
capacity (drop while the bytes waiting in that direction exceed it),
speed (the sender is held back: see :meth:`Channel.input_ready_at`),
bandwidth (delivery is delayed behind earlier frames) and delay.  The
frames due at time ``now`` come out of :meth:`Channel.due`, with noise
(bit flips per megabyte) applied on the way out.  FIFO order is kept
unless ``fifo`` is off, as in 2.3.2.

The parameters belong to the current Markov node
(:mod:`vde_ipn.engine.wirefilter.markov`, :attr:`Channel.markov`); a value
string ending in ``[n]`` sets node n's.

Time is in milliseconds and always passed in; randomness comes from
``rng`` (a :class:`random.Random`, seedable for tests).  Sizes count the
2-byte record header, as wirefilter does.
"""

from __future__ import annotations

import heapq
import math
import random
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

from .markov import Markov

LR, RL = 0, 1
PARAMS = ("loss", "lostburst", "delay", "dup", "band", "speed", "chanbufsize",
          "noise", "mtu")
UNIFORM, NORMAL = "U", "N"
_MULT = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_SIGMA = 1.0 / 3.0
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass
class WireValue:
    value: float = 0.0
    plus: float = 0.0
    alg: str = UNIFORM

    def max(self) -> float:
        return self.value + self.plus

    def min(self) -> float:
        return self.value - self.plus

    def draw(self, rng: random.Random) -> float:
        if self.plus == 0:
            return self.value
        if self.alg == NORMAL:
            while True:
                x, y = 2 * rng.random() - 1, 2 * rng.random() - 1
                r2 = x * x + y * y
                if 0 < r2 < 1.0:
                    return self.value + self.plus * _SIGMA * x * math.sqrt(-2 * math.log(r2) / r2)
        return self.value + self.plus * (rng.random() * 2.0 - 1.0)

    def __str__(self) -> str:
        return "%s+%s%s" % (fmt_g(self.value), fmt_g(self.plus), self.alg)


def fmt_g(x: float) -> str:
    """C's ``%g``."""
    return "%g" % x


class ValueError_(ValueError):
    """A value naming a Markov node that does not exist (EINVAL)."""


def split_node(text: str) -> Tuple[int, str]:
    """Split the trailing ``[node]`` off a value string: (node, rest).
    No suffix, or one that does not start with a number, means node 0.
    Blanks before ``[`` stay in ``rest``, so (as in 2.3.2) ``20N [1]``
    loses its N and ``1M [1]`` its M."""
    s = text.rstrip(" \t\n")
    m = re.search(r"\[\s*([-+]?\d+)?[^\]]*\]$", s)
    if not m:
        return 0, s
    node = int(m.group(1)) if m.group(1) else 0
    return node, s[:m.start()]


def parse_value(text: str) -> Tuple[Tuple[int, ...], Optional[WireValue]]:
    """Parse ``[LR|RL]NUM[+NUM][K|M|G][U|N][ [node] ]`` (the node is
    ignored here: see :func:`split_node`).

    Returns (directions, value); value None when no number could be read
    (2.3.2 then changes nothing and still reports success).
    """
    s = split_node(text)[1]
    alg = UNIFORM
    if s[-1:] in ("u", "U", "n", "N"):
        alg = s[-1].upper()
        s = s[:-1]
    mult = _MULT.get(s[-1:].upper(), 1)
    dirs: Tuple[int, ...] = (LR, RL)
    if s.startswith("LR"):
        dirs, s = (LR,), s[2:]
    elif s.startswith("RL"):
        dirs, s = (RL,), s[2:]
    m = re.match(r"\s*(%s)(?:\+\s*(%s))?" % (_NUM, _NUM), s)
    if not m:
        return dirs, None
    plus = float(m.group(2)) if m.group(2) else 0.0
    return dirs, WireValue(float(m.group(1)) * mult, plus * mult, alg)


def new_params() -> dict:
    """A parameter table with every value 0."""
    return {p: [WireValue(), WireValue()] for p in PARAMS}


class Channel:
    """Both directions of one cable; see the module doc."""

    def __init__(self, rng: Optional[random.Random] = None, ndirs: int = 2):
        self.rng = rng or random.Random()
        self.ndirs = ndirs
        self.markov = Markov(self.rng, new_params)
        self.fifo = True
        self.queued_bytes = [0, 0]
        self.dropped = {"mtu": 0, "loss": 0, "capacity": 0}
        self.duplicated = 0
        self._heap: List[tuple] = []
        self._now: List[Tuple[int, bytes]] = []       # undelayed: they skip the queue
        self._seq = 0
        self._maxwhen = 0
        self._counter = 0
        self._faulty = [False, False]
        self._nextband = [0.0, 0.0]
        self._nextspeed = [0.0, 0.0]

    @property
    def params(self) -> dict:
        """The parameter table of the current Markov node."""
        return self.markov.nodes[self.markov.current].params

    def set(self, name: str, text: str) -> None:
        """Apply a value string to parameter ``name`` of the node it names
        (node 0 without ``[n]``); ValueError_ (EINVAL) for a missing node."""
        node = split_node(text)[0]
        if not 0 <= node < self.markov.count:
            raise ValueError_(text)
        dirs, wv = parse_value(text)
        if wv is None:
            return
        for d in dirs:
            self.markov.nodes[node].params[name][d] = WireValue(wv.value, wv.plus, wv.alg)

    def _draw(self, name: str, d: int) -> float:
        return self.params[name][d].draw(self.rng)

    def waiting(self) -> int:
        return len(self._heap)

    def push(self, d: int, frame: bytes, now: float) -> None:
        """A frame entered the cable in direction ``d`` at ``now`` (ms)."""
        p, rng = self.params, self.rng
        size = len(frame) + 2
        mtu = p["mtu"][d].min()
        if mtu > 0 and size > mtu:
            self.dropped["mtu"] += 1
            return
        if p["loss"][d].min() >= 100.0:
            self.dropped["loss"] += 1
            return
        if p["lostburst"][d].max() > 0:
            loss = self._draw("loss", d) / 100
            burst = self._draw("lostburst", d)
            alpha = loss / (burst * (1 - loss)) if burst > 0 and loss < 1 else 1.0
            beta = 1.0 / burst if burst > 0 else 1.0
            if not self._faulty[d]:
                self._faulty[d] = rng.random() < alpha
            elif rng.random() < beta:
                self._faulty[d] = False
            if self._faulty[d]:
                self.dropped["loss"] += 1
                return
        else:
            self._faulty[d] = False
            if p["loss"][d].max() > 0 and rng.random() < self._draw("loss", d) / 100:
                self.dropped["loss"] += 1
                return
        times = 1
        if p["dup"][d].max() > 0:
            dup = self._draw("dup", d) / 100
            while rng.random() < dup:
                times += 1
        self.duplicated += times - 1
        for _ in range(times):
            if not self._one_copy(d, frame, size, now):
                return

    def _one_copy(self, d: int, frame: bytes, size: int, now: float) -> bool:
        p = self.params
        if p["chanbufsize"][d].max() > 0 and \
                self.queued_bytes[d] + size > self._draw("chanbufsize", d):
            self.dropped["capacity"] += 1
            return False
        extra = 0.0
        if p["speed"][d].max() > 0:
            speed = self._draw("speed", d)
            if speed <= 0:
                return False
            commtime = size * 1000.0 / speed
            extra = float(int(commtime))
            self._nextspeed[d] = max(now, self._nextspeed[d]) + commtime
        if p["band"][d].max() > 0:
            band = self._draw("band", d)
            if band <= 0:
                return False
            commtime = size * 1000.0 / band
            if now > self._nextband[d]:
                self._nextband[d] = now
                extra = float(int(commtime))
            else:
                extra = float(int(self._nextband[d] - now + commtime))
            self._nextband[d] += commtime
        delay = extra
        if extra > 0 or p["delay"][d].max() > 0:
            dl = self._draw("delay", d)
            delay = dl + extra if dl >= 0 else extra
        if delay > 0:
            self._enqueue(d, frame, size, now + int(delay))
        else:
            self._now.append((d, frame))
        return True

    def _enqueue(self, d: int, frame: bytes, size: int, when: float) -> None:
        if when > self._maxwhen:
            self._maxwhen = when
            self._counter = 0
        if self.fifo and when <= self._maxwhen:
            when = self._maxwhen
            self._counter += 1
        self._seq += 1
        self.queued_bytes[d] += size
        heapq.heappush(self._heap, (when, self._counter, self._seq, d, frame))

    def next_due(self) -> Optional[float]:
        """When the next queued frame is due (ms), or None."""
        if self._now:
            return 0.0
        return self._heap[0][0] if self._heap else None

    def input_ready_at(self, d: int) -> float:
        """Time (ms) before which input in direction ``d`` should not be
        read (the speed limit holds the sender back); 0 when free."""
        return self._nextspeed[d] if self.params["speed"][d].value > 0 else 0.0

    def due(self, now: float) -> List[Tuple[int, bytes]]:
        """Frames whose time has come, in order, as (direction, frame)."""
        out = [(d, self._noise(d, f)) for d, f in self._now]
        self._now.clear()
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, _, d, frame = heapq.heappop(heap)
            self.queued_bytes[d] -= len(frame) + 2
            out.append((d, self._noise(d, frame)))
        return out

    def _noise(self, d: int, frame: bytes) -> bytes:
        if self.params["noise"][d].max() <= 0:
            return frame
        noise = self._draw("noise", d)
        rng = self.rng
        nbits, limit = 0, len(frame) * 8          # (2.3.2 loops forever past 1 bit/bit)
        while nbits < limit and rng.random() * 8 * (1 << 20) < len(frame) * 8 * noise:
            nbits += 1
        if not nbits:
            return frame
        buf = bytearray(frame)
        for _ in range(nbits):
            bit = int(rng.random() * len(buf) * 8)
            buf[bit >> 3] ^= 1 << (bit & 7)
        return bytes(buf)

    def info_lines(self, node: Optional[int] = None) -> List[str]:
        """``showinfo``'s lines after the first (as 2.3.2 prints them), for
        Markov node ``node`` (default: the current one)."""
        mk = self.markov
        node = mk.current if node is None else node
        p = mk.nodes[node].params
        lines = [mk.node_line(node)] if mk.count > 1 else []
        rows = [("Loss  ", "loss"), ("Lburst", "lostburst"), ("Delay ", "delay"),
                ("Dup   ", "dup"), ("Bandw ", "band"), ("Speed ", "speed"),
                ("Noise ", "noise")]
        if self.ndirs == 2:
            for label, key in rows:
                lines.append("%s L->R %s   R->L %s" % (label, p[key][LR], p[key][RL]))
            lines.append("MTU    L->R %s     R->L %s   " % (fmt_g(p["mtu"][LR].min()),
                                                         fmt_g(p["mtu"][RL].min())))
            lines.append("Cap.   L->R %s   R->L %s" % (p["chanbufsize"][LR], p["chanbufsize"][RL]))
            lines.append("Current Delay Queue size:   L->R %d      R->L %d   "
                         % tuple(self.queued_bytes))
        else:
            for label, key in rows:
                lines.append("%s %s" % (label, p[key][LR]))
            lines.append("MTU    %s" % fmt_g(p["mtu"][LR].min()))
            lines.append("Cap.   %s" % p["chanbufsize"][LR])
            lines.append("Current Delay Queue size:   %d" % self.queued_bytes[LR])
        lines.append("Fifoness %s" % ("TRUE" if self.fifo else "FALSE"))
        lines.append("Waiting packets in delay queues %d" % len(self._heap))
        return lines
