"""vde_switch --lossless: ours, off by default (2.3.2 drops for a full receiver).

No 2.3.2 long option starts with "l", so --lossless (and its prefixes,
getopt_long_only style: -lossless, --loss, -l) cannot shadow one of them.
"""

import pytest
from click.testing import CliRunner

from vde_ipn.cli import main as cli_main
from vde_ipn.cli._logging import Logger
from vde_ipn.cli._switch_args import LONGOPTS, USAGE, parse


def run(*words):
    return parse(["vde_switch"] + list(words), Logger("vde_switch"))


def test_off_by_default():
    assert run("-s", "/tmp/x").config.lossless is False


@pytest.mark.parametrize("word", ["--lossless", "-lossless", "--loss", "-l"])
def test_spellings(word):
    o = run("-n", "8", word, "-x")
    assert (o.config.lossless, o.config.numports, o.config.hub) == (True, 8, True)


def test_only_ours_starts_with_l_and_help_says_what_it_does():
    assert [o.name for o in LONGOPTS if o.name.startswith("l")] == ["lossless"]
    assert "--lossless" in USAGE


def test_vde_ipn_switch_passes_it_on(monkeypatch):
    seen = []
    monkeypatch.setattr("vde_ipn.cli.switch.main", lambda argv: seen.append(argv) or 0)
    res = CliRunner().invoke(cli_main.cli, ["switch", "/tmp/x", "--lossless", "--no-console"])
    assert res.exit_code == 0, res.output
    assert "--lossless" in seen[0]
