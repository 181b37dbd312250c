"""vde_ipn.cli._getopt against the real C library.

``getopt_harness.c`` is compiled with ``cc`` at test time and every case is
run through both the C library and the emulation; options, operands (after
permutation) and stderr must be identical.  A missing compiler is a test
failure, not a skip: without it nothing here would be verified.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vde_ipn.cli._getopt import (
    NONOPT_KEY, NO_ARG, OPTIONAL_ARG, REQUIRED_ARG, GetoptResult, LongOpt,
    getopt_long, getopt_long_only,
)

HARNESS_SRC = Path(__file__).with_name("getopt_harness.c")


def L(name: str, has_arg: int, key: Optional[str] = None) -> LongOpt:
    return LongOpt(name, has_arg, name if key is None else key)


# vde_switch 2.3.2 (getopt_long_only), from the spec's option table.
SWITCH_SHORT = "hvn:xFs:m:g:dp:f:M:D:t:"
SWITCH_LONG = (
    L("help", 0, "h"), L("version", 0, "v"), L("numports", 1, "n"),
    L("hub", 0, "x"), L("fstp", 0, "F"), L("macaddr", 1), L("priority", 1),
    L("hashsize", 1), L("sock", 1, "s"), L("vdesock", 1, "s"),
    L("unix", 1, "s"), L("mod", 1, "m"), L("mode", 1, "m"), L("dirmode", 1),
    L("group", 1, "g"), L("daemon", 0, "d"), L("pidfile", 1, "p"),
    L("rcfile", 1, "f"), L("mgmt", 1, "M"), L("mgmtmode", 1),
    L("mgmtgroup", 1), L("debugclients", 1, "D"), L("tap", 1, "t"),
)
# vde_plug 4.0.1 (getopt_long).
PLUG_SHORT = "c:p:dlLg:G:m:M:D:h"
PLUG_LONG = (
    L("daemon", 0, "d"), L("pidfile", 1, "p"), L("log", 0, "l"),
    L("iplog", 0, "L"), L("group", 1, "g"), L("group2", 1, "G"),
    L("mod", 1, "m"), L("mod2", 1, "M"), L("port", 1), L("port2", 1),
    L("descr", 1, "D"), L("help", 0, "h"),
)
# dpipe (getopt_long, stops at the first operand).
DPIPE_SHORT = "+dp:P:nNh"
DPIPE_LONG = (
    L("daemon", 0, "d"), L("pidfile", 1, "p"), L("pgrpfile", 1, "P"),
    L("nowrapproc", 0, "n"), L("nowrapnoclean", 0, "N"), L("help", 0, "h"),
)
TABLES = {
    "switch": (SWITCH_SHORT, SWITCH_LONG, True),
    "plug": (PLUG_SHORT, PLUG_LONG, False),
    "dpipe": (DPIPE_SHORT, DPIPE_LONG, False),
    # the switch table under getopt_long, to show the synonym rule
    "switch_long": (SWITCH_SHORT, SWITCH_LONG, False),
}
PROGS = {"switch": "vde_switch", "plug": "vde_plug", "dpipe": "dpipe",
         "switch_long": "vde_switch"}


@pytest.fixture(scope="session")
def harness() -> Path:
    from support import compiled
    return Path(compiled(str(HARNESS_SRC), "-O0"))


Opts = List[Tuple[str, Optional[str]]]


def run_c(harness: Path, argv: Sequence[str], shortopts: str,
          longopts: Sequence[LongOpt], long_only: bool,
          posix: bool = False) -> Tuple[Opts, List[str], str]:
    """Parse with the C library; returns (opts, operands, stderr)."""
    keys: List[str] = []
    for o in longopts:
        if len(o.key) != 1 and o.key not in keys:
            keys.append(o.key)

    def val(key: str) -> int:
        return ord(key) if len(key) == 1 else 256 + keys.index(key)

    def key(v: int) -> str:
        return chr(v) if v < 256 else keys[v - 256]

    cmd = [str(harness), "only" if long_only else "long", shortopts,
           str(len(longopts))]
    for o in longopts:
        cmd += [o.name, str(o.has_arg), str(val(o.key))]
    cmd += list(argv)
    env = {"LC_ALL": "C"}
    if posix:
        env["POSIXLY_CORRECT"] = "1"
    proc = subprocess.run(cmd, capture_output=True, env=env, check=True)
    opts: Opts = []
    args: List[str] = []
    optind = None
    for line in proc.stdout.decode().split("\n")[:-1]:
        fields = line.split("\t")
        if fields[0] == "R":
            opts.append((key(int(fields[1])), fields[3] if fields[2] == "+" else None))
        elif fields[0] == "I":
            optind = int(fields[1])
        else:
            args.append("\t".join(fields[1:]))
    assert optind is not None, proc.stdout
    return opts, args[optind:], proc.stderr.decode()


def check(harness: Path, argv: Sequence[str], shortopts: str,
          longopts: Sequence[LongOpt], long_only: bool,
          posix: bool = False) -> GetoptResult:
    env = {"POSIXLY_CORRECT": "1"} if posix else {}
    res = getopt_long(list(argv), shortopts, longopts, long_only=long_only, env=env)
    c_opts, c_operands, c_stderr = run_c(harness, argv, shortopts, longopts,
                                         long_only, posix)
    # C leaves optarg NULL on errors; our value there is the offending text.
    ours = [(k, None if k in "?:" and len(k) == 1 else v) for k, v in res.opts]
    assert ours == c_opts, (argv, res)
    assert res.operands == c_operands, (argv, res)
    assert "".join(e + "\n" for e in res.errors) == c_stderr, (argv, res)
    return res


# --- hand-written cases -----------------------------------------------------

SW = "vde_switch"
CASES = [
    # (table, argv after argv[0], expected opts, expected operands, expected stderr lines)
    ("switch", ["-nostdin"], [("n", "ostdin")], [], []),
    ("switch", ["-sock", "/tmp/x"], [("s", "/tmp/x")], [], []),
    ("switch", ["--sock=/tmp/x"], [("s", "/tmp/x")], [], []),
    ("switch", ["-so", "/tmp/x"], [("s", "/tmp/x")], [], []),
    ("switch", ["-s/tmp/x"], [("s", "/tmp/x")], [], []),
    ("switch", ["-x", "-F"], [("x", None), ("F", None)], [], []),
    ("switch", ["-xF"], [("x", None), ("F", None)], [], []),
    ("switch", ["-numports", "8", "-hub"], [("n", "8"), ("x", None)], [], []),
    ("switch", ["-num=8"], [("n", "8")], [], []),
    ("switch", ["--bogus"], [("?", "--bogus")], [],
     [f"{SW}: unrecognized option '--bogus'"]),
    ("switch", ["--bogus=3"], [("?", "--bogus=3")], [],
     [f"{SW}: unrecognized option '--bogus=3'"]),
    ("switch", ["-bogus"], [("?", "-bogus")], [],
     [f"{SW}: unrecognized option '-bogus'"]),
    ("switch", ["-n"], [("?", "n")], [],
     [f"{SW}: option requires an argument -- 'n'"]),
    ("switch", ["--sock"], [("?", "--sock")], [],
     [f"{SW}: option '--sock' requires an argument"]),
    ("switch", ["-sock"], [("?", "-sock")], [],
     [f"{SW}: option '-sock' requires an argument"]),
    ("switch", ["--hub=1"], [("?", "--hub")], [],
     [f"{SW}: option '--hub' doesn't allow an argument"]),
    ("switch", ["-hu=1"], [("?", "-hub")], [],
     [f"{SW}: option '-hub' doesn't allow an argument"]),
    ("switch", ["-m", "0666"], [("m", "0666")], [], []),
    # long_only: any two prefix matches clash, even synonyms.
    ("switch", ["-mo", "0666"], [("?", "-mo")], ["0666"],
     [f"{SW}: option '-mo' is ambiguous; possibilities: '-mod' '-mode'"]),
    ("switch", ["--m"], [("?", "--m")], [],
     [f"{SW}: option '--m' is ambiguous; possibilities: '--macaddr' '--mod' "
      "'--mode' '--mgmt' '--mgmtmode' '--mgmtgroup'"]),
    ("switch", ["-qx"], [("?", "-qx")], [],
     [f"{SW}: unrecognized option '-qx'"]),
    # long_only: a lone unknown letter is tried (and reported) as a long option.
    ("switch", ["-q"], [("?", "-q")], [], [f"{SW}: unrecognized option '-q'"]),
    ("plug", ["-q"], [("?", "q")], [], ["vde_plug: invalid option -- 'q'"]),
    ("switch", ["a", "-x", "b", "-s", "d", "c"], [("x", None), ("s", "d")],
     ["a", "b", "c"], []),
    ("switch", ["a", "--", "-x"], [], ["a", "-x"], []),
    ("switch", ["-x", "--", "-", "--"], [("x", None)], ["-", "--"], []),
    # an exact name wins over longer names it prefixes
    ("switch", ["-mgmt", "/m", "--mgmt=/n"], [("M", "/m"), ("M", "/n")], [], []),
    # getopt_long: synonyms (same has_arg and key) do not clash, and only
    # entries differing from the FIRST match are listed.
    ("switch_long", ["--mo", "7"], [("m", "7")], [], []),
    # ... but "--mode" is listed here: it differs from "--macaddr", the first match
    ("switch_long", ["--m"], [("?", "--m")], [],
     [f"{SW}: option '--m' is ambiguous; possibilities: '--macaddr' '--mod' "
      "'--mode' '--mgmt' '--mgmtmode' '--mgmtgroup'"]),
    ("switch_long", ["--mod", "1", "--mode=2", "--gro", "g"],
     [("m", "1"), ("m", "2"), ("g", "g")], [], []),
    ("plug", ["--mo", "7"], [("?", "--mo")], ["7"],
     ["vde_plug: option '--mo' is ambiguous; possibilities: '--mod' '--mod2'"]),
    ("plug", ["--gr=x"], [("?", "--gr=x")], [],
     ["vde_plug: option '--gr=x' is ambiguous; possibilities: '--group' '--group2'"]),
    ("plug", ["--port2", "3", "--descr=hi", "sw"], [("port2", "3"), ("D", "hi")],
     ["sw"], []),
    # getopt_long has no single-dash long options: "-daemon" is a cluster.
    ("plug", ["-daemon"], [("d", None), ("?", "a"), ("?", "e"), ("m", "on")], [],
     ["vde_plug: invalid option -- 'a'", "vde_plug: invalid option -- 'e'"]),
    ("dpipe", ["-d", "vde_plug", "-d", "=", "x"], [("d", None)],
     ["vde_plug", "-d", "=", "x"], []),
    ("dpipe", ["--nowrap"], [("?", "--nowrap")], [],
     ["dpipe: option '--nowrap' is ambiguous; possibilities: '--nowrapproc' '--nowrapnoclean'"]),
]


@pytest.mark.parametrize("table,args,opts,operands,stderr", CASES,
                         ids=[" ".join(c[1]) for c in CASES])
def test_known_cases(harness, table, args, opts, operands, stderr):
    shortopts, longopts, long_only = TABLES[table]
    res = check(harness, [PROGS[table]] + args, shortopts, longopts, long_only)
    assert res.opts == opts
    assert res.operands == operands
    assert res.errors == stderr


SYNTH_LONG = (L("alpha", 0, "a"), L("alps", 2), L("beta", 1, "b"),
              L("bet", 0), L("gamma", 2, "g"), L("ab", 1, "a"))
SYNTH_ARGVS = [
    ["p", "-a", "x", "-b", "-c::"], ["p", "-cval", "-c", "v"], ["p", "--alp"],
    ["p", "--alps=", "--alps", "z"], ["p", "-W", "alpha", "-Wbe=1", "-W"],
    ["p", "-W", "al"], ["p", "--gamma", "--gamma=q"], ["p", "-", "-b"],
    ["p", "x", "-", "--", "-a"], ["p", "--be", "v"], ["p", "-=", "--="],
    ["p", "-:"], ["p", "-;"], ["p", "--", "--"], ["p"], ["p", "-b"],
    ["p", "x", "y", "-a", "z", "-b", "1", "--", "-c"],
]


@pytest.mark.parametrize("shortopts", ["ab:c::W;", "+ab:c::W;", "-ab:c::W;",
                                       ":ab:c::W;", "-:ab:c::", "+-a", "--a", "a?"])
@pytest.mark.parametrize("long_only", [False, True])
@pytest.mark.parametrize("posix", [False, True])
def test_synthetic(harness, shortopts, long_only, posix):
    for argv in SYNTH_ARGVS:
        check(harness, argv, shortopts, SYNTH_LONG, long_only, posix)


def test_posixly_correct(harness):
    res = check(harness, [SW, "-x", "op", "-F"], SWITCH_SHORT, SWITCH_LONG, True,
                posix=True)
    assert res.opts == [("x", None)] and res.operands == ["op", "-F"]


def test_nonopt_key_and_quiet_mode(harness):
    res = check(harness, ["p", "x", "-a", "y", "-b"], "-:ab:", (), False)
    assert res.opts == [(NONOPT_KEY, "x"), ("a", None), (NONOPT_KEY, "y"), (":", "b")]
    assert res.errors == []
    # ':' mode: a missing argument gives ':', "doesn't allow" stays '?'.
    res = check(harness, ["p", "--alpha=1", "--beta"], ":", SYNTH_LONG, False)
    assert res.opts == [("?", "--alpha"), (":", "--beta")]
    assert res.errors == []


def test_empty_argv_and_alias():
    assert getopt_long([], "a") == GetoptResult([], [], [])
    assert getopt_long_only(["p", "-so", "d"], SWITCH_SHORT, SWITCH_LONG,
                            env={}).opts == [("s", "d")]


def test_env_default_and_input_untouched(monkeypatch):
    argv = ["p", "x", "-a"]
    monkeypatch.setenv("POSIXLY_CORRECT", "")
    assert getopt_long(argv, "a").operands == ["x", "-a"]
    monkeypatch.delenv("POSIXLY_CORRECT")
    assert getopt_long(argv, "a").operands == ["x"]
    assert argv == ["p", "x", "-a"]


def test_bad_has_arg():
    with pytest.raises(ValueError):
        LongOpt("x", 3, "x")


# --- property tests ----------------------------------------------------------

def _words_for(shortopts: str, longopts: Sequence[LongOpt]) -> st.SearchStrategy[str]:
    letters = sorted({c for c in shortopts if c.isalnum()} | {"q", "W"})
    names = [o.name for o in longopts] + ["bogus"]
    name = st.sampled_from(names).flatmap(
        lambda n: st.integers(1, len(n)).map(lambda k: n[:k]))
    dash_name = st.tuples(st.sampled_from(["-", "--"]), name,
                          st.sampled_from(["", "=", "=v", "=a=b"])).map("".join)
    cluster = st.lists(st.sampled_from(letters + [":", "-", "="]), min_size=1,
                       max_size=4).map(lambda cs: "-" + "".join(cs))
    plain = st.sampled_from(["x", "y z", "", "-", "--", "=", "-=", "--=", "/tmp/s"])
    return st.one_of(dash_name, cluster, plain)


@st.composite
def table_cases(draw):
    shortopts, longopts, long_only = TABLES[draw(st.sampled_from(sorted(TABLES)))]
    long_only = draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else long_only
    argv = draw(st.lists(_words_for(shortopts, longopts), max_size=7))
    return ["prog"] + argv, shortopts, longopts, long_only, draw(st.booleans())


@st.composite
def random_cases(draw):
    letters = draw(st.lists(st.sampled_from("abcdW?"), unique=True, max_size=5))
    shortopts = draw(st.sampled_from(["", "+", "-", ":", "+:", "-:"]))
    for c in letters:
        shortopts += c + draw(st.sampled_from(["", ":", "::", ";"] if c == "W"
                                              else ["", ":", "::"]))
    names = draw(st.lists(st.text("ab", min_size=1, max_size=3), unique=True,
                          max_size=5))
    longopts = [LongOpt(n, draw(st.integers(0, 2)),
                        draw(st.sampled_from(["a", "b", "long1", "long2"])))
                for n in names]
    argv = draw(st.lists(_words_for(shortopts, longopts), max_size=7))
    return ["prog"] + argv, shortopts, longopts, draw(st.booleans()), draw(st.booleans())


_SETTINGS = settings(max_examples=300, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(table_cases())
def test_property_real_tables(harness, case):
    check(harness, *case)


@_SETTINGS
@given(random_cases())
def test_property_random_tables(harness, case):
    check(harness, *case)
