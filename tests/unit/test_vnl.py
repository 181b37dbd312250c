"""VNL parsing (vde_ipn.wire.vnl) and resolution (vde_ipn.io.plugs.vnl_resolve).

The ``real`` tests run Debian's vde_plug (vdeplug4 4.0.1) against a tiny
listener on ``DIR/ctl``, read the request it sends and compare it with what
our parser predicts; they fail when vde_plug is missing.
"""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vde_ipn.io.plugs.vnl_resolve import (
    default_switch_dirs, resolve, vde_description)
from vde_ipn.wire.vnl import (
    UnknownKeyError, VdeAddress, VnlError, parse_head_options, parse_options,
    parse_path_options, parse_vde, split_scheme, unquote)


def vde(vnl):
    scheme, arg = split_scheme(vnl)
    assert scheme == "vde"
    return parse_vde(arg)


def addr(path, port=None, portgroup=None, group=None, mode=None):
    return VdeAddress(path=path, port=port, portgroup=portgroup,
                      group=group, mode=mode)


# ---------------------------------------------------------------- tables

@pytest.mark.parametrize("vnl, expected", [
    ("/tmp/sw", addr("/tmp/sw")),
    ("vde:///tmp/sw", addr("/tmp/sw")),
    ("vde:///tmp/sw[]", addr("/tmp/sw")),
    ("vde:///tmp/sw[7]", addr("/tmp/sw", port=7)),
    ("vde:///tmp/sw[port=8]", addr("/tmp/sw", port=8)),
    ("vde:///tmp/sw[mode=666/group=nogroup]",
     addr("/tmp/sw", group="nogroup", mode=0o666)),
    ("/tmp/sw[0]", addr("/tmp/sw", port=0)),
    ("vde://sw[3]", addr("sw", port=3)),
    ("vde://", addr("")),
    ("", addr("")),
    ("[5]", addr("", port=5)),
    # tags by prefix; port, portgroup and bare values share one setting
    ("/s[po=9]", addr("/s", port=9)),
    ("/s[p=9]", addr("/s", port=9)),
    ("/s[portgroup=12]", addr("/s", port=12)),
    ("/s[port=blue]", addr("/s", portgroup="blue")),
    ("/s[blue]", addr("/s", portgroup="blue")),
    ("/s[3/5]", addr("/s", port=5)),
    ("/s[port=3/portgroup=x]", addr("/s", portgroup="x")),
    ("/s[g=wheel/m=0640]", addr("/s", group="wheel", mode=0o640)),
    ("/s[gr=7/mo=7]", addr("/s", group="7", mode=0o7)),
    # bare items that prefix a tag are that tag with an empty value
    ("/s[p]", addr("/s")),
    ("/s[port]", addr("/s")),
    ("/s[g]", addr("/s", group="")),
    ("/s[m]", addr("/s", mode=0)),
    ("/s[port=]", addr("/s")),
    ("/s[007]", addr("/s", port=7)),
    ("/s[7x]", addr("/s", portgroup="7x")),
    ("/s[+7]", addr("/s", portgroup="+7")),
    ("/s[mode=9]", addr("/s", mode=0)),
    ("/s[mode=75x]", addr("/s", mode=0o75)),
    ("/s[mode= -1]", addr("/s", mode=0xFFFFFFFF)),
    # empty items and tags are skipped
    ("/s[/7//=x/]", addr("/s", port=7)),
    # PATH ends at the first '[', PARAMS at the last ']'
    ("/s[7]junk", addr("/s", port=7)),
    ("/s[7", addr("/s", port=7)),
    ("/s[[7]]", addr("/s", portgroup="[7]")),
    ("/s[a]b]", addr("/s", portgroup="a]b")),
    # huge numbers wrap like the C int and the 24-bit port field
    ("/s[16777215]", addr("/s", port=16777215)),
    ("/s[16777216]", addr("/s")),
    ("/s[16777217]", addr("/s", port=1)),
    ("/s[2147483648]", addr("/s", port=0)),
    ("/s[4294967296]", addr("/s", port=0)),
    ("/s[4294967303]", addr("/s", port=7)),
    ("/s[99999999999999999999999]", addr("/s", port=0)),
    # quoting and %XX
    ("/tmp/%73w", addr("/tmp/sw")),
    ("/tmp/'sw'[\"7\"]", addr("/tmp/sw", port=7)),
    ("'/tmp/a[b]'[4]", addr("/tmp/a[b]", port=4)),
    ("/tmp/a\\[b[4]", addr("/tmp/a[b", port=4)),
    ("/tmp/a%5Bb[4]", addr("/tmp/a[b", port=4)),
    ("/s['3]']", addr("/s", portgroup="3]")),
    ("/s[\\]]", addr("/s", portgroup="]")),
    ("/s[%5D]", addr("/s", portgroup="]")),
    ("/s[1'2'/g=a\\/b]", addr("/s", port=12, group="a/b")),
    ("/s['port=4']", addr("/s", port=4)),
    ("/s[%37]", addr("/s", port=7)),
    ("/s%00junk[3]", addr("/s", port=3)),
    ("/s[3%00x]", addr("/s", port=3)),
    ("/caf%C3%A9", addr("/caf\u00e9")),
])
def test_parse_vde_table(vnl, expected):
    assert vde(vnl) == expected


@pytest.mark.parametrize("arg, key", [
    ("/tmp/sw[foo=1]", "foo"),
    ("/tmp/sw[7/x=1]", "x"),
    ("/tmp/sw[ports=1]", "ports"),
    ("/tmp/sw[portgroups=1]", "portgroups"),
    ("/tmp/sw[groupx=]", "groupx"),
    ("/tmp/sw[o=1]", "o"),
])
def test_unknown_key(arg, key):
    with pytest.raises(UnknownKeyError) as info:
        parse_vde(arg)
    assert str(info.value) == "unknown key: " + key
    assert info.value.key == key
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("text, expected", [
    ("/tmp/%73w", "/tmp/sw"),
    ("%2f%2F", "//"),
    ("%4", "%4"),
    ("%", "%"),
    ("%zz", "%zz"),
    ("%4g", "%4g"),
    ("%%41", "%A"),
    ("%4%41", "%4A"),
    ("%'41'", "%41"),
    ("%4'1'", "%41"),
    ("'%41'", "%41"),
    ("\"%41\"", "%41"),
    ("\\%41", "%41"),
    ("a\\", "a"),
    ("\\\\", "\\"),
    ("'a\\b'", "a\\b"),
    ("\"it's\"", "it's"),
    ("'say \"hi\"'", "say \"hi\""),
    ("'unterminated", "unterminated"),
    ("a%00b", "a"),
    ("a\0b", "a"),
    ("%FF", "\udcff"),
    ("[/]", "[/]"),
])
def test_unquote(text, expected):
    assert unquote(text) == expected


@pytest.mark.parametrize("vnl, expected", [
    ("/tmp/sw", ("vde", "/tmp/sw")),
    ("vde:///tmp/sw[3]", ("vde", "/tmp/sw[3]")),
    ("vde://", ("vde", "")),
    ("vxvde://239.0.0.1/port=1", ("vxvde", "239.0.0.1/port=1")),
    ("cmd://'ssh h vde_plug'", ("cmd", "'ssh h vde_plug'")),
    ("hub:///tmp/h[mode=666]", ("hub", "/tmp/h[mode=666]")),
    ("a://b://c", ("a", "b://c")),
    ("://x", ("", "x")),
    ("'vde://'x", ("'vde", "'x")),
])
def test_split_scheme(vnl, expected):
    assert split_scheme(vnl) == expected


VX = ["port", "vni", "grp", "ttl", "rcvbuf", "v6", "v4", "hashsize",
      "expiretime", "if", "bind"]
NODE = ["mode", "dirmode", "grp", "hashsize", "hashseed", "expiretime"]


def test_parse_options():
    assert parse_options("port=1/v6/ttl=4", VX) == {
        "port": "1", "v6": "", "ttl": "4"}
    assert parse_options("v=3", VX) == {"vni": "3"}  # first match wins
    assert parse_options("h=9/e=5", VX) == {"hashsize": "9", "expiretime": "5"}
    assert parse_options("", VX) == {}
    assert parse_options("x/7", ["port"], untagged="port") == {"port": "7"}
    with pytest.raises(UnknownKeyError):
        parse_options("port=1/zap", VX)
    assert parse_options("if='a/b'", VX) == {"if": "a/b"}
    assert parse_options("d=1/p=2", {"dst": "to", "port": "to"}) == {"to": "2"}


def test_parse_head_options():
    assert parse_head_options("239.0.0.1/port=1/vni=2", VX) == (
        "239.0.0.1", {"port": "1", "vni": "2"})
    assert parse_head_options("", VX) == ("", {})
    assert parse_head_options("/v4", VX) == ("", {"v4": ""})
    assert parse_head_options("'ff05::1'/v6", VX) == ("ff05::1", {"v6": ""})
    with pytest.raises(UnknownKeyError) as info:
        parse_head_options("x/nope", VX)
    assert str(info.value) == "unknown key: nope"


def test_parse_path_options():
    assert parse_path_options("/tmp/h[mode=666/grp=kvm]", NODE) == (
        "/tmp/h", {"mode": "666", "grp": "kvm"})
    assert parse_path_options("", NODE) == ("", {})
    assert parse_path_options("[d=2770]", NODE) == ("", {"dirmode": "2770"})
    with pytest.raises(UnknownKeyError):
        parse_path_options("/tmp/h[7]", NODE)  # no untagged key here


# --------------------------------------------------------------- properties

SPECIAL = "[]/'\"\\%=0123456789abcdefABpgmorty.\0\u00e9 "


@given(st.one_of(st.text(), st.text(alphabet=SPECIAL)))
@settings(max_examples=400)
def test_any_text_parses_or_raises_vnl_error(text):
    for fn in (parse_vde, unquote, split_scheme,
               lambda t: parse_options(t, VX),
               lambda t: parse_head_options(t, VX),
               lambda t: parse_path_options(t, NODE)):
        try:
            fn(text)
        except VnlError:
            pass
    result = parse_vde(text) if "[" not in text else None
    if result is not None:
        assert result.port is None and result.mode is None


@given(st.text(alphabet=SPECIAL), st.integers(min_value=1,
                                              max_value=(1 << 24) - 1))
def test_single_quoted_path_roundtrip(path, port):
    path = path.replace("'", "").replace("\0", "")
    assert parse_vde("'%s'[%d]" % (path, port)) == addr(path, port=port)


@given(st.text())
def test_percent_and_backslash_roundtrip(text):
    text = text.replace("\0", "")
    data = text.encode("utf-8", "surrogateescape")
    assert unquote("".join("%%%02X" % b for b in data)) == text
    assert unquote("".join("%%%02x" % b for b in data)) == text
    assert unquote("".join("\\" + c for c in text)) == text


def test_unencodable_text_is_a_vnl_error():
    with pytest.raises(VnlError):
        parse_vde("/tmp/\ud800")


# --------------------------------------------------------------- resolve()

@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def test_resolve_plain_and_scheme(home):
    env = {"HOME": str(home)}
    assert resolve("/nonexistent/sw[3]", environ=env) == (
        "vde", "/nonexistent/sw[3]")
    assert resolve("vxvde://239.0.0.1", environ=env) == ("vxvde", "239.0.0.1")
    assert resolve("vde://", environ=env) == ("vde", "")


def test_resolve_empty_without_defaults(home):
    assert resolve(None, environ={"HOME": str(home)}) == ("vde", "")
    assert resolve("", environ={}) == ("vde", "")
    assert default_switch_dirs() == ("/var/run/vde.ctl", "/tmp/vde.ctl")


def test_resolve_default_symlink_to_switch_dir(home, tmp_path):
    (tmp_path / "sw").mkdir()
    (home / ".vdeplug").mkdir()
    link = home / ".vdeplug" / "default"
    link.symlink_to(tmp_path / "sw")
    assert resolve(None, environ={"HOME": str(home)}) == ("vde", str(link))


def test_resolve_default_dangling_symlink_still_wins(home):
    (home / ".vdeplug").mkdir()
    link = home / ".vdeplug" / "default"
    link.symlink_to(home / "missing")
    (home / ".vde2").mkdir()
    (home / ".vde2" / "default.switch").write_text("vde:///other\n")
    assert resolve("", environ={"HOME": str(home)}) == ("vde", str(link))


def test_resolve_old_default_indirection_file(home):
    (home / ".vde2").mkdir()
    (home / ".vde2" / "default.switch").write_text("tap://tap0\nignored\n")
    assert resolve("", environ={"HOME": str(home)}) == ("tap", "tap0")


def test_resolve_default_file_new_wins(home):
    for d, text in ((".vdeplug", "default"), (".vde2", "default.switch")):
        (home / d).mkdir()
        (home / d / text).write_text("/sw/%s\n" % d)
    assert resolve("", environ={"HOME": str(home)}) == ("vde", "/sw/.vdeplug")


@pytest.mark.parametrize("content, expected", [
    ("/tmp/sw[5]\n", ("vde", "/tmp/sw[5]")),
    ("/tmp/sw[57", ("vde", "/tmp/sw[5")),       # last char dropped anyway
    ("vde:///x\r\n", ("vde", "/x\r")),
    ("hub:///h\nsecond\n", ("hub", "/h")),
    ("\n", ("vde", "")),
    ("/a\0b\n", ("vde", "/")),                   # line ends at NUL: "/a" - 1
])
def test_resolve_indirection_file(tmp_path, content, expected):
    f = tmp_path / "net"
    f.write_bytes(content.encode())
    assert resolve(str(f), environ={}) == expected


def test_resolve_indirection_is_not_recursive(tmp_path):
    inner = tmp_path / "inner"
    inner.write_text("vde:///deep\n")
    outer = tmp_path / "outer"
    outer.write_text(str(inner) + "\n")
    assert resolve(str(outer), environ={}) == ("vde", str(inner))


def test_resolve_empty_file_and_scheme_files_kept(tmp_path):
    f = tmp_path / "empty"
    f.write_bytes(b"")
    assert resolve(str(f), environ={}) == ("vde", str(f))
    g = tmp_path / "with"
    g.write_text("x\n")
    # a VNL with "://" is never looked up, a bracketed one is not the file
    assert resolve("vde://" + str(g), environ={}) == ("vde", str(g))
    assert resolve(str(g) + "[3]", environ={}) == ("vde", str(g) + "[3]")


def test_resolve_long_line_is_cut(tmp_path):
    f = tmp_path / "long"
    f.write_text("/" + "a" * 5000 + "\n")
    scheme, arg = resolve(str(f), environ={})
    assert arg == "/" + "a" * 4093


def test_vde_description():
    text = vde_description("vdeplug:", environ={}, euid=0, pid=42)
    assert text == "vdeplug: user=root pid=42"
    assert vde_description("d", environ={"SSH_CLIENT": "10.0.0.1 5000 22"},
                           euid=0, pid=1) == "d user=root pid=1 SSH=10.0.0.1"
    assert vde_description("d", environ={"SSH_CLIENT": ""}, euid=0,
                           pid=1).endswith(" SSH=")
    assert vde_description("", environ={}, euid=0, pid=1) == " user=root pid=1"
    assert vde_description(None, environ={}, euid=0,
                           pid=1).startswith("(null) user=")
    assert "user=4000001 " in vde_description("d", environ={},
                                               euid=4000001, pid=1)
    long = vde_description("x" * 200, environ={}, euid=0, pid=1)
    assert long == "x" * 127
    assert len(vde_description("\u00e9" * 100, environ={}, euid=0,
                               pid=1).encode("utf-8", "surrogateescape")) == 127


# ------------------------------------------------- against the real vde_plug

def real_vde_plug():
    path = "/usr/bin/vde_plug"
    if not os.path.exists(path):
        path = shutil.which("vde_plug") or ""
    assert path, "Debian's vde_plug (package vdeplug) is required"
    with open(path, "rb") as f:
        assert f.read(4) == b"\x7fELF", "%s is not vdeplug4's binary" % path
    return path


@pytest.fixture(scope="module")
def vde_plug():
    return real_vde_plug()


@pytest.fixture(scope="module")
def switch_dir():
    d = tempfile.mkdtemp(prefix="vnl", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Capture:
    def __init__(self, request, rc, stderr, sock_mode=None, sock_gid=None):
        self.request, self.rc, self.stderr = request, rc, stderr
        self.sock_mode, self.sock_gid = sock_mode, sock_gid

    @property
    def type(self):
        return struct.unpack_from("<I", self.request, 8)[0]

    @property
    def description(self):
        return self.request[122:].decode("utf-8", "surrogateescape")

    @property
    def sock_path(self):
        return self.request[14:122].split(b"\0", 1)[0].decode()


def capture(vde_plug, ctl_dir, args, env=None, timeout=5.0):
    """Run the real vde_plug with ``args``; return what it sent to ctl_dir."""
    ctl = os.path.join(ctl_dir, "ctl")
    if os.path.lexists(ctl):
        os.unlink(ctl)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    proc = None
    try:
        srv.bind(ctl)
        srv.listen(1)
        srv.settimeout(0.05)
        proc = subprocess.Popen([vde_plug] + list(args), env=env,
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn, _ = srv.accept()
                break
            except socket.timeout:
                if proc.poll() is not None:
                    return Capture(None, proc.returncode,
                                   proc.stderr.read().decode("utf-8", "replace")), proc.pid
                assert time.monotonic() < deadline, "vde_plug never connected"
        with conn:
            conn.settimeout(timeout)
            data = conn.recv(512)
            while len(data) < 122:
                more = conn.recv(512)
                assert more, "short request"
                data += more
            cap = Capture(data, None, "")
            st_ = os.stat(cap.sock_path)
            cap.sock_mode, cap.sock_gid = st_.st_mode & 0o7777, st_.st_gid
        return cap, proc.pid
    finally:
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stderr.close()
        srv.close()


def expected_type(address):
    if address.port is None:
        return 0
    return 1 if address.port == 0 else address.port << 8


def real_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "SSH_CLIENT"}
    env.update(extra)
    return env


REAL_CASES = [
    "{D}", "vde://{D}", "{D}[]", "vde://{D}[7]", "vde://{D}[port=8]",
    "{D}[0]", "{D}[p=9]", "{D}[po=9]", "{D}[portgroup=12]", "{D}[007]",
    "{D}[3/5]", "{D}[port=3/portgroup=5]", "{D}[p]", "{D}[blue]",
    "{D}[7]junk", "{D}[7", "{D}[1'2']", "'{D}'[\"7\"]", "{D}[%37]",
    "{D}[\\31\\31]", "{D}['3]']", "{D}[16777217]", "{D}[16777216]",
    "{D}[2147483648]", "{D}[4294967296]", "{D}[4294967303]",
    "{D}%00junk[6]", "{D}[mode=666/4]",
]


@pytest.mark.real
@pytest.mark.parametrize("template", REAL_CASES)
def test_real_vde_plug_requests_the_parsed_port(vde_plug, switch_dir,
                                                template):
    vnl = template.replace("{D}", switch_dir)
    address = vde(vnl)
    cap, pid = capture(vde_plug, switch_dir, ["--", vnl], env=real_env())
    assert cap.request is not None, cap.stderr
    assert cap.type == expected_type(address)
    assert cap.sock_path.startswith(os.path.realpath(switch_dir) + "/.")
    assert cap.description == vde_description(
        "vdeplug:", environ={}, pid=pid)


@pytest.mark.real
def test_real_vde_plug_percent_encoded_path(vde_plug, switch_dir):
    encoded = switch_dir[:-1] + "%%%02X" % ord(switch_dir[-1])
    assert vde(encoded + "[4]") == addr(switch_dir, port=4)
    cap, _ = capture(vde_plug, switch_dir, [encoded + "[4]"], env=real_env())
    assert cap.type == 4 << 8


@pytest.mark.real
@pytest.mark.parametrize("params, mode", [
    ("mode=666", 0o666), ("m=0640", 0o640), ("mo=75x", 0o75),
    ("mode=9", 0), ("m", 0),
])
def test_real_vde_plug_mode(vde_plug, switch_dir, params, mode):
    vnl = "%s[%s]" % (switch_dir, params)
    assert vde(vnl).mode == mode
    cap, _ = capture(vde_plug, switch_dir, [vnl], env=real_env())
    assert cap.sock_mode == mode


@pytest.mark.real
def test_real_vde_plug_group(vde_plug, switch_dir):
    gid = os.getegid()
    vnl = "%s[g=%d/mode=660]" % (switch_dir, gid)
    assert vde(vnl) == addr(switch_dir, group=str(gid), mode=0o660)
    cap, _ = capture(vde_plug, switch_dir, [vnl], env=real_env())
    assert (cap.sock_gid, cap.sock_mode) == (gid, 0o660)


@pytest.mark.real
@pytest.mark.parametrize("params, key", [("foo=1", "foo"), ("7/ports=1",
                                                            "ports")])
def test_real_vde_plug_unknown_key(vde_plug, switch_dir, params, key):
    vnl = "%s[%s]" % (switch_dir, params)
    with pytest.raises(UnknownKeyError):
        vde(vnl)
    cap, _ = capture(vde_plug, switch_dir, [vnl], env=real_env())
    assert cap.request is None and cap.rc != 0
    assert "key: %s" % key in cap.stderr


@pytest.mark.real
def test_real_vde_plug_description(vde_plug, switch_dir):
    env = real_env(SSH_CLIENT="192.0.2.7 40000 22")
    cap, pid = capture(vde_plug, switch_dir, ["-D", "d" * 110, switch_dir],
                       env=env)
    assert cap.description == vde_description("d" * 110, environ=env, pid=pid)
    assert len(cap.description) == 127


@pytest.mark.real
@pytest.mark.parametrize("content", ["{D}[5]\n", "{D}[57", "vde://{D}[5]x"])
def test_real_vde_plug_indirection_file(vde_plug, switch_dir, tmp_path,
                                        content):
    f = tmp_path / "net"
    f.write_text(content.replace("{D}", switch_dir))
    scheme, arg = resolve(str(f), environ={})
    assert scheme == "vde" and parse_vde(arg) == addr(switch_dir, port=5)
    cap, _ = capture(vde_plug, switch_dir, [str(f)], env=real_env())
    assert cap.type == 5 << 8


@pytest.mark.real
@pytest.mark.parametrize("layout", ["symlink", "file", "old-file"])
def test_real_vde_plug_default_switch(vde_plug, switch_dir, tmp_path, layout):
    home = tmp_path / "home"
    (home / ".vdeplug").mkdir(parents=True)
    (home / ".vde2").mkdir()
    if layout == "symlink":
        (home / ".vdeplug" / "default").symlink_to(switch_dir)
        port = None
    elif layout == "file":
        (home / ".vdeplug" / "default").write_text(
            "vde://%s[4]\n" % switch_dir)
        port = 4
    else:
        (home / ".vde2" / "default.switch").write_text("%s[6]\n" % switch_dir)
        port = 6
    env = {"HOME": str(home)}
    scheme, arg = resolve(None, environ=env)
    assert scheme == "vde" and parse_vde(arg).port == port
    cap, _ = capture(vde_plug, switch_dir, [], env=real_env(HOME=str(home)))
    assert cap.type == expected_type(parse_vde(arg))
    cap, _ = capture(vde_plug, switch_dir, [""], env=real_env(HOME=str(home)))
    assert cap.type == expected_type(parse_vde(arg))


BRACKET = "0123456789/'\"\\%=]p[orgtAb"


@pytest.mark.real
@given(st.text(alphabet=BRACKET, max_size=12))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_real_vde_plug_differential(vde_plug, switch_dir, params):
    vnl = "%s[%s" % (switch_dir, params)
    try:
        address = vde(vnl)
    except UnknownKeyError:
        address = None
    if address is not None and address.group is not None:
        return  # group names would make vde_plug chown its socket
    cap, _ = capture(vde_plug, switch_dir, ["--", vnl], env=real_env())
    if address is None:
        assert cap.request is None and "key:" in cap.stderr
    else:
        assert cap.request is not None, cap.stderr
        assert cap.type == expected_type(address)
        if address.mode is not None:
            assert cap.sock_mode == address.mode & 0o7777
