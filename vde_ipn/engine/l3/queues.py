"""vde_l3's queueing disciplines (sans-IO): ufifo, pfifo, bfifo and tbf.

Each interface sends through one of them (``tc set vdN POLICY ARGS``):

- ``ufifo``: unlimited FIFO (the default);
- ``pfifo limit N``: at most N packets waiting, the rest dropped;
- ``bfifo limit N``: fewer than N bytes waiting, the rest dropped;
- ``tbf rate R[K|M] (limit BYTES | latency MS)``: a token bucket sending
  R bits/s (at least 5000) in MTU-sized bursts (the MTU starts at 1000
  and grows with the largest packet); ``latency`` sets the queue limit to
  rate/MTU*MS bytes, as 2.3.2's module computes it.

``enqueue(frame, now)`` says whether the frame was kept; ``dequeue(now)``
gives the next frame allowed out, or None; ``stats()`` is the text
``tc ls`` shows (2.3.2's).
"""

from __future__ import annotations

from collections import deque


class Ufifo:
    name = "ufifo"
    help = "Unlimited FIFO (Default)\nUsage: tc set <dev> ufifo\n"

    def __init__(self):
        self.q: deque = deque()

    def enqueue(self, frame: bytes, now: float) -> bool:
        self.q.append(frame)
        return True

    def dequeue(self, now: float):
        return self.q.popleft() if self.q else None

    def stats(self) -> str:
        return "No Statistics Available."


class Pfifo(Ufifo):
    name = "pfifo"
    help = "Packet Fifo queue\nUsage: tc set <dev> pfifo limit <packets>\n"

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.dropped = limit, 0

    def enqueue(self, frame, now):
        if len(self.q) < self.limit:
            self.q.append(frame)
            return True
        self.dropped += 1
        return False

    def stats(self):
        return "Limit: %u packets. Dropped: %u packets." % (self.limit, self.dropped)


class Bfifo(Ufifo):
    name = "bfifo"
    help = "Packet Fifo queue\nUsage: tc set <dev> bfifo limit <limit in bytes>\n"

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.dropped, self.bytes = limit, 0, 0

    def enqueue(self, frame, now):
        if self.bytes + len(frame) < self.limit:
            self.q.append(frame)
            self.bytes += len(frame)
            return True
        self.dropped += 1
        return False

    def dequeue(self, now):
        frame = super().dequeue(now)
        if frame is not None:
            self.bytes -= len(frame)
        return frame

    def stats(self):
        return "Limit: %u bytes. Dropped: %u packets." % (self.limit, self.dropped)


class Tbf(Ufifo):
    name = "tbf"
    help = ("Packet Fifo queue\nUsage: tc set <dev> tbf rate <speed>[K|M] "
            "( limit <bytes> | latency <ms> )\n")

    def __init__(self, rate: int, limit: int, latency: int, now: float = 0.0):
        super().__init__()
        self.rate = rate                     # bytes/s
        self.latency = latency
        self.mtu = 1000
        self.limit = (rate // self.mtu) * latency if latency else limit
        self.dropped = self.bytes = 0
        self.tokens = float(self.mtu)
        self.stamp = now

    def enqueue(self, frame, now):
        if self.bytes >= self.limit:
            self.dropped += 1
            return False
        self.q.append(frame)
        self.bytes += len(frame)
        if len(frame) > self.mtu:
            self.mtu = len(frame)
            if self.latency:
                self.limit = (self.rate // self.mtu) * self.latency
        return True

    def dequeue(self, now):
        self.tokens = min(float(self.mtu), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if not self.q or self.tokens < len(self.q[0]):
            return None
        frame = self.q.popleft()
        self.tokens -= len(frame)
        self.bytes -= len(frame)
        return frame

    def wait(self, now: float) -> float:
        """Seconds until the head of the queue may leave."""
        if not self.q:
            return 0.0
        return max(0.0, (len(self.q[0]) - self.tokens) / self.rate)

    def stats(self):
        return ("Shaping at Rate = %u Bytes/s, bucket limit: %u bytes. Overlimits: %u packets. "
                "MTU=%u" % (self.rate, self.limit, self.dropped, self.mtu))


def _uint(text: str) -> int | None:
    digits = ""
    for c in text.lstrip():
        if not c.isdigit():
            break
        digits += c
    return int(digits) if digits else None


HELP = {cls.name: cls.help for cls in (Ufifo, Pfifo, Bfifo, Tbf)}


def make(name: str, args: str, now: float = 0.0):
    """The discipline ``tc set DEV NAME ARGS`` asks for.

    Returns None for a syntax error. Raises KeyError for an unknown name.
    """
    if name == "ufifo":
        return Ufifo() if not args else None
    if name in ("pfifo", "bfifo"):
        if len(args) < 7 or not args.startswith("limit "):
            return None
        limit = _uint(args[6:])
        if limit is None:
            return None
        return (Pfifo if name == "pfifo" else Bfifo)(limit)
    if name == "tbf":
        words = args.split()
        if len(words) < 4 or not words[0].startswith("rate"):
            return None
        rate = _uint(words[1])
        if rate is None:
            return None
        if "K" in words[1]:
            rate *= 1000
        elif "M" in words[1]:
            rate *= 1000000
        if rate < 5000:
            return None
        value = _uint(words[3])
        if value is None or not (words[2].startswith("latency") or words[2].startswith("limit")):
            return None
        latency = value if words[2].startswith("latency") else 0
        return Tbf(rate >> 3, 0 if latency else value, latency, now)
    raise KeyError(name)
