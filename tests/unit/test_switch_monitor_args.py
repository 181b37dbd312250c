"""vde_switch's --dump FILE and --monitor SPEC: ours, whole words only.

No 2.3.2 long option starts with "du" or "mon", and these are matched as
whole words before getopt runs, so every prefix keeps its 2.3.2 meaning
(``-du`` is still ``-d`` plus an invalid ``-u``, ``-m`` still the mode).
"""

import pytest

from vde_ipn.cli._logging import Logger
from vde_ipn.cli._switch_args import LONGOPTS, parse


def run(*words):
    return parse(["vde_switch"] + list(words), Logger("vde_switch"))


@pytest.mark.parametrize("words", [["--dump", "/tmp/a.pcap"], ["-dump", "/tmp/a.pcap"],
                                   ["--dump=/tmp/a.pcap"], ["-dump=/tmp/a.pcap"]])
def test_dump_spellings(words):
    o = run(*words)
    assert o.config.dump == "/tmp/a.pcap" and not o.daemon


@pytest.mark.parametrize("words", [["--monitor", "5"], ["-monitor", "5"], ["--monitor=5"]])
def test_monitor_spellings(words):
    o = run(*words)
    assert o.config.monitor == "5" and o.config.mode is None


def test_monitor_with_ports_and_vlans_and_other_options():
    o = run("-n", "8", "--monitor", "7:1,2:0", "-x", "--dump", "d.pcap")
    assert (o.config.monitor, o.config.dump, o.config.numports, o.config.hub) == \
        ("7:1,2:0", "d.pcap", 8, True)


def test_no_long_option_shares_the_new_prefixes():
    assert not [o.name for o in LONGOPTS if o.name.startswith(("du", "mon"))]


def test_prefixes_keep_their_meaning(capsys):
    o = run("-du")                       # -d, then -u: invalid (2.3.2 says so and goes on)
    assert o.daemon and o.config.dump is None
    assert "invalid option" in capsys.readouterr().err
    o = run("-m", "660")
    assert o.config.mode == 0o660 and o.config.monitor is None


def test_word_as_an_argument_is_left_alone():
    o = run("-s", "--dump")
    assert o.config.sock == "--dump" and o.config.dump is None


def test_bad_monitor_port_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        run("-n", "8", "--monitor", "9")
    assert e.value.code == 1
    assert "Usage: vde_switch" in capsys.readouterr().out


def test_dump_without_its_argument_is_rejected_as_in_2_3_2(capsys):
    o = run("--dump")
    assert o.config.dump is None
    assert "unrecognized option" in capsys.readouterr().err
