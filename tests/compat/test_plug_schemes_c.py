"""vdeplug4's other schemes, ours side by side with Debian's plugins.

Each scheme is run with our ``vde_plug`` and with Debian's (vdeplug
4.0.1 and the libvdeplug-vlan/-agno/-pcap plugins) between real
switches (ours and 2.3.2):

* ``cmd://``: a cable through a command (a vde_plug of either kind);
* ``multi://`` and ``bonding://``: the multilink node's delivery rules,
  and a two-link handoff between two switches;
* ``vlan://``: the tagging rules compared frame by frame with the C
  plugin, and interop with a trunk port of either switch;
* ``agno://``: encryption both ways between ours and the C plugin;
* ``pcap://``: a veth end joined to a switch as libpcap does;
* ``tee://``, ``ipn://``: ours only (no vdeplug4 counterpart);
* schemes without a module of ours: vdeplug4's plugin, or a one-line error.
"""

import os
import random
import shutil
import signal
import struct
import subprocess
import tempfile
import time

import pytest

import support
from support import (BROADCAST, C_TOOLS, OURS, StreamPlug, Switch, frame, mac, require)

# Start-up and delivery can take seconds on a loaded machine: wait generously.
START = 30.0
DELIVERY = 10.0


def wait_for(predicate, timeout=START, what="condition"):
    return support.wait_for(predicate, timeout, what)


def attached(switch, count, timeout=START):
    support.attached(switch, count, timeout)


class PatientSwitch(Switch):
    """A switch of either kind, given START seconds to come up."""

    def __init__(self, procs, tool, ctl_dir, *args):
        self.dir = ctl_dir
        self.mgmt = ctl_dir + ".mgmt"
        self.proc = procs.start([require(tool), "-s", ctl_dir, "-M", self.mgmt] + list(args),
                                stdin=subprocess.PIPE)
        wait_for(lambda: (os.path.exists(os.path.join(ctl_dir, "ctl"))
                          and os.path.exists(self.mgmt)) or self.proc.poll() is not None,
                 what="switch %s to start" % tool)
        assert self.proc.poll() is None, self.proc.stderr.read().decode()


@pytest.fixture
def new_switch(procs):
    def factory(kind, path, *args):
        return PatientSwitch(procs, OURS["vde_switch"] if kind == "ours"
                             else C_TOOLS["vde_switch"], path, *args)
    return factory

pytestmark = pytest.mark.real

KINDS = ("ours", "c")


def plug_tool(kind):
    return require(OURS["vde_plug"] if kind == "ours" else C_TOOLS["vde_plug"])


def tagged(frame_, vlan, tpid=0x8100):
    return frame_[:12] + struct.pack("!HH", tpid, vlan) + frame_[12:]


def received(plug, wanted, timeout=DELIVERY, expect=1):
    """How many copies of ``wanted`` ``plug`` gets: waits for ``expect`` of
    them (up to ``timeout``), then a little longer for extra ones."""
    count = 0
    deadline = time.monotonic() + timeout
    while count < expect:
        left = deadline - time.monotonic()
        if left <= 0 or plug.recv_matching(lambda f: f == wanted, left) is None:
            return count
        count += 1
    return count + sum(1 for f in plug.drain(0.4) if f == wanted)


# -- cmd:// ------------------------------------------------------------------
@pytest.mark.parametrize("outer", KINDS)
@pytest.mark.parametrize("inner", KINDS)
def test_cmd_cable_between_two_switches(procs, sockdir, new_switch, outer, inner):
    # A is ours: 2.3.2 now and then keeps an endpoint whose client has exited
    a = new_switch("ours", os.path.join(sockdir, "a"))
    b = new_switch("c", os.path.join(sockdir, "b"))
    wa = StreamPlug(procs, C_TOOLS["vde_plug"], a.dir)
    wb = StreamPlug(procs, C_TOOLS["vde_plug"], b.dir)
    cable = procs.start([plug_tool(outer), a.dir,
                         "cmd://%s %s" % (plug_tool(inner), b.dir)])
    attached(a, 2)
    attached(b, 2)
    f = frame(BROADCAST, mac(1), b"a to b through a command")
    wa.send(f)
    assert received(wb, f) == 1
    g = frame(mac(1), mac(2), b"b to a")
    wb.send(g)
    assert received(wa, g) == 1
    # the command ends: so does the cable, quietly
    child = [p for p in _children(cable.pid)]
    assert child, "the command was not started"
    os.kill(child[0], signal.SIGTERM)
    assert cable.wait(timeout=START) == 0
    attached(a, 1)


def _children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], stdout=subprocess.PIPE,
                         text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.parametrize("kind", KINDS)
def test_cmd_in_stream_mode(procs, sockdir, new_switch, kind):
    """``vde_plug cmd://...``: the plug's own vdestream through the command."""
    sw = new_switch("c", os.path.join(sockdir, "sw"))
    w = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    p = StreamPlug(procs, plug_tool(kind), "cmd://%s '%s'" % (C_TOOLS["vde_plug"], sw.dir))
    attached(sw, 2)
    for i in range(20):                  # many frames, in both directions
        f = frame(BROADCAST, mac(3), b"stdin %d" % i, size=60 + 37 * i)
        p.send(f)
        # one copy or more (no grace period for extra copies: they may come)
        assert w.recv_matching(lambda x: x == f, DELIVERY) == f
        g = frame(mac(3), mac(4), b"reply %d" % i, size=1500 - i)
        w.send(g)
        assert p.recv_matching(lambda x: x == g, DELIVERY) == g
    assert p.close() == 0


def test_cmd_echo_does_not_deadlock(procs):
    """Frames in faster than an echoing command gives them back: ours holds what
    the command's stdin has no room for (the C plugin writes blocking and can
    hang forever here, both pipes full)."""
    import threading
    p = StreamPlug(procs, plug_tool("ours"), "cmd://cat")
    # 800 kB: far beyond what the pipes hold, below what ours holds (1 MiB)
    frames = [frame(BROADCAST, mac(5), b"echo %d" % i, size=1000) for i in range(800)]
    data = b"".join(struct.pack("!H", len(f)) + f for f in frames)

    def feed():
        p.proc.stdin.write(data)
        p.proc.stdin.flush()
    t = threading.Thread(target=feed, daemon=True)
    t.start()
    got = [p.recv(30) for _ in frames]
    assert got == frames
    t.join(5)
    assert p.close() == 0


# -- multi:// and bonding:// --------------------------------------------------
def node_links(path):
    """Links a node serves: its data sockets (a client's own socket is a dot file)."""
    return len([n for n in os.listdir(path) if n != "ctl" and not n.startswith(".")])


def join_node(procs, path, argv):
    """Start a link to the node at ``path``; wait until the node serves it.

    The C node creates ctl before it listens: a link refused then is retried.
    """
    before = node_links(path)
    for _ in range(20):
        proc = procs.start(argv)
        wait_for(lambda: node_links(path) > before or proc.poll() is not None,
                 what="a link to join %s" % path)
        if proc.poll() is None:
            return proc
    raise AssertionError("no link could join %s" % path)


def node_with_links(procs, sockdir, kind, scheme, nlinks=2):
    """A node hosted by ``kind``'s vde_plug (its stream is the host) and
    ``nlinks`` C plugs joined to it."""
    path = os.path.join(sockdir, scheme)
    host = StreamPlug(procs, plug_tool(kind), "%s://%s" % (scheme, path))
    wait_for(lambda: os.path.exists(os.path.join(path, "ctl")), what="the %s node" % scheme)
    links = []
    for i in range(nlinks):
        for _ in range(20):
            link = StreamPlug(procs, C_TOOLS["vde_plug"], path)
            wait_for(lambda: node_links(path) >= i + 1 or link.proc.poll() is not None,
                     what="link %d to join" % (i + 1))
            if link.proc.poll() is None:
                break
        links.append(link)
    return host, links


@pytest.mark.parametrize("kind", KINDS)
def test_multi_delivery(procs, sockdir, kind):
    host, links = node_with_links(procs, sockdir, kind, "multi")
    f = frame(mac(9), mac(1), b"host to every link")
    host.send(f)
    assert [received(ln, f) for ln in links] == [1, 1]
    g = frame(BROADCAST, mac(2), b"link to host only")
    links[0].send(g)
    assert received(host, g) == 1
    assert links[1].drain(0.3) == []      # links never hear each other


@pytest.mark.parametrize("kind", KINDS)
def test_bonding_round_robin(procs, sockdir, kind):
    host, links = node_with_links(procs, sockdir, kind, "bonding")
    frames = [frame(BROADCAST, mac(1), b"frame %d" % i) for i in range(10)]
    for f in frames:
        host.send(f)
    wait_for(lambda: sum(ln.frames.qsize() for ln in links) >= 10, what="10 frames")
    got = [ln.drain(0.3) for ln in links]
    assert sorted(got[0] + got[1]) == sorted(frames)      # each once, none lost
    assert len(got[0]) == len(got[1]) == 5                 # in turns
    assert got[0] == frames[1::2] or got[0] == frames[0::2]
    g = frame(BROADCAST, mac(2), b"back")
    links[1].send(g)
    assert received(host, g) == 1
    assert links[0].drain(0.3) == []


@pytest.mark.parametrize("sw_kind", KINDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scheme", ["multi", "bonding"])
def test_two_links_between_two_switches(procs, sockdir, new_switch, sw_kind, kind, scheme):
    """Switch A - node - two links - switch B; then one link goes (handoff)."""
    a = new_switch(sw_kind, os.path.join(sockdir, "a"))
    b = new_switch(sw_kind, os.path.join(sockdir, "b"))
    node = os.path.join(sockdir, "node")
    procs.start([plug_tool(kind), a.dir, "%s://%s" % (scheme, node)])
    wait_for(lambda: os.path.exists(os.path.join(node, "ctl")), what="the node")
    wa = StreamPlug(procs, C_TOOLS["vde_plug"], a.dir)
    wb = StreamPlug(procs, C_TOOLS["vde_plug"], b.dir)
    link1 = join_node(procs, node, [plug_tool("c"), node, b.dir])
    link2 = join_node(procs, node, [plug_tool("ours"), node, b.dir])
    attached(a, 2)
    attached(b, 3)
    hello = frame(BROADCAST, mac(0x0B), b"wb is here")
    wb.send(hello)                        # both switches learn where wb is
    assert received(wa, hello) >= 1
    wa.drain(0.3)
    f = frame(mac(0x0B), mac(0x0A), b"a to b")
    wa.send(f)
    copies = 2 if scheme == "multi" else 1
    assert received(wb, f, expect=copies) == copies
    # B learned wa's MAC on one link; its answer crosses once
    g = frame(mac(0x0A), mac(0x0B), b"b to a")
    wb.send(g)
    assert received(wa, g) == 1
    link1.terminate()
    link1.wait(timeout=5)
    # the node has let the link go (2.3.2, as B, may keep a stale endpoint)
    wait_for(lambda: node_links(node) == 1, what="the node to drop link 1")
    for i in range(4):                    # the other link carries everything now
        f = frame(mac(0x0B), mac(0x0A), b"after handoff %d" % i)
        wa.send(f)
        assert received(wb, f) == 1
    assert link2.poll() is None


# -- schemes without a module of ours ---------------------------------------
ECHO_PLUGIN = r"""
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>
struct vde_open_args;
struct vdeplug_module {
    int flags;
    void *(*vde_open_real)(char *, char *, int, struct vde_open_args *);
    ssize_t (*vde_recv)(void *, void *, size_t, int);
    ssize_t (*vde_send)(void *, const void *, size_t, int);
    int (*vde_datafd)(void *);
    int (*vde_ctlfd)(void *);
    int (*vde_close)(void *);
};
struct conn { void *handle; void *module; int fd[2]; char word[32]; };
static void *e_open(char *url, char *descr, int v, struct vde_open_args *a) {
    struct conn *c = calloc(1, sizeof *c);
    if (!*url) { free(c); errno = EINVAL; return NULL; }
    socketpair(AF_UNIX, SOCK_DGRAM, 0, c->fd);
    strncpy(c->word, url, sizeof c->word - 1);
    return c;
}
/* echo each frame back, its source MAC made the destination and the
   URL's word written after the header */
static ssize_t e_send(void *p, const void *buf, size_t len, int f) {
    struct conn *c = p; unsigned char out[9300]; size_t n = strlen(c->word);
    if (len < 14 || len + n > sizeof out) return len;
    memcpy(out, (const char *)buf + 6, 6); memcpy(out + 6, buf, 6);
    memcpy(out + 12, (const char *)buf + 12, 2); memcpy(out + 14, c->word, n);
    memcpy(out + 14 + n, (const char *)buf + 14, len - 14);
    return send(c->fd[1], out, len + n, 0) < 0 ? -1 : (ssize_t)len;
}
static ssize_t e_recv(void *p, void *buf, size_t len, int f) {
    return recv(((struct conn *)p)->fd[0], buf, len, 0);
}
static int e_datafd(void *p) { return ((struct conn *)p)->fd[0]; }
static int e_ctlfd(void *p) { return -1; }
static int e_close(void *p) {
    struct conn *c = p; close(c->fd[0]); close(c->fd[1]); free(c); return 0;
}
struct vdeplug_module vdeplug_ops = {0, e_open, e_recv, e_send, e_datafd, e_ctlfd, e_close};
"""


@pytest.fixture(scope="module")
def plugin_dir():
    d = tempfile.mkdtemp(prefix="vtplugin")
    src = os.path.join(d, "echo.c")
    with open(src, "w") as f:
        f.write(ECHO_PLUGIN)
    name = "vt%dpecho" % os.getpid()
    subprocess.run([require("/usr/bin/gcc"), "-shared", "-fPIC", "-o",
                    os.path.join(d, "libvdeplug_%s.so" % name), src], check=True)
    yield d, name
    shutil.rmtree(d, ignore_errors=True)


def run(kind, *args, env=None, timeout=START, stdin=b""):
    r = subprocess.run([plug_tool(kind)] + list(args), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr.decode()


@pytest.mark.parametrize("kind", KINDS)
def test_installed_plugin_is_used(procs, plugin_dir, kind):
    """A scheme only vdeplug4 has: our vde_plug loads the plugin through libvdeplug."""
    d, name = plugin_dir
    env = dict(os.environ, VDEPLUGIN_PATH=d)
    p = subprocess.Popen([plug_tool(kind), "%s://hello" % name], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.procs.append(p)
    f = frame(mac(7), mac(8), b"ping", size=60)
    p.stdin.write(struct.pack("!H", len(f)) + f)
    p.stdin.flush()
    head = p.stdout.read(2)
    body = p.stdout.read(struct.unpack("!H", head)[0])
    assert body == mac(8) + mac(7) + f[12:14] + b"hello" + f[14:]
    p.stdin.close()
    assert p.wait(timeout=5) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_installed_plugin_open_error(plugin_dir, kind):
    d, name = plugin_dir
    env = dict(os.environ, VDEPLUGIN_PATH=d)
    status, _, err = run(kind, "%s://" % name, env=env)
    assert status == 1
    assert err.startswith("vde_open %s://: Invalid argument" % name)


def test_unknown_scheme_is_one_line_naming_it():
    scheme = "vt%dnone" % os.getpid()
    status, _, c_err = run("c", scheme + "://x")
    assert (status, c_err) == (1, "vde_open %s://x: Protocol not supported\n" % scheme)
    status, _, err = run("ours", scheme + "://x")
    assert status == 1
    assert err.startswith("vde_open %s://x: Protocol not supported" % scheme)
    assert err.count("\n") == 1 and "scheme %s://" % scheme in err


# -- vlan:// -----------------------------------------------------------------
def _vlan_frames(tag):
    base = [frame(BROADCAST, mac(0x50), b"%s untagged" % tag, ethertype=0x88B5)]
    for vlan in (0, 1, 3, 4, 5, 6, 7, 10, 20, 4095):
        base.append(tagged(frame(BROADCAST, mac(0x50), b"%s tag %d" % (tag, vlan)), vlan))
    base.append(tagged(frame(BROADCAST, mac(0x50), b"%s prio 3" % tag), (5 << 13) | 3))
    base.append(tagged(frame(BROADCAST, mac(0x50), b"%s ad 3" % tag), 3, 0x88A8))
    base.append(tagged(frame(BROADCAST, mac(0x50), b"%s ad 5" % tag), 5, 0x88A8))
    return base


C_RECV_BUFFER = 9216 + 14 + 4          # what the C plugin returns for a remapped frame


END = b"END-OF-RUN"
# one of these passes whatever the options tested below
END_MARKERS = [frame(BROADCAST, mac(0x52), END)] + [
    tagged(frame(BROADCAST, mac(0x52), END), vlan, tpid)
    for vlan, tpid in ((1, 0x8100), (3, 0x8100), (7, 0x8100), (5, 0x88A8))]


def _vlan_pass(src, dst, frames):
    """Send ``frames`` then the end markers; what ``dst`` got before them."""
    for f in frames + END_MARKERS:
        src.send(f)
    got = []
    while True:
        f = dst.recv(DELIVERY)
        assert f is not None, "no end marker came through"
        if END in f[:64]:             # (stale bytes may follow, see C_RECV_BUFFER)
            break
        got.append(f)
    dst.drain(0.3)
    return got


def _vlan_run(procs, sockdir, kind, opts):
    """(what the network got from the host, what the host got from the network)."""
    path = os.path.join(sockdir, "p%d" % random.randrange(1 << 30))
    host = StreamPlug(procs, plug_tool(kind), "vlan://%s{ptp://%s}" % (opts, path))
    wait_for(lambda: os.path.exists(path), what="the vlan plug's ptp end")
    net = StreamPlug(procs, C_TOOLS["vde_plug"], "ptp://" + path)
    wait_for(lambda: os.path.exists(path + "+"), what="the peer's ptp end")
    to_net = _vlan_pass(host, net, _vlan_frames(b"out"))
    to_host = _vlan_pass(net, host, _vlan_frames(b"in"))
    host.close()
    net.close()
    return to_net, to_host


# The C plugin drops the last tag of a list when it is one character long
# (it counts the tags in a copy cut one byte short): lists here end with
# two characters; test_vlan_short_last_tag shows ours keeps it.
VLAN_OPTIONS = ["3", "0", "1", "3/untag=4", "0/untag=7", "0/tag=15", "3/tag=5-6:17",
                "3/trunk", "0/trunk/tag=10-20", "5/qinq", "4095/t=3:13", "0x3/u=0x4",
                "3/tag=10.20-4/x/u=7"]


@pytest.mark.parametrize("opts", VLAN_OPTIONS)
def test_vlan_rules_match_the_c_plugin(procs, sockdir, opts):
    c_net, c_host = _vlan_run(procs, sockdir, "c", opts)
    o_net, o_host = _vlan_run(procs, sockdir, "ours", opts)
    assert o_net == c_net
    assert len(o_host) == len(c_host)
    for o, c in zip(o_host, c_host):
        # the C plugin returns its whole buffer for a remapped tag (a bug):
        # the frame is ours followed by stale bytes
        assert o == c or (len(c) == C_RECV_BUFFER and c[:len(o)] == o)
    assert o_net or o_host


def test_vlan_short_last_tag(procs, sockdir):
    to_net, to_host = _vlan_run(procs, sockdir, "ours", "0/tag=5")
    assert [f for f in to_net if f[12:16] == b"\x81\x00\x00\x05"]
    assert [f for f in to_host if f[12:16] == b"\x81\x00\x00\x05"]
    c_net, c_host = _vlan_run(procs, sockdir, "c", "0/tag=5")
    assert not [f for f in c_net if f[12:16] == b"\x81\x00\x00\x05"]


def test_vlan_bracket_options_as_documented(procs, sockdir):
    """``N[OPT/...]`` (vdeplug_vlan's manual) takes every option here; the C
    plugin loses the first one (it reads options after '/' only)."""
    doc = "3[untag=4/trunk/tag=10:11-12:12-11]"           # the manual's example
    assert _vlan_run(procs, sockdir, "ours", doc) == \
        _vlan_run(procs, sockdir, "ours", "3/untag=4/trunk/tag=10:11-12:12-11")
    def c_run(opts):                      # remapped frames cut back to their size (64)
        to_net, to_host = _vlan_run(procs, sockdir, "c", opts)
        return to_net, [f[:64] if len(f) == C_RECV_BUFFER else f for f in to_host]
    assert c_run(doc) == c_run("3/trunk/tag=10:11-12:12-11")


def remapped(plug, wanted):
    """As :func:`received`, also counting the C plugin's whole-buffer frames."""
    def match(f):
        return f == wanted or (len(f) == C_RECV_BUFFER and f[:len(wanted)] == wanted)
    if plug.recv_matching(match, DELIVERY) is None:
        return 0
    return 1 + sum(1 for f in plug.drain(0.4) if match(f))


@pytest.mark.parametrize("sw_kind", KINDS)
@pytest.mark.parametrize("kind", KINDS)
def test_vlan_on_a_trunk_port(procs, sockdir, new_switch, sw_kind, kind):
    """vlan://3 on a port that is a tagged member of VLAN 3 behaves as an
    untagged port of VLAN 3; vlan://0/tag=3 sees VLAN 3 tagged."""
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    p = StreamPlug(procs, plug_tool(kind), "vlan://3{%s[1]}" % sw.dir)
    q = StreamPlug(procs, plug_tool(kind), "vlan://0/tag=3:13{%s[4]}" % sw.dir)
    w2 = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir + "[2]")
    w3 = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir + "[3]")
    attached(sw, 4)
    for line in ("vlan/create 3", "vlan/addport 3 1", "vlan/addport 3 4", "port/setvlan 2 3"):
        assert sw.cmd(line).endswith("1000 Success\n"), line
    f = frame(BROADCAST, mac(0x61), b"from the vlan plug")
    p.send(f)
    assert received(w2, f) == 1
    assert remapped(q, tagged(f, 3)) == 1
    assert w3.drain(0.3) == []
    g = frame(BROADCAST, mac(0x62), b"from an access port of vlan 3")
    w2.send(g)
    assert received(p, g) == 1
    assert remapped(q, tagged(g, 3)) == 1
    h = frame(BROADCAST, mac(0x63), b"vlan 0")
    w3.send(h)
    assert p.drain(0.5) == []             # untagged on the trunk: not vlan 3
    assert q.recv_matching(lambda x: x == h, DELIVERY) == h
    t = tagged(frame(BROADCAST, mac(0x64), b"tagged by q"), 3)
    q.send(t)
    assert received(w2, t[:12] + t[16:]) == 1
    assert received(p, t[:12] + t[16:]) == 1


# -- agno:// -----------------------------------------------------------------
# An uppercase A on purpose: the C plugin reads it as 1, so must we.
KEY = "0123456789ABCDEF 01234567 89abcdef\n"
OTHER_KEY = "ffeeddccbbaa99887766554433221100\n"


@pytest.fixture
def keyfiles(tmp_path):
    paths = []
    for text in (KEY, OTHER_KEY):
        p = tmp_path / ("key%d" % len(paths))
        p.write_text(text)
        paths.append(str(p))
    return paths


def agno_pair(procs, sockdir, new_switch, keyfiles, a, b, opts="", key_b=0):
    sw = new_switch("c", os.path.join(sockdir, "sw"))
    spy = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    pa = StreamPlug(procs, plug_tool(a), "agno://%s%s{%s}" % (keyfiles[0], opts, sw.dir))
    pb = StreamPlug(procs, plug_tool(b), "agno://%s%s{%s}" % (keyfiles[key_b], opts, sw.dir))
    attached(sw, 3)
    return spy, pa, pb


@pytest.mark.parametrize("a,b", [(a, b) for a in KINDS for b in KINDS])
def test_agno_both_ways(procs, sockdir, new_switch, keyfiles, a, b):
    spy, pa, pb = agno_pair(procs, sockdir, new_switch, keyfiles, a, b)
    for size in (14, 15, 60, 61, 77, 1480):     # 1480 + 22 fits a 1514-byte switch
        f = frame(BROADCAST, mac(0x71), b"secret %d" % size, size=size)[:size]
        pa.send(f)
        assert received(pb, f) == 1, size
        wire = spy.recv(DELIVERY)
        assert wire[:12] == f[:12] and wire[12:14] == b"\xa6\xde"
        assert len(wire) == 30 + (-(size - 14) % 16) + size - 14
        assert b"secret" not in wire
        g = frame(mac(0x71), mac(0x72), b"answer %d" % size, size=max(size, 30))
        pb.send(g)
        assert received(pa, g) == 1
        spy.drain(0.1)


@pytest.mark.parametrize("opts,outer", [("[ethtype=copy]", b"\x88\xb5"),
                                        ("[ethtype=ipv4]", b"\x08\x00"),
                                        ("[ethtype=ipv6]", b"\x86\xdd"),
                                        ("[ethtype=0x1234]", b"\x12\x34"),
                                        ("[ethtype=rand]", None)])
@pytest.mark.parametrize("a,b", [("ours", "c"), ("c", "ours")])
def test_agno_ethtype(procs, sockdir, new_switch, keyfiles, a, b, opts, outer):
    spy, pa, pb = agno_pair(procs, sockdir, new_switch, keyfiles, a, b, opts)
    types = set()
    for i in range(8):
        f = frame(BROADCAST, mac(0x73), b"typed %d" % i)
        pa.send(f)
        assert received(pb, f) == 1
        wire = spy.recv(DELIVERY)
        types.add(wire[12:14])
        if outer is not None:
            assert wire[12:14] == outer
        else:
            assert int.from_bytes(wire[12:14], "big") >= 0x600
    if outer is None:
        assert len(types) > 1                 # a new random type per frame


@pytest.mark.parametrize("a,b", [("ours", "c"), ("c", "ours")])
def test_agno_wrong_key_hears_nothing(procs, sockdir, new_switch, keyfiles, a, b):
    spy, pa, pb = agno_pair(procs, sockdir, new_switch, keyfiles, a, b, key_b=1)
    f = frame(BROADCAST, mac(0x74), b"not for you")
    pa.send(f)
    assert spy.recv(DELIVERY) is not None            # it was sent, encrypted
    assert pb.drain(0.5) == []


@pytest.mark.parametrize("vnl,err", [("agno:///nonexistent/key{null://}",
                                      "No such file or directory"),
                                     ("agno://relative/key{null://}", "Invalid argument"),
                                     ("agno://%s[ethtype=12]{null://}", "Invalid argument"),
                                     ("agno://%s[ethtype=what]{null://}", "Invalid argument")])
def test_agno_open_errors(keyfiles, vnl, err):
    vnl = vnl.replace("%s", keyfiles[0])
    for kind in KINDS:
        status, _, text = run(kind, vnl)
        assert status == 1 and text.startswith("vde_open %s: %s" % (vnl, err)), (kind, text)


# -- pcap:// -----------------------------------------------------------------
PUMP = r"""
import os, select, socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 3))
s.setsockopt(263, 23, 1)                 # PACKET_IGNORE_OUTGOING: only what arrives
buf = b""
while True:
    r, _, _ = select.select([0, s], [], [])
    if 0 in r:
        data = os.read(0, 65536)
        if not data:
            break
        buf += data
        while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
            n = struct.unpack("!H", buf[:2])[0]
            s.send(buf[2:2 + n])
            buf = buf[2 + n:]
    if s in r:
        f = s.recv(65536)
        os.write(1, struct.pack("!H", len(f)) + f)
"""


@pytest.fixture
def veth_lab(namespaces, tmp_path):  # noqa: F811
    from ifaces import ifname, ip, link
    lab = type("Lab", (), {})()
    lab.ns_a, lab.ns_b = namespaces.new("pa"), namespaces.new("pb")
    lab.a, lab.b = ifname("pca"), ifname("pcb")
    namespaces.veth(lab.a, lab.ns_a, lab.b, lab.ns_b)
    for name, ns in ((lab.a, lab.ns_a), (lab.b, lab.ns_b)):
        ip("link", "set", name, "up", ns=ns)
    lab.mac_a = bytes.fromhex(link(lab.a, lab.ns_a)["address"].replace(":", ""))
    lab.pump = str(tmp_path / "pump.py")
    with open(lab.pump, "w") as f:
        f.write(PUMP)
    return lab


@pytest.fixture(scope="module")
def namespaces():
    from ifaces import Namespaces
    n = Namespaces()
    yield n
    n.cleanup()


def only_test_frames(plug, wait=0.5):
    return [f for f in plug.drain(wait) if f[12:14] == b"\x88\xb5"]


@pytest.mark.parametrize("kind", KINDS)
def test_pcap_joins_an_interface(procs, sockdir, new_switch, veth_lab, kind):
    import sys
    lab = veth_lab
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    w = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    procs.start(["/usr/bin/ip", "netns", "exec", lab.ns_a, plug_tool(kind), sw.dir,
                 "pcap://" + lab.a])
    attached(sw, 2)
    peer = StreamPlug(procs, "/usr/bin/ip", "netns", "exec", lab.ns_b, sys.executable,
                      lab.pump, lab.b)
    host = StreamPlug(procs, "/usr/bin/ip", "netns", "exec", lab.ns_a, sys.executable,
                      lab.pump, lab.a)
    f = frame(BROADCAST, mac(0x81), b"from the wire")

    def crossed():                        # the pumps start in their own time
        peer.send(f)
        return w.recv_matching(lambda x: x == f, 0.3) is not None
    wait_for(crossed, what="a frame from the wire to the switch")
    g = frame(mac(0x81), mac(0x82), b"from the switch")
    w.send(g)
    assert peer.recv_matching(lambda x: x == g, DELIVERY) == g          # injected on the wire
    assert host.recv_matching(lambda x: x == g, 0.5) is None  # the host does not get it
    only_test_frames(w)
    k = frame(BROADCAST, mac(0x83), b"sent by another socket of the host")
    host.send(k)                          # outgoing on the interface: captured too
    assert w.recv_matching(lambda x: x == k, DELIVERY) == k
    own = frame(BROADCAST, lab.mac_a, b"the host's own address")
    host.send(own)
    peer.send(own)
    assert peer.recv_matching(lambda x: x == own, DELIVERY) == own     # it was on the wire
    assert only_test_frames(w) == []      # neither way: the host's own traffic


@pytest.mark.parametrize("kind", KINDS)
def test_pcap_down_interface_is_an_error(procs, sockdir, new_switch, veth_lab, kind):
    from ifaces import ip, link
    lab = veth_lab
    ip("link", "set", lab.a, "down", ns=lab.ns_a)
    r = subprocess.run(["/usr/bin/ip", "netns", "exec", lab.ns_a, plug_tool(kind),
                        "pcap://" + lab.a], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=START)
    assert r.returncode == 1
    assert r.stderr.decode().startswith("vde_open pcap://%s: " % lab.a)
    assert "UP" not in link(lab.a, lab.ns_a)["flags"]        # left as it was


# -- tee:// (ours only) ------------------------------------------------------
def test_tee_writes_a_pcap_file_tcpdump_reads(procs, sockdir, new_switch, tmp_path):
    from vde_ipn.wire import pcap
    sw = new_switch("c", os.path.join(sockdir, "sw"))
    w = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    capture = str(tmp_path / "cable.pcap")
    p = StreamPlug(procs, plug_tool("ours"), "tee://%s{%s}" % (capture, sw.dir))
    attached(sw, 2)
    sent = []
    for i in range(3):
        f = frame(BROADCAST, mac(0x91), b"out %d" % i, ethertype=0x0806 + i, size=60 + i)
        p.send(f)
        assert received(w, f) == 1
        g = frame(mac(0x91), mac(0x92), b"in %d" % i, size=100 + i)
        w.send(g)
        assert received(p, g) == 1
        sent += [f, g]
    # readable while the cable runs: one flushed record per frame
    out = subprocess.run([require("/usr/bin/tcpdump"), "-r", capture, "-nn", "-e"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=START)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if not ln.startswith("\t")]   # no hex dumps
    assert len(lines) == 6
    assert "02:00:00:00:00:91 > ff:ff:ff:ff:ff:ff" in lines[0] and "length 60" in lines[0]
    assert "02:00:00:00:00:92 > 02:00:00:00:00:91" in lines[1] and "length 100" in lines[1]
    assert p.close() == 0
    with open(capture, "rb") as f:
        header, records = pcap.read_records(f)
        assert header.linktype == pcap.LINKTYPE_ETHERNET
        assert [r.data for r in records] == sent


def test_tee_around_a_vlan_view(procs, sockdir, new_switch, tmp_path):
    """Nested both ways: the file shows the frames as the host sees them."""
    sw = new_switch("ours", os.path.join(sockdir, "sw"))
    w = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir + "[2]")
    capture = str(tmp_path / "view.pcap")
    p = StreamPlug(procs, plug_tool("ours"), "tee://%s{vlan://0/tag=7-17{%s[1]}}"
                   % (capture, sw.dir))
    attached(sw, 2)
    for line in ("vlan/create 17", "vlan/addport 17 1", "vlan/addport 17 2"):
        assert sw.cmd(line).endswith("1000 Success\n"), line
    f = tagged(frame(BROADCAST, mac(0x93), b"host tag 7"), 7)
    p.send(f)
    assert received(w, tagged(frame(BROADCAST, mac(0x93), b"host tag 7"), 17)) == 1
    assert p.close() == 0
    from vde_ipn.wire import pcap
    with open(capture, "rb") as fh:
        assert [r.data for r in pcap.read_records(fh)[1]] == [f]


# -- ipn:// (ours only) ------------------------------------------------------
@pytest.mark.parametrize("sw_kind", KINDS)
def test_ipn_network_cabled_to_a_switch(procs, sockdir, new_switch, sw_kind):
    import select
    from vde_ipn import ipn
    sw = new_switch(sw_kind, os.path.join(sockdir, "sw"))
    w = StreamPlug(procs, C_TOOLS["vde_plug"], sw.dir)
    bus = os.path.join(sockdir, "bus")
    node = ipn.socket(ipn.IPN_BROADCAST)
    try:
        node.bind(bus)
        node.connect()
        cable = procs.start([plug_tool("ours"), "ipn://" + bus, sw.dir])
        attached(sw, 2)
        f = frame(BROADCAST, mac(0xA1), b"from the ipn bus")

        def crossed():
            node.send(f)
            return w.recv_matching(lambda x: x == f, 0.3) is not None
        wait_for(crossed, what="a frame from the IPN network to the switch")
        g = frame(mac(0xA1), mac(0xA2), b"from the switch")
        w.send(g)
        deadline = 50
        while deadline:
            assert select.select([node], [], [], DELIVERY)[0], "nothing came to the IPN node"
            got = node.recv(2048)
            if got == g:
                break
            deadline -= 1
        assert got == g
        cable.terminate()
        assert cable.wait(timeout=5) == 0
    finally:
        node.close()


def test_ipn_missing_network():
    status, _, err = run("ours", "ipn:///nonexistent/vt-bus")
    assert (status, err) == (1, "vde_open ipn:///nonexistent/vt-bus: No such file or directory\n")


# -- as an unprivileged user -------------------------------------------------
AS_NOBODY = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def run_as_nobody(kind, vnl):
    r = subprocess.run([require(AS_NOBODY[0])] + AS_NOBODY[1:] + [plug_tool(kind), vnl],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=START)
    return r.returncode, r.stderr.decode()


@pytest.mark.parametrize("kind", KINDS)
def test_nobody_cannot_capture(kind):
    status, err = run_as_nobody(kind, "pcap://lo")
    assert status == 1 and err.startswith("vde_open pcap://lo: Operation not permitted")


@pytest.mark.parametrize("kind", KINDS)
def test_nobody_cannot_use_a_key_it_cannot_read(keyfiles, kind):
    os.chmod(os.path.dirname(keyfiles[0]), 0o755)
    os.chmod(keyfiles[0], 0o600)                  # root's key
    vnl = "agno://%s{null://}" % keyfiles[0]
    status, err = run_as_nobody(kind, vnl)
    assert status == 1 and err.startswith("vde_open %s: No such file or directory" % vnl)


# -- the benchmark still runs ------------------------------------------------
def test_scheme_benchmark_runs():
    """A smoke run of benchmarks/plug_schemes.py: rows for both, no timing checked."""
    import sys
    script = os.path.join(support.REPO, "benchmarks", "plug_schemes.py")
    p = subprocess.run([sys.executable, script, "--frames", "300", "--runs", "1",
                        "--sizes", "64", "--cases", "ptp,vlan,agno"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = [ln.split() for ln in p.stdout.splitlines() if not ln.startswith(("#", "case"))]
    assert [(r[0], r[2]) for r in rows] == [(c, i) for c in ("ptp", "vlan", "agno")
                                            for i in ("C", "ours")]
    assert "load average" in p.stdout
