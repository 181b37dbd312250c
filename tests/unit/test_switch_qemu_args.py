"""vde_switch's --qemu-stream PATH and --qemu-dgram PATH: ours, whole words only.

No 2.3.2 long option starts with "q"; matched as whole words before
getopt runs, like --dump, so no 2.3.2 spelling changes meaning.
"""

import pytest

from vde_ipn.cli._logging import Logger
from vde_ipn.cli._switch_args import LONGOPTS, USAGE, parse


def run(*words):
    return parse(["vde_switch"] + list(words), Logger("vde_switch"))


@pytest.mark.parametrize("words", [["--qemu-stream", "/tmp/q"], ["-qemu-stream", "/tmp/q"],
                                   ["--qemu-stream=/tmp/q"], ["-qemu-stream=/tmp/q"]])
def test_stream_spellings(words):
    o = run(*words)
    assert o.qemu_stream == "/tmp/q" and o.qemu_dgram is None


@pytest.mark.parametrize("words", [["--qemu-dgram", "/tmp/d"], ["-qemu-dgram=/tmp/d"]])
def test_dgram_spellings(words):
    o = run(*words)
    assert o.qemu_dgram == "/tmp/d" and o.qemu_stream is None


def test_both_with_other_options():
    o = run("-s", "/tmp/sw", "--qemu-stream", "/tmp/st", "-m", "0660", "--qemu-dgram", "/tmp/dg")
    assert (o.config.sock, o.qemu_stream, o.qemu_dgram, o.config.mode) == \
        ("/tmp/sw", "/tmp/st", "/tmp/dg", 0o660)


def test_word_as_an_argument_is_left_alone():
    o = run("-s", "--qemu-stream")
    assert o.config.sock == "--qemu-stream" and o.qemu_stream is None


def test_prefix_is_not_an_option(capsys):
    o = run("--qemu")                    # not a whole word: getopt's unknown option
    assert o.qemu_stream is None and o.qemu_dgram is None
    assert "unrecognized option" in capsys.readouterr().err


def test_no_long_option_starts_with_q_and_help_lists_them():
    assert not [o.name for o in LONGOPTS if o.name.startswith("q")]
    assert "--qemu-stream PATH" in USAGE and "--qemu-dgram PATH" in USAGE
