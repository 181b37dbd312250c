"""vde_cryptcab beside Debian's: an encrypted UDP cable between two switches.

Each end is Debian's vde_cryptcab or ours, in every pairing, over
loopback with a pre-shared key; frames go both ways between a plug on
each switch.  Debian's build uses OpenSSL's Blowfish, which OpenSSL 3
keeps in its legacy provider: the C tool runs with an OPENSSL_CONF that
loads it (without it the C tool cannot encrypt at all).
"""

import os
import random
import socket
import struct
import subprocess
import time
import zlib

import pytest

from ifaces import namespaces  # noqa: F401  (fixture)
from support import C_TOOLS, COMPAT, StreamPlug, Switch, attached, frame, mac, require, wait_for

# key files go to /tmp (vde_XXXXXX.key, .ID.key), where tests look for what
# appeared or stayed: these tests run one after another, on one worker
pytestmark = pytest.mark.xdist_group("cryptcab-tmp-keys")

C_CAB = "/usr/bin/vde_cryptcab"
OUR_CAB = os.path.join(COMPAT, "vde_cryptcab")
TOOLS = {"c": C_CAB, "ours": OUR_CAB}

LEGACY_CONF = """openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
legacy = legacy_sect
[default_sect]
activate = 1
[legacy_sect]
activate = 1
"""


@pytest.fixture
def env(sockdir):
    conf = os.path.join(sockdir, "openssl.cnf")
    with open(conf, "w") as f:
        f.write(LEGACY_CONF)
    e = dict(os.environ)
    e["OPENSSL_CONF"] = conf
    return e


def _ports():
    base = random.Random(os.getpid() ^ int(time.time() * 1000)).randrange(20000, 60000, 2)
    return base, base + 1


def _key(sockdir, name="key"):
    path = os.path.join(sockdir, name)
    with open(path, "wb") as f:
        f.write(os.urandom(24))
    return path


def _cable(procs, sockdir, env, server, client, key=None, client_key=None):
    """Two switches with a plug each, joined by a server and a client."""
    s1 = Switch(procs, C_TOOLS["vde_switch"], os.path.join(sockdir, "s1"))
    s2 = Switch(procs, C_TOOLS["vde_switch"], os.path.join(sockdir, "s2"))
    a = StreamPlug(procs, C_TOOLS["vde_plug"], s1.dir)
    b = StreamPlug(procs, C_TOOLS["vde_plug"], s2.dir)
    sport, cport = _ports()
    key = key or _key(sockdir)
    keyargs = ["-P", key]
    ckeyargs = ["-P", client_key or key]
    srv = procs.start([require(TOOLS[server]), "-s", s1.dir, "-p", str(sport)] + keyargs
                      , env=env)
    wait_for(lambda: _udp_bound(sport) or srv.poll() is not None, what="server socket")
    cli = procs.start([require(TOOLS[client]), "-s", s2.dir, "-p", str(cport),
                       "-c", "127.0.0.1:%d" % sport] + ckeyargs , env=env)
    return s1, s2, a, b, srv, cli


def _udp_bound(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def _unwrap(got, kind, sent):
    """What a receiving end of kind ``kind`` delivers: ours the frame; 2.3.2
    the frame plus the 8-byte counter and CRC-32 it decrypted (it never
    strips them).  2.3.2 writes the last partial block of what it decrypts
    8 bytes too far, so those trailer bytes are only right when frame and
    trailer fill whole blocks."""
    if kind == "ours":
        assert got == sent
        return
    assert got is not None and got[:len(sent)] == sent and len(got) == len(sent) + 12
    if len(got) % 8 == 0:
        body = got[:-4]
        assert struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF) == got[-4:]
        assert struct.unpack("<Q", got[-12:-4])[0] >= 1


@pytest.mark.parametrize("server,client", [("c", "ours"), ("ours", "c"), ("ours", "ours")])
def test_encrypted_cable_between_two_switches(procs, sockdir, env, server, client):
    s1, s2, a, b, srv, cli = _cable(procs, sockdir, env, server, client)
    b.send(frame(b"\xff" * 6, mac(2), b"login please"))   # a frame makes a C client log in
    attached(s2, 2, 20)
    attached(s1, 2, 20)                                      # the server plugged the client in
    for i in range(5):
        f = frame(b"\xff" * 6, mac(10 + i), b"to the server side %d" % i, size=60 + i * 301)
        deadline = time.monotonic() + 20
        while True:                                         # until the login completed
            b.send(f)
            got = a.recv_matching(lambda g: g[6:12] == f[6:12], timeout=1)
            if got is not None or time.monotonic() > deadline:
                break
        _unwrap(got, server, f)
        g = frame(mac(10 + i), mac(50 + i), b"to the client side %d" % i)
        a.send(g)
        _unwrap(b.recv_matching(lambda x: x[6:12] == g[6:12], timeout=5), client, g)
    assert srv.poll() is None and cli.poll() is None


@pytest.mark.parametrize("server,client", [("c", "ours"), ("ours", "c")])
def test_a_client_with_the_wrong_key_gets_no_port(procs, sockdir, env, server, client):
    s1, s2, a, b, srv, cli = _cable(procs, sockdir, env, server, client,
                                    client_key=_key(sockdir, "other"))
    for _ in range(8):
        b.send(frame(b"\xff" * 6, mac(5), b"let me in"))
        time.sleep(0.5)
    assert s1.cmd("port/print").count("-- endpoint ID") == 1  # only plug a
    assert a.drain(0.5) == []
    assert srv.poll() is None


def test_our_server_survives_garbage_and_forgery(procs, sockdir, env):
    """Junk, truncated, replayed and forged datagrams are dropped; the cable goes on."""
    s1, s2, a, b, srv, cli = _cable(procs, sockdir, env, "ours", "ours")
    f = frame(b"\xff" * 6, mac(6), b"first")
    deadline = time.monotonic() + 20
    while True:
        b.send(f)
        if a.recv_matching(lambda g: g[6:12] == f[6:12], timeout=1) or time.monotonic() > deadline:
            break
    sport = int(srv.args[srv.args.index("-p") + 1])
    junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for data in (b"", b"\x20", b"\x20" + os.urandom(7), b"\x20" + os.urandom(64), b"\x44" * 500,
                 b"\x41" + b"../../etc/passwd".ljust(16, b"\0"), os.urandom(1999)):
        junk.sendto(data, ("127.0.0.1", sport))
    junk.close()
    time.sleep(0.5)
    assert a.drain(0.3) == []                               # nothing forged got through
    g = frame(b"\xff" * 6, mac(7), b"still here")
    b.send(g)
    assert a.recv_matching(lambda x: x[6:12] == g[6:12], timeout=5) == g
    assert srv.poll() is None


@pytest.mark.parametrize("argv", [
    ["-c", "a@b@c"], ["-c", "h:1:2"], ["-c", "h:1@u"], ["extra"], ["-k"], ["-h"], ["-q"],
    ["--bogus"], ["-p"],
])
def test_bad_command_lines_as_the_c_one(argv):
    results = []
    for tool in (C_CAB, OUR_CAB):
        p = subprocess.run([require(tool)] + argv, capture_output=True, text=True, timeout=30)
        results.append((p.returncode, p.stderr.replace(tool, "PROG")))
    assert results[1] == results[0]
    assert results[1][0] == 1 and "Usage: PROG [-s socketname]" in results[1][1]


def test_missing_preshared_key_as_the_c_one(sockdir):
    missing = os.path.join(sockdir, "nokey")
    for extra in ([], ["-c", "127.0.0.1:9"]):
        results = []
        for tool in (C_CAB, OUR_CAB):
            p = subprocess.run([require(tool), "-P", missing, "-p", "0"] + extra,
                               capture_output=True, text=True, timeout=30)
            results.append((p.returncode, p.stderr))
        assert results[1] == results[0] and results[1][0] == 1


SSHD, KEYGEN = "/usr/sbin/sshd", "/usr/bin/ssh-keygen"


def _sshd_on_loopback(procs, ns, d):
    """An sshd on 127.0.0.1:2222 inside ``ns``; the ssh config file scp needs."""
    from ifaces import in_ns
    hostkey, userkey = os.path.join(d, "host"), os.path.join(d, "user")
    for k in (hostkey, userkey):
        subprocess.run([require(KEYGEN), "-q", "-t", "ed25519", "-N", "", "-f", k], check=True)
    auth = os.path.join(d, "authorized_keys")
    with open(userkey + ".pub") as src, open(auth, "w") as dst:
        dst.write(src.read())
    os.chmod(auth, 0o600)
    os.makedirs("/run/sshd", exist_ok=True)
    sshd = procs.start(in_ns(ns, [
        require(SSHD), "-D", "-e", "-f", "/dev/null", "-o", "HostKey=" + hostkey,
        "-o", "ListenAddress=127.0.0.1:2222", "-o", "AuthorizedKeysFile=" + auth,
        "-o", "PidFile=none", "-o", "PermitRootLogin=yes", "-o", "StrictModes=no",
        "-o", "UsePAM=no", "-o", "PasswordAuthentication=no",
        "-o", "Subsystem=sftp internal-sftp"]))              # what scp uses today
    wait_for(lambda: ":2222" in subprocess.run(in_ns(ns, ["ss", "-ltn"]), capture_output=True,
                                               text=True).stdout or sshd.poll() is not None,
             what="sshd to listen")
    assert sshd.poll() is None, sshd.stderr.read().decode()
    config = os.path.join(d, "ssh_config")
    with open(config, "w") as f:
        f.write("Host 127.0.0.1\n  Port 2222\n  User root\n  IdentityFile %s\n"
                "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n"
                "  LogLevel ERROR\n" % userkey)
    return config


@pytest.mark.parametrize("server,client", [("c", "ours"), ("ours", "c")])
def test_key_sent_with_scp_as_2_3_2_does(procs, sockdir, env, namespaces, server, client):
    """The default mode: the client makes a key, copies it with scp to the
    server's /tmp/.ID.key (SCP_EXTRA_OPTIONS passes scp an ssh config),
    and the server reads it when the client logs in.  All on the loopback
    of a namespace made for the test, with an sshd of its own."""
    from ifaces import in_ns
    ns = namespaces.new("cc")
    config = _sshd_on_loopback(procs, ns, sockdir)
    env = dict(env, SCP_EXTRA_OPTIONS="-F" + config)
    s1 = Switch(procs, C_TOOLS["vde_switch"], os.path.join(sockdir, "s1"))
    s2 = Switch(procs, C_TOOLS["vde_switch"], os.path.join(sockdir, "s2"))
    a = StreamPlug(procs, C_TOOLS["vde_plug"], s1.dir)
    b = StreamPlug(procs, C_TOOLS["vde_plug"], s2.dir)
    before = set(os.listdir("/tmp"))
    srv = procs.start(in_ns(ns, [require(TOOLS[server]), "-s", s1.dir, "-p", "7667"]), env=env)
    wait_for(lambda: "7667" in subprocess.run(in_ns(ns, ["ss", "-lun"]), capture_output=True,
                                              text=True).stdout, what="server socket")
    cli = procs.start(in_ns(ns, [require(TOOLS[client]), "-s", s2.dir, "-p", "7668",
                                 "-c", "127.0.0.1:7667"]), env=env)
    f = frame(b"\xff" * 6, mac(8), b"keyed by scp")
    deadline = time.monotonic() + 30
    got = None
    while got is None and time.monotonic() < deadline:
        b.send(f)
        got = a.recv_matching(lambda g: g[6:12] == f[6:12], timeout=1)
    assert got is not None, cli.stderr.read1(2000) if cli.poll() is not None else "no frame"
    _unwrap(got, server, f)
    g = frame(mac(8), mac(9), b"and back")
    a.send(g)
    _unwrap(b.recv_matching(lambda x: x[6:12] == g[6:12], timeout=5), client, g)
    sent = [n for n in set(os.listdir("/tmp")) - before if n.startswith(".vde_")]
    assert len(sent) == 1 and sent[0].endswith(".key")         # the copy scp made
    assert os.path.getsize(os.path.join("/tmp", sent[0])) == 24
    srv.terminate()
    srv.wait(timeout=10)
    cli.terminate()
    cli.wait(timeout=10)
    # the server removes the keys it was sent; 2.3.2's client leaves its own copy
    assert not os.path.exists(os.path.join("/tmp", sent[0]))
    mine = [n for n in set(os.listdir("/tmp")) - before if n.startswith("vde_") and
            n.endswith(".key")]
    for n in mine:
        os.unlink(os.path.join("/tmp", n))
    assert mine == ([] if client == "ours" else [sent[0][1:]])
