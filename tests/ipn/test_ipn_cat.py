"""vde-ipn-cat: the bus from a shell, listeners and senders as real processes."""

import os
import subprocess
import sys

from support import REPO, require, wait_for

CAT = os.path.join(REPO, "bin", "vde-ipn-cat")


def test_lines_reach_every_listener_of_a_lossless_network(procs, netdir):
    path = os.path.join(netdir, "bus")
    first = procs.start([sys.executable, require(CAT), "listen", "--create", "--lossless",
                         "--mode", "700", path, "--count", "3"], stdout=subprocess.PIPE)
    wait_for(lambda: os.path.exists(path), what="the network")
    second = procs.start([sys.executable, CAT, "listen", path, "--count", "3"],
                         stdout=subprocess.PIPE)
    nodes = os.path.join(netdir, ".bus.ipn", "n")    # made just after the socket file
    wait_for(lambda: os.path.isdir(nodes) and len(os.listdir(nodes)) == 2,
             what="two listeners")
    assert os.stat(path).st_mode & 0o777 == 0o700
    sender = subprocess.run([sys.executable, CAT, "send", path], input=b"one\ntwo\nthree\n",
                            timeout=30)
    assert sender.returncode == 0
    for p in (first, second):
        out, _ = p.communicate(timeout=30)
        assert out == b"one\ntwo\nthree\n"


def test_a_sender_can_wait_for_its_first_reader(procs, netdir):
    path = os.path.join(netdir, "bus")
    owner = procs.start([sys.executable, CAT, "listen", "--create", path, "--count", "0"],
                        stdout=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(path), what="the network")
    owner.kill()                                         # a dead network: the file is stale
    owner.wait()
    refused = subprocess.run([sys.executable, CAT, "send", path], input=b"x\n",
                             stderr=subprocess.PIPE, timeout=30)
    assert refused.returncode != 0 and b"refused" in refused.stderr
    os.unlink(path)
    sender = procs.start([sys.executable, CAT, "send", "--create", "--wait-readers", path],
                         stdin=subprocess.PIPE)
    wait_for(lambda: os.path.exists(path), what="the network")
    sender.stdin.write(b"for the first reader\n")
    sender.stdin.close()
    reader = subprocess.run([sys.executable, CAT, "listen", path, "--count", "1"],
                            stdout=subprocess.PIPE, timeout=30)
    assert reader.stdout == b"for the first reader\n"
    assert sender.wait(timeout=30) == 0
