"""``vde_plug --retry SECS``: a cable that comes back after its far end does."""

import os
import signal

from support import BROADCAST, C_TOOLS, OURS, StreamPlug, attached, frame, mac, wait_for


def test_cable_reconnects_when_a_switch_comes_back(procs, sockdir, new_switch):
    near = new_switch("ours", os.path.join(sockdir, "near"))
    far_dir = os.path.join(sockdir, "far")
    far = new_switch("c", far_dir)
    cable = procs.start([OURS["vde_plug"], "--retry", "0.3", near.dir, far_dir])
    a = StreamPlug(procs, C_TOOLS["vde_plug"], near.dir)
    attached(near, 2)
    far.stop()                                        # the far switch goes away...
    wait_for(lambda: near.cmd("port/print").count("-- endpoint ID") == 1,
             what="the cable to leave the near switch")
    assert cable.poll() is None                       # ...but the cable keeps trying
    far = new_switch("c", far_dir)                    # and comes back to a new one
    z = StreamPlug(procs, C_TOOLS["vde_plug"], far_dir)
    attached(far, 2)
    attached(near, 2)
    f = frame(BROADCAST, mac(1), b"after the outage")
    a.send(f)
    assert z.recv(timeout=5) == f
    cable.send_signal(signal.SIGTERM)
    assert cable.wait(timeout=5) == 0


def test_without_retry_the_cable_ends(procs, sockdir, new_switch):
    near = new_switch("ours", os.path.join(sockdir, "near"))
    far = new_switch("ours", os.path.join(sockdir, "far"))
    cable = procs.start([OURS["vde_plug"], near.dir, far.dir])
    attached(near, 1)
    attached(far, 1)          # the cable opens near, then far: both are up
    far.stop()
    assert cable.wait(timeout=5) == 0


def test_retry_also_covers_a_switch_that_is_not_there_yet(procs, sockdir, new_switch):
    far_dir = os.path.join(sockdir, "late")
    plug = StreamPlug(procs, OURS["vde_plug"], "--retry", "0.2", far_dir)
    sw = new_switch("ours", far_dir)
    attached(sw, 1, timeout=5)
    assert plug.proc.poll() is None


def test_retry_value_is_checked(procs):
    p = procs.start([OURS["vde_plug"], "--retry", "soon", "/nonexistent"])
    assert p.wait(timeout=5) == 255
    assert b"--retry wants seconds" in p.stderr.read()
