"""ipn-cat: ``nc`` for an IPN bus — send lines or files, or listen.

    ipn-cat listen PATH            print every message, one per line
    ipn-cat send PATH [FILE...]    send each line of FILEs (or stdin)

``--create`` makes the network (``bind``) when PATH does not exist,
with ``--mode`` (exactly: the umask does not apply), ``--group`` (name or number: the group the network's
file and companion belong to), ``--lossless``, ``--protocol`` and
``--ports``.
Senders shut their reading side and listeners their writing side, so a
listener never blocks a lossless network and producers do not count as
readers.  ``--wait-readers`` holds a sender until someone listens
(numnodes OOB), ``--binary`` sends fixed-size chunks instead of lines.
"""

from __future__ import annotations

import grp
import os
import socket
import sys

import click

from .. import ipn

PROTOCOLS = {"broadcast": ipn.IPN_BROADCAST, "vdeswitch": ipn.IPN_VDESWITCH,
             "channel": ipn.IPN_CHANNEL}


def _gid(group):
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise click.ClickException("no such group: %s" % group) from None


def _open(path, shut, create, mode, lossless, protocol, ports, group=None, oob=False):
    gid = None if group is None else _gid(group)
    s = ipn.socket(PROTOCOLS[protocol])
    s.shutdown(shut)
    if oob:
        s.setsockopt(0, ipn.IPN_SO_HANDLE_OOB, 1)
        s.setsockopt(0, ipn.IPN_SO_WANT_OOB_NUMNODES, 1)
    try:
        if create and not os.path.lexists(path):
            s.setsockopt(0, ipn.IPN_SO_MODE, int(mode, 8))
            s.setsockopt(0, ipn.IPN_SO_NUMNODES, ports)
            s.setsockopt(0, ipn.IPN_SO_FLAGS, ipn.IPN_FLAG_LOSSLESS if lossless else 0)
            umask = os.umask(0)              # --mode is the mode, whatever the umask
            try:
                s.bind(path)
            finally:
                os.umask(umask)
            if gid is not None:
                ipn.set_network_group(path, gid)
            s.connect()
        else:
            s.connect(path)
    except OSError as e:
        s.close()
        raise click.ClickException("%s: %s" % (path, os.strerror(e.errno or 0)))
    return s


_net_options = [
    click.argument("path", type=click.Path()),
    click.option("--create", is_flag=True, help="make the network if PATH is absent"),
    click.option("--mode", default="700", show_default=True, help="octal mode of a new network"),
    click.option("--group", help="group of a new network (with --mode 770: its members)"),
    click.option("--lossless", is_flag=True, help="new network: senders wait for readers"),
    click.option("--protocol", type=click.Choice(sorted(PROTOCOLS)), default="broadcast",
                 show_default=True),
    click.option("--ports", type=int, default=64, show_default=True, help="new network: ports"),
]


def net_options(f):
    for deco in reversed(_net_options):
        f = deco(f)
    return f


@click.group()
def cli():
    """Send to and listen on IPN networks."""


@cli.command()
@net_options
@click.option("--count", type=int, default=0, help="stop after this many messages")
@click.option("--binary", is_flag=True, help="write messages raw, not one per line")
def listen(path, create, mode, group, lossless, protocol, ports, count, binary):
    """Print the messages of the network at PATH."""
    s = _open(path, socket.SHUT_WR, create, mode, lossless, protocol, ports, group)
    out = sys.stdout.buffer
    n = 0
    try:
        while not count or n < count:
            m = s.recv(65536)
            out.write(m if binary else m.rstrip(b"\n") + b"\n")
            out.flush()
            n += 1
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        s.close()


@cli.command()
@net_options
@click.option("--binary", type=int, default=0, metavar="SIZE",
              help="send SIZE-byte chunks instead of lines")
@click.option("--wait-readers", is_flag=True, help="wait until at least one reader is there")
@click.argument("files", type=click.File("rb"), nargs=-1)
def send(path, create, mode, group, lossless, protocol, ports, binary, wait_readers, files):
    """Send each line of FILES (default stdin) to the network at PATH."""
    s = _open(path, socket.SHUT_RD, create, mode, lossless, protocol, ports, group,
              oob=wait_readers)
    try:
        if wait_readers:
            readers = 0
            while readers == 0:
                readers = ipn.decode_numnode_oob(s.recv(16))[0]
        for f in files or [click.get_binary_stream("stdin")]:
            chunks = iter(lambda: f.read(binary), b"") if binary else f
            for chunk in chunks:
                s.send(chunk.rstrip(b"\n") if not binary else chunk)
    finally:
        s.close()


def main(argv=None) -> int:
    cli.main(args=argv, prog_name="ipn-cat", standalone_mode=True)
    return 0


if __name__ == "__main__":
    main()
