"""ctldir: stale-ctl detection and replacement, with real unix sockets."""

import os
import socket
import time

import pytest

from vde_ipn.io.switch import ctldir


def test_is_alive_only_false_when_provably_dead(tmp_path):
    path = str(tmp_path / "s")
    assert ctldir.is_alive(path) is False                 # nothing there
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()
    assert ctldir.is_alive(path) is False                 # refused: stale
    os.unlink(path)
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(0)
    try:
        assert ctldir.is_alive(path) is True
        fillers = []
        try:                                              # fill the backlog
            for _ in range(64):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                fillers.append(s)
                s.setblocking(False)
                s.connect(path)
        except BlockingIOError:
            pass
        start = time.monotonic()
        assert ctldir.is_alive(path, timeout=0.3) is True  # busy is alive, no hang
        assert time.monotonic() - start < 2
    finally:
        for s in fillers:
            s.close()
        live.close()


def test_open_ctl_replaces_a_stale_socket(tmp_path):
    d = tmp_path / "sw"
    d.mkdir()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(d / "ctl"))
    dead.close()
    real, sock, _own = ctldir.open_ctl(str(d), 0o600, 0o2700)
    try:
        assert ctldir.is_alive(os.path.join(real, "ctl"))
    finally:
        sock.close()


def test_open_ctl_refuses_a_live_ctl(tmp_path):
    real, first, _own = ctldir.open_ctl(str(tmp_path / "sw"), 0o600, 0o2700)
    try:
        with pytest.raises(ctldir.AddressInUse):
            ctldir.open_ctl(real, 0o600, 0o2700)
        assert ctldir.is_alive(os.path.join(real, "ctl"))
    finally:
        first.close()


def test_open_ctl_refuses_a_planted_symlink(tmp_path):
    d = tmp_path / "sw"
    d.mkdir()
    target = tmp_path / "elsewhere"
    os.symlink(str(target), str(d / "ctl"))
    with pytest.raises(OSError):
        ctldir.open_ctl(str(d), 0o600, 0o2700)
    assert not target.exists()
    assert os.path.islink(str(d / "ctl"))                 # left for a human to look at
