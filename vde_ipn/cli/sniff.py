"""``vde-ipn sniff`` and ``vde-ipn inject``: tcpdump and a packet injector for VDE.

    vde-ipn sniff /tmp/sw -f 'icmp and host 10.0.0.2' -c 10 -w out.pcap
    vde-ipn sniff 'vde:///tmp/sw[5]'        # the switch's monitor port 5
    vde-ipn inject /tmp/sw -r frames.pcap
    vde-ipn inject /tmp/sw -e "Ether(dst='ff:ff:ff:ff:ff:ff')/ARP(pdst='10.0.0.2')" -a 2

Both take any address :class:`vde_ipn.scapy.VDESocket` opens.  ``sniff``
prints one line per frame (scapy's summary; ``-v``: the whole dissection)
and writes pcap with ``-w`` (our codec, read by tcpdump and Wireshark).
On a switch port it sees what that port gets (floods, and unicast for
it); on a monitor port (``--monitor`` or ``monitor/set``) it sees the
unicast between other ports too.  scapy is needed (``vde-ipn[scapy]``).
"""

from __future__ import annotations

import signal
import sys
import time

import click

from .._errors import ConnectError, RemoteProtocolError
from ..wire import pcap


def _socket(vnl: str, port, filter_expr=None):
    try:
        from ..debug.scapy_socket import VDESocket
    except ImportError as e:
        raise click.ClickException("scapy is needed (pip install 'vde-ipn[scapy]'): %s" % e)
    from ..debug.bpf import FilterError
    try:
        return VDESocket(vnl, "vde-ipn sniff", port=port, filter=filter_expr)
    except FilterError as e:
        raise click.ClickException(str(e))
    except (ConnectError, OSError) as e:
        raise click.ClickException("%s: %s" % (vnl, e))


def _stop_on_sigterm() -> None:
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


@click.command()
@click.argument("vnl")
@click.option("-f", "--filter", "filter_expr", metavar="EXPR",
              help="tcpdump filter expression (compiled by libpcap)")
@click.option("-c", "--count", type=click.IntRange(0), default=0,
              help="stop after N frames (0: no limit)")
@click.option("-t", "--timeout", type=float, default=None, help="stop after SECS seconds")
@click.option("-w", "--write", "write_path", type=click.Path(dir_okay=False),
              help="write the frames to FILE (pcap)")
@click.option("-v", "--verbose", is_flag=True, help="print every layer (scapy's show())")
@click.option("-q", "--quiet", is_flag=True, help="print nothing per frame")
@click.option("--port", type=click.IntRange(0), default=None,
              help="ask the switch for this port (e.g. its monitor port)")
def sniff(vnl, filter_expr, count, timeout, write_path, verbose, quiet, port):
    """Print (and save) the frames seen on the network VNL."""
    s = _socket(vnl, port, filter_expr)
    out = None
    if write_path:
        out = open(write_path, "wb")
        out.write(pcap.encode_file_header())
    seen = [0]
    from ..debug import tools

    def on_frame(pkt) -> None:
        seen[0] += 1
        if out is not None:
            out.write(pcap.encode_record(float(pkt.time), bytes(pkt)))
        if not quiet:
            click.echo(tools.describe(pkt, verbose))
            sys.stdout.flush()

    _stop_on_sigterm()
    try:
        tools.capture(s, on_frame, count, timeout)
    except KeyboardInterrupt:
        pass
    finally:
        s.close()
        if out is not None:
            out.close()
    click.echo("%d frames captured, %d filtered out" % (seen[0], s.filtered), err=True)


def _frames_from(read_path, expr):
    if read_path:
        with open(read_path, "rb") as f:
            try:
                _header, records = pcap.read_records(f)
                return [r.data for r in records]
            except RemoteProtocolError as e:
                raise click.ClickException("%s: %s" % (read_path, e))
    from ..debug import tools
    try:
        return tools.build(expr)
    except Exception as e:                # the user's expression: any error
        raise click.ClickException("cannot build %r: %s" % (expr, e))


@click.command()
@click.argument("vnl")
@click.option("-r", "--read", "read_path", type=click.Path(exists=True, dir_okay=False),
              help="send the frames of this pcap file")
@click.option("-e", "--expr", metavar="EXPR",
              help="send the packets of a scapy expression, e.g. \"Ether()/IP(dst='10.0.0.2')/ICMP()\"")
@click.option("-c", "--count", type=click.IntRange(1), default=1, help="send it all N times")
@click.option("-i", "--interval", type=float, default=0.0, help="seconds between frames")
@click.option("-a", "--answers", type=float, default=None, metavar="SECS",
              help="wait SECS for answers (as srp does) and print them")
@click.option("-v", "--verbose", is_flag=True, help="print each frame sent")
@click.option("--port", type=click.IntRange(0), default=None, help="ask for this port")
def inject(vnl, read_path, expr, count, interval, answers, verbose, port):
    """Send frames from a pcap file or a scapy expression into VNL."""
    if bool(read_path) == bool(expr):
        raise click.UsageError("give exactly one of -r FILE and -e EXPR")
    s = _socket(vnl, port)
    try:
        frames = _frames_from(read_path, expr) * count
        if answers is not None:
            from ..debug import tools
            ans = tools.ask(frames, s, answers, interval)
            for sent, got in ans:
                click.echo("%s ==> %s" % (sent, got))
            click.echo("%d frames sent, %d answered" % (len(frames), len(ans)), err=True)
            return
        for i, frame in enumerate(frames):
            if i and interval:
                time.sleep(interval)
            s.send(frame)
            if verbose:
                click.echo(frame.summary() if hasattr(frame, "summary") else
                           "%d bytes" % len(frame))
        click.echo("%d frames sent" % len(frames), err=True)
    finally:
        s.close()

