"""``vde-ipn``: our own command line, with modern option names.

The drop-ins in ``compat/`` keep the VDE tools' exact argv; this command
offers the same engine with self-explanatory options.
"""

from __future__ import annotations

import sys

import click

from .. import __version__
from .sniff import inject, sniff


@click.group()
@click.version_option(__version__, prog_name="vde-ipn")
def cli():
    """Inter Process Networking: virtual Ethernet switches for VMs and processes."""


@cli.command()
@click.argument("directory", required=False)
@click.option("--hub", is_flag=True, help="Repeat every frame to every port (no learning).")
@click.option("--ports", type=click.IntRange(1, 1 << 16), default=32, show_default=True,
              help="Number of ports, port 0 included.")
@click.option("--mgmt", type=click.Path(), help="Management console socket.")
@click.option("--mode", help="Octal mode of the control socket (e.g. 660).")
@click.option("--group", help="Group owning the sockets.")
@click.option("--max-frame", type=click.IntRange(14, 65535), default=None,
              help="Largest frame accepted (default 9234, jumbo frames).")
@click.option("--console/--no-console", default=True, show_default=True,
              help="Use the terminal as a console.")
@click.option("--monitor", metavar="PORT[:PORTS[:VLANS]]",
              help="Copy traffic (of PORTS and VLANS, default all) to PORT.")
@click.option("--dump", type=click.Path(dir_okay=False), help="Write every frame to FILE (pcap).")
@click.option("--qemu-stream", type=click.Path(), metavar="PATH",
              help="Socket for QEMU -netdev stream clients.")
@click.option("--qemu-dgram", type=click.Path(), metavar="PATH",
              help="Socket for QEMU -netdev dgram clients.")
@click.option("--lossless", is_flag=True,
              help="Never drop for a full receiver: pause the ports sending to it.")
def switch(directory, hub, ports, mgmt, mode, group, max_frame, console, monitor, dump,
           qemu_stream, qemu_dgram, lossless):
    """Run a switch on DIRECTORY (default: the standard VDE control directory)."""
    from . import switch as drop_in
    argv = ["vde_switch", "--numports", str(ports)]
    if directory:
        argv += ["--sock", directory]
    if hub:
        argv.append("--hub")
    if mgmt:
        argv += ["--mgmt", mgmt]
    if mode:
        argv += ["--mode", mode]
    if group:
        argv += ["--group", group]
    if max_frame:
        argv += ["--ethmax", str(max_frame)]
    if not console:
        argv.append("--nostdin")
    if monitor:
        argv += ["--monitor", monitor]
    if dump:
        argv += ["--dump", dump]
    if qemu_stream:
        argv += ["--qemu-stream", qemu_stream]
    if qemu_dgram:
        argv += ["--qemu-dgram", qemu_dgram]
    if lossless:
        argv.append("--lossless")
    sys.exit(drop_in.main(argv))


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def plug(args):
    """Connect networks or a network and stdin/stdout (vde_plug arguments)."""
    from . import plug as drop_in
    sys.exit(drop_in.main(["vde_plug", *args]))


cli.add_command(sniff)                   # scapy is imported when they run
cli.add_command(inject)


from .ipn_cat import cli as _ipn_cat  # noqa: E402

cli.add_command(_ipn_cat, name="ipn-cat")


@cli.command(name="kvde-switch", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def kvde_switch(args):
    """A switch that is an IPN network (kvde_switch arguments)."""
    from . import kvde_switch as drop_in
    sys.exit(drop_in.main(["kvde_switch", *args]))


def main(argv=None):
    return cli.main(args=None if argv is None else list(argv[1:]), prog_name="vde-ipn")


if __name__ == "__main__":
    main()
