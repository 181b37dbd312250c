"""Malformed requests on a switch's ``ctl`` socket, made by hypothesis.

Each example is one connection: requests of every layout the protocol
has (v3, v1) with fields drawn at and beyond their limits, cut short or
followed by more bytes, split over several writes, pointing at data
addresses that are missing, not sockets, the switch's own ``ctl``, or
abstract, or plain binary junk; then the client half-closes, or leaves at
once.  A request that gets a reply has its data socket used and dropped.

Checked after every example: the switch runs; at the end: its
descriptors are back where they were, no data socket file is left, its
memory is flat, and two real plugs still talk through it.

``make test`` runs VDE_FUZZ_CTL=2000 connections; a longer run::

    VDE_FUZZ_CTL=100000 .venv/bin/python -m pytest tests/integration/test_ctl_fuzz.py -q
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import struct
import subprocess
import threading

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support import wait_for
from test_bad_input import MAGIC, REPLY_LEN, assert_serves, data_files, fd_count

EXAMPLES = int(os.environ.get("VDE_FUZZ_CTL", "2000"))
RSS_GROWTH_MAX = 16 << 20

U32 = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 0xFF, 0x100, 0x101, 0x7FFFFFFF, 0x80000000,
                                 0xFFFFFFFF, MAGIC, MAGIC ^ 1]),
                st.integers(0, 2**32 - 1))
VERSION = st.one_of(st.sampled_from([0, 1, 2, 3, 4]), U32)
KIND = st.one_of(st.sampled_from([0, 1, 2, -1, 0x100, 0x101, 0x7FFF_0000]),
                 st.integers(-2**31, 2**31 - 1))
FAMILY = st.one_of(st.just(socket.AF_UNIX), st.integers(0, 0xFFFF))
TARGET = st.sampled_from(["own", "own", "own", "missing", "file", "dir", "ctl",
                          "abstract", "random", "empty"])


MUTATIONS = ["magic", "version", "kind", "family", "target", "cut", "extra"]


@st.composite
def connection(draw):
    """A valid request with up to three things wrong, or junk."""
    layout = draw(st.sampled_from(["v3", "v3", "v3", "v1", "junk"]))
    wrong = set(draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)))
    target = draw(TARGET) if "target" in wrong else draw(st.sampled_from(["own", "abstract"]))
    if layout == "junk":
        raw = draw(st.binary(max_size=400))
    else:
        magic = draw(U32) if "magic" in wrong else MAGIC
        family = draw(FAMILY) if "family" in wrong else socket.AF_UNIX
        kind = draw(KIND) if "kind" in wrong else draw(st.sampled_from([0, 1]))
        descr = draw(st.binary(max_size=300))
        if layout == "v3":
            version = draw(VERSION) if "version" in wrong else 3
            head = struct.pack("=IIi", magic, version, kind)
        else:
            head = struct.pack("=II6s", magic, kind & 0xFFFFFFFF,
                               draw(st.binary(min_size=6, max_size=6)))
        raw = head + struct.pack("=H", family) + b"{ADDR}" + descr
        if "extra" in wrong:
            raw += draw(st.binary(min_size=1, max_size=400))
    cut = draw(st.integers(0, len(raw) + 120)) if "cut" in wrong else None
    splits = draw(st.lists(st.integers(1, 150), max_size=3))
    ending = draw(st.sampled_from(["half-close", "half-close", "close", "use-data"]))
    return raw, target, cut, splits, ending


class Fixture:
    counter = itertools.count()


def address(target: str, own: str, sw) -> bytes:
    return {"own": own.encode(), "missing": own.encode() + b".missing",
            "file": os.path.join(os.path.dirname(own), "regular").encode(),
            "dir": os.path.dirname(own).encode(),
            "ctl": os.path.join(sw.dir, "ctl").encode(),
            "abstract": b"\0fuzz%d" % os.getpid(),
            "random": os.urandom(108), "empty": b""}[target]


def rss(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024


def test_fuzz_ctl_handshake(procs, new_switch, sockdir):
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    log = []                             # every refusal is logged: read it all, or
    threading.Thread(target=lambda: log.extend(sw.proc.stderr),  # a full pipe
                     daemon=True).start()                         # stalls the switch
    open(os.path.join(sockdir, "regular"), "w").close()
    base_fds, base_rss = fd_count(sw.proc), rss(sw.proc.pid)
    stats = {"reply": 0, "closed": 0, "other": 0, "left": 0}
    recent = []
    errors = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(connection())
    def one(example):
        raw, target, cut, splits, ending = example
        own = os.path.join(sockdir, "d%d" % next(Fixture.counter))
        data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        data.bind(own)
        if target == "abstract":
            data.close()
            data = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            data.bind(b"\0fuzz%d" % os.getpid())
        addr = address(target, own, sw)
        req = raw.replace(b"{ADDR}", addr[:108].ljust(108, b"\0"), 1)
        if cut is not None:
            req = req[:cut]
        recent.append(req)
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl.settimeout(5)
        try:
            ctl.connect(os.path.join(sw.dir, "ctl"))
            pos = 0
            for n in splits + [len(req)]:
                if pos < len(req):
                    ctl.sendall(req[pos:pos + n])
                    pos += n
            if ending == "close":
                stats["left"] += 1
                return
            if ending == "half-close":
                ctl.shutdown(socket.SHUT_WR)
            else:                        # an unfinished request is not waited for
                ctl.settimeout(0.3)
            got = b""
            while len(got) < REPLY_LEN:
                chunk = ctl.recv(REPLY_LEN - len(got))
                if not chunk:
                    break
                got += chunk
            if len(got) == REPLY_LEN:
                stats["reply"] += 1
                if ending == "use-data":
                    remote = got[2:].split(b"\0", 1)[0] or got[2:]
                    try:
                        data.sendto(b"\xff" * 6 + b"\x02" + os.urandom(53), remote)
                    except OSError:
                        pass
            else:
                stats["closed" if not got else "other"] += 1
        except (OSError, socket.timeout) as e:
            stats["other"] += 1
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
        finally:
            ctl.close()
            data.close()
            if os.path.exists(own):
                os.unlink(own)
            assert sw.proc.poll() is None, "the switch exited after %r" % recent[-5:]

    one()
    assert sum(stats.values()) >= EXAMPLES * 9 // 10, stats
    assert stats["reply"] and stats["closed"], stats      # both paths were exercised
    print("ctl fuzz outcomes: %r, client errors: %r" % (stats, errors))
    try:
        wait_for(lambda: fd_count(sw.proc) == base_fds, 15,
                 "the switch's fds back to %d" % base_fds)
    except AssertionError:
        ss = subprocess.run(["ss", "-xap"], capture_output=True, text=True).stdout
        raise AssertionError("fds not back to %d:\n%s\n%s" % (
            base_fds, sw.cmd("port/print"),
            "\n".join(ln for ln in ss.splitlines() if "pid=%d," % sw.proc.pid in ln)))
    wait_for(lambda: data_files(sw) == [], 5, "no data socket left")
    assert rss(sw.proc.pid) - base_rss < RSS_GROWTH_MAX
    assert_serves(procs, sw)
