"""vde_switch's -G/--grab: ours, added without changing any 2.3.2 prefix."""

import pytest

from vde_ipn.cli._logging import Logger
from vde_ipn.cli._switch_args import parse


def run(*words):
    return parse(["vde_switch"] + list(words), Logger("vde_switch"))


@pytest.mark.parametrize("words", [
    ["-G", "eth9"], ["-Geth9"], ["--grab", "eth9"], ["--grab=eth9"], ["-grab", "eth9"],
    ["-grab=eth9"],
])
def test_grab_spellings(words):
    o = run(*words)
    assert o.grabs == ["eth9"] and o.taps == [] and o.config.gid == -1


@pytest.mark.parametrize("words", [["-g", "root"], ["-gr", "root"], ["--g", "root"],
                                   ["--gr", "root"], ["-group", "root"]])
def test_group_prefixes_keep_their_meaning(words):
    o = run(*words)
    assert o.config.gid == 0 and o.grabs == []


def test_taps_and_grabs_in_order():
    o = run("-t", "tap1", "-G", "a0", "--tap=tap2", "--grab", "b0")
    assert (o.taps, o.grabs) == (["tap1", "tap2"], ["a0", "b0"])


def test_grab_word_as_an_argument_is_left_alone():
    o = run("-s", "--grab")
    assert o.config.sock == "--grab" and o.grabs == []
