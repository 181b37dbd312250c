"""A process holding one IPN socket, driven by JSON lines on stdin.

Each request ``{"op": ..., ...}`` gets one reply line: ``{"ok": true, ...}``
or ``{"ok": false, "errno": N}`` when the call raised OSError.  Messages
travel as latin-1 strings so any byte survives JSON.
"""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from vde_ipn import ipn  # noqa: E402

S = None


def _b(text):
    return text.encode("latin-1")


def _s(data):
    return data.decode("latin-1")


def op_new(protocol=ipn.IPN_BROADCAST, opts=(), shutdown=None):
    global S
    S = ipn.socket(protocol)
    for level, opt, value in opts:
        S.setsockopt(level, opt, value)
    if shutdown is not None:
        S.shutdown(shutdown)
    return {}


def op_bind(path):
    S.bind(path)
    return {}


def op_connect(path=None):
    S.connect(path)
    return {"port": S.statistics()["port"]}


def op_send(data=(), count=0, prefix="m", nonblock=False, pace=0):
    """Send ``data`` items, then ``count`` numbered messages; reports how many went."""
    sent = 0
    flags = socket.MSG_DONTWAIT if nonblock else 0
    try:
        for item in data:
            S.send(_b(item), flags)
            sent += 1
        for i in range(count):
            S.send(("%s%d" % (prefix, i)).encode(), flags)
            sent += 1
            if pace and i % pace == pace - 1:
                time.sleep(0.005)
    except BlockingIOError:
        return {"sent": sent, "eagain": True}
    return {"sent": sent, "eagain": False}


def op_recv(count=1, timeout=5.0, bufsize=65536, nonblock=False, slow=0.0, summary=False):
    """Receive up to ``count`` messages; stops at the first timeout/EAGAIN."""
    S.settimeout(0 if nonblock else timeout)
    got, flags, status = [], [], "done"
    try:
        for _ in range(count):
            data, _anc, mflags, _addr = S.recvmsg(bufsize)
            got.append(_s(data))
            flags.append(mflags)
            if data == b"" and mflags == 0:
                status = "eof"
                break
            if slow:
                time.sleep(slow)
    except BlockingIOError:
        status = "eagain"
    except TimeoutError:
        status = "timeout"
    if summary:
        return {"n": len(got), "first": got[:1], "last": got[-1:], "status": status,
                "in_order": got == sorted(got, key=lambda m: int(m[1:]))}
    return {"msgs": got, "flags": flags, "status": status}


def op_newcomer(how="select", wait=4.0, bufsize=64):
    """The obvious receive loop, with blocking recv after each readiness report.

    Returns how many messages it got before the loop saw no readiness for
    ``wait`` seconds (a recv that blocks instead never answers).
    """
    import selectors
    S.setblocking(True)
    got = []
    if how == "select":
        import select
        while select.select([S], [], [], wait)[0]:
            got.append(_s(S.recv(bufsize)))
    elif how == "poll":
        import select
        p = select.poll()
        p.register(S.fileno(), select.POLLIN)
        while p.poll(int(wait * 1000)):
            got.append(_s(S.recv(bufsize)))
    elif how == "epoll":
        import select
        ep = select.epoll()
        ep.register(S.fileno(), select.EPOLLIN)
        while ep.poll(wait):
            got.append(_s(S.recv(bufsize)))
        ep.close()
    elif how == "selectors":
        sel = selectors.DefaultSelector()
        sel.register(S, selectors.EVENT_READ)
        while sel.select(wait):
            got.append(_s(S.recv(bufsize)))
        sel.close()
    elif how == "asyncio":
        import asyncio

        async def main():
            loop = asyncio.get_running_loop()
            while True:
                fut = loop.create_future()
                loop.add_reader(S.fileno(), lambda: fut.done() or fut.set_result(None))
                try:
                    await asyncio.wait_for(fut, wait)
                except asyncio.TimeoutError:
                    return
                finally:
                    loop.remove_reader(S.fileno())
                got.append(_s(S.recv(bufsize)))
        asyncio.run(main())
    elif how == "dontwait":
        import select
        while select.select([S], [], [], wait)[0]:
            got.append(_s(S.recv(bufsize, socket.MSG_DONTWAIT)))
    return {"n": len(got), "last": got[-1:],
            "in_order": got == ["m%d" % i for i in range(len(got))]}


def op_pingpong(rounds, serve=False, use_select=False, limit=10.0):
    """Ping-pong on a broadcast network: a lost wake-up stalls it for good."""
    import select
    S.setblocking(True)
    worst = 0.0
    for i in range(rounds):
        if not serve:
            S.send(b"ping%d" % i)
        t0 = time.monotonic()
        if use_select and not select.select([S], [], [], limit)[0]:
            return {"stalled_at": i}
        S.settimeout(limit)
        try:
            S.recv(64)
        except TimeoutError:
            return {"stalled_at": i}
        worst = max(worst, time.monotonic() - t0)
        if serve:
            S.send(b"pong%d" % i)
    return {"stalled_at": None, "worst": worst}


def op_send_bursts(count, seed=0, start=0):
    """Send ``count`` messages numbered from ``start`` in bursts of 1 to 64, each followed by
    no pause, a busy wait of up to 30 us, a yield or a sleep of up to 2 ms:
    receivers catch up, wait a little, go to sleep and get woken, at random."""
    import random
    rnd = random.Random(seed)
    i = 0
    while i < count:
        for _ in range(min(rnd.randint(1, 64), count - i)):
            S.send(b"m%d" % (start + i))
            i += 1
        pause = rnd.random()
        if pause < 0.3:
            end = time.perf_counter() + rnd.random() * 30e-6
            while time.perf_counter() < end:
                pass
        elif pause < 0.5:
            time.sleep(0)
        elif pause < 0.6:
            time.sleep(rnd.random() * 0.002)
    return {"sent": i}


def op_thread_recv(threads=2, count=3000, timeout=10.0, use_select=False):
    """``threads`` threads receive on this socket until ``count`` messages
    came in all; each reports what it got (a silence of ``timeout`` ends it)."""
    import select
    import threading
    got = [[] for _ in range(threads)]
    total = [0]
    lock = threading.Lock()
    errors = []
    # short waits, so that threads left waiting once the count is reached
    # see it at once; a thread silent for ``timeout`` in all is an error
    S.settimeout(min(timeout, 0.25))

    def run(t):
        silent_since = None
        try:
            while True:
                with lock:
                    if total[0] >= count:
                        return
                if use_select:
                    if not select.select([S], [], [], 0.05)[0]:
                        with lock:
                            if total[0] >= count:
                                return
                        continue
                    try:
                        m = S.recv(64, socket.MSG_DONTWAIT)   # another thread may take it
                    except BlockingIOError:
                        continue
                else:
                    try:
                        m = S.recv(64)
                    except TimeoutError:
                        now = time.monotonic()
                        with lock:
                            if total[0] >= count:
                                return
                        if silent_since is None:
                            silent_since = now
                        elif now - silent_since >= timeout:
                            raise
                        continue
                    silent_since = None
                got[t].append(_s(m))
                with lock:
                    total[0] += 1
                    if total[0] >= count:
                        return
        except TimeoutError:
            with lock:
                if total[0] < count:
                    errors.append("timeout")
        except OSError as e:
            errors.append(repr(e))
    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"got": got, "errors": errors}


def op_thread_send(threads=2, count=3000):
    """``threads`` threads send ``count`` numbered messages each on this socket."""
    import threading
    errors = []

    def run(t):
        try:
            for i in range(count):
                S.send(b"t%d-%d" % (t, i))
        except OSError as e:
            errors.append(repr(e))
    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"errors": errors}


def op_recv_plain(count=1, bufsize=65536):
    """recv as the socket is configured (no timeout set here)."""
    t0 = time.monotonic()
    got = []
    try:
        for _ in range(count):
            got.append(_s(S.recv(bufsize)))
        status = "done"
    except TimeoutError:
        status = "timeout"
    except BlockingIOError:
        status = "eagain"
    return {"msgs": got, "status": status, "secs": time.monotonic() - t0}


def op_writable(timeout=0.0, how="poll"):
    """Does select/poll/epoll report the socket writable within ``timeout``?"""
    import select
    if how == "select":
        return {"writable": bool(select.select([], [S], [], timeout)[1])}
    if how == "epoll":
        ep = select.epoll()
        ep.register(S.fileno(), select.EPOLLOUT)
        try:
            return {"writable": bool(ep.poll(timeout))}
        finally:
            ep.close()
    p = select.poll()
    p.register(S.fileno(), select.POLLOUT)
    return {"writable": bool(p.poll(int(timeout * 1000)))}


def op_sendto_raw(path, data):
    """A datagram straight to a unix socket, bypassing the library."""
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        raw.sendto(_b(data), path)
    finally:
        raw.close()
    return {}


def op_listdir(path):
    return {"names": sorted(os.listdir(path))}


def op_unlink(path):
    os.unlink(path)
    return {}


def op_write_file(path, data, truncate=False):
    with open(path, "r+b") as f:
        if truncate:
            f.truncate(0)
        f.write(_b(data))
    return {}


def op_scribble_gen(path, data):
    """Write into a network's generation segment directly (as a member may)."""
    from vde_ipn.io.ipn.shm import attach_segment
    with open(path, "rb") as f:
        segid = int(f.read(32))
        creator = os.fstat(f.fileno()).st_uid
    view = attach_segment(segid, creator)
    view[:len(_b(data))] = _b(data)
    view.release()
    return {}


def op_truncate(path):
    """Shrink a file to nothing (a member may, to the files it owns)."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    return {}


def _libc():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    libc.shmdt.argtypes = [ctypes.c_void_p]
    libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    return libc


def op_destroy(path):
    """Remove a member file and the System V segment it names, if it names one."""
    with open(path, "rb") as f:
        head = f.read(32)
    removed = False
    if head.strip().isdigit():
        removed = _libc().shmctl(int(head), 0, None) == 0      # IPC_RMID
    os.unlink(path)
    return {"rmid": removed}


def op_scan_shm(needle):
    """Attach read-only every segment of the machine we may; which hold ``needle``?"""
    import ctypes
    libc = _libc()
    attached, found = 0, []
    with open("/proc/sysvipc/shm") as f:
        next(f)
        for line in f:
            fields = line.split()
            segid, size = int(fields[1]), int(fields[3])
            addr = libc.shmat(segid, None, 0o10000)             # SHM_RDONLY
            if addr is None or addr == ctypes.c_void_p(-1).value:
                continue
            attached += 1
            try:
                if _b(needle) in ctypes.string_at(addr, size):
                    found.append(segid)
            finally:
                libc.shmdt(addr)
    return {"attached": attached, "found": found}


def op_ring_with_wait_word(ring, sock):
    """Ring the doorbell ``sock`` with the secret of the wait word published in
    the header of ``ring`` (a member file in w/), as a reader may see it."""
    import struct
    from vde_ipn.io.ipn.shm import open_memory
    hdr = open_memory(ring, minimum=128)[:128].cast("Q")
    secret = hdr[5] >> 32                                  # RING_WAIT_W
    hdr.release()
    op_sendto_raw(sock, _s(struct.pack(">I", secret)))
    return {"secret": secret}


def op_select_recv(wait=1.0, timeout=3.0):
    """select() for reading, then a recv() with ``timeout`` if it said readable."""
    import select
    if not select.select([S], [], [], wait)[0]:
        return {"readable": False}
    S.settimeout(timeout)
    try:
        return {"readable": True, "got": _s(S.recv(65536))}
    except TimeoutError:
        return {"readable": True, "got": None}


def op_shutdown(how):
    S.shutdown(how)
    return {}


def op_setsockopt(level, opt, value):
    S.setsockopt(level, opt, _b(value) if isinstance(value, str) else value)
    return {}


def op_getsockopt_raw(level, opt, buflen):
    return {"value": _s(S.getsockopt(level, opt, buflen))}


def op_getsockopt(level, opt, buflen=0):
    v = S.getsockopt(level, opt, buflen)
    return {"value": _s(v) if isinstance(v, bytes) else v}


def op_stats():
    return S.statistics()


def op_close():
    S.close()
    return {}


def op_umask(mask):
    os.umask(mask)
    return {}


def op_chgrp(path, group):
    import grp
    ipn.set_network_group(path, grp.getgrnam(group).gr_gid)
    return {}


HELD = {}


def op_flock(path):
    """Take an exclusive flock on a file and keep it (op_unflock lets go)."""
    import fcntl
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    HELD[path] = fd
    return {}


def op_unflock(path):
    os.close(HELD.pop(path))
    return {}


def op_hog(path):
    """Hold every lock this user can take on every part of the companion
    directory ``path`` (flock and fcntl locks, fds kept open), then stop
    (SIGSTOP) right after replying, holding them."""
    import fcntl
    held = []
    for root, dirs, files in os.walk(path):
        for name in [""] + dirs + files:
            p = os.path.join(root, name) if name else root
            fd = None
            for flags in (os.O_RDWR, os.O_RDONLY):
                try:
                    fd = os.open(p, flags | os.O_NONBLOCK | os.O_NOFOLLOW)
                    break
                except OSError:
                    pass
            if fd is None:
                continue
            got = []
            for kind in (fcntl.LOCK_EX, fcntl.LOCK_SH):    # shared where others share
                try:
                    fcntl.flock(fd, kind | fcntl.LOCK_NB)
                    got.append("flock")
                    break
                except OSError:
                    pass
            for kind in (fcntl.F_WRLCK, fcntl.F_RDLCK):
                try:
                    fcntl.lockf(fd, kind | fcntl.LOCK_NB)
                    got.append("lockf")
                    break
                except OSError:
                    pass
            HELD[p] = fd
            held.append([os.path.relpath(p, path), got])
    STOP_AFTER_REPLY.append(True)
    return {"held": held}


def op_churn(path, rounds, opts=()):
    """Join and leave ``rounds`` times; (port, joined, leaving) of each
    membership, times in CLOCK_MONOTONIC ns (after connect, before close)."""
    out = []
    for _ in range(rounds):
        s = ipn.socket(ipn.IPN_BROADCAST)
        for level, opt, value in opts:
            s.setsockopt(level, opt, value)
        s.connect(path)
        joined = time.monotonic_ns()
        port = s.statistics()["port"]
        leaving = time.monotonic_ns()
        s.close()
        out.append([port, joined, leaving])
    return {"memberships": out}


STOP_AFTER_REPLY = []


def op_access(path, flags):
    """Open a file directly, bypassing the library (permission checks)."""
    fd = os.open(path, flags)
    os.close(fd)
    return {}


def main():
    for line in sys.stdin:
        req = json.loads(line)
        op = globals()["op_" + req.pop("op")]
        try:
            reply = {"ok": True}
            reply.update(op(**req))
        except OSError as e:
            reply = {"ok": False, "errno": e.errno, "error": str(e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        if STOP_AFTER_REPLY:
            STOP_AFTER_REPLY.clear()
            import signal
            os.kill(os.getpid(), signal.SIGSTOP)


if __name__ == "__main__":
    main()
