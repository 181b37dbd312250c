"""A log that a flood of clients cannot flood.

Every refused client is worth a log line, but a local user can make
thousands a second: written to stderr or syslog, that fills disks, and a
stderr pipe nobody reads fills up and then stops the whole switch in
write().  :class:`LimitedLog` passes ``burst`` messages, then at most
``rate`` a second, and says how many it left out when it speaks again.
"""

from __future__ import annotations


class LimitedLog:
    def __init__(self, log, clock, rate: float = 5.0, burst: int = 20):
        self.log, self.clock = log, clock
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.last = None
        self.dropped = 0

    def __call__(self, msg: str) -> None:
        now = self.clock()
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            self.dropped += 1
            return
        self.tokens -= 1
        if self.dropped:
            msg = "%s (%d similar messages not logged)" % (msg, self.dropped)
            self.dropped = 0
        self.log(msg)
