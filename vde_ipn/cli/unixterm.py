"""unixterm: dumb terminal for a unix stream socket (vde-2 2.3.2).

``unixterm SOCKET``

Contract (matches the C tool):

* Connects to SOCKET (cut to 107 bytes; a missing argument is the path
  ``(null)``).  Failure: ``Socket connecting error: <strerror>`` on stderr,
  exit status 255.  Words after SOCKET are ignored.
* Then copies stdin -> socket and socket -> stdout: every read (at most
  1024 bytes) becomes exactly one write, so a line typed on a terminal in
  canonical mode is one command for servers that take one read per command.
  The terminal mode is left alone (the terminal echoes and edits lines).
* Polls both sides; checks stdin first, then the socket.  A hang-up on
  either side ends the program with status 0 *before* any data that came
  with it is read (so ``logout``'s last line is usually not shown, as with
  the C tool), and so does a read of 0 bytes (EOF) or a read error.
* SIGPIPE and SIGINT keep their default (fatal) action.
"""
import os
import select
import signal
import socket
import sys

BUFSIZE = 1024
SUN_PATH_MAX = 107


def connect(path_arg, prefix: str):
    """A connected socket, or None after printing ``prefix: strerror``."""
    path = os.fsencode(path_arg if path_arg is not None else "(null)")[:SUN_PATH_MAX]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        sys.stderr.write("%s: %s\n" % (prefix, os.strerror(e.errno or 22)))
        sys.stderr.flush()
        return None
    return sock


def main(argv) -> int:
    """Entry point; ``argv`` includes argv[0]; returns the exit status."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sock = connect(argv[1] if len(argv) > 1 else None, "Socket connecting error")
    if sock is None:
        return 255
    try:
        return _copy(0, sock.fileno(), 1)
    finally:
        sock.close()


def _copy(term_in: int, fd: int, term_out: int) -> int:
    poller = select.poll()
    mask = select.POLLIN | select.POLLHUP
    poller.register(term_in, mask)
    poller.register(fd, mask)
    route = ((term_in, fd), (fd, term_out))
    while True:
        try:
            events = dict(poller.poll())
        except InterruptedError:
            continue
        for src, dst in route:
            ev = events.get(src, 0)
            if ev & select.POLLHUP:
                return 0
            if ev & select.POLLIN:
                try:
                    data = os.read(src, BUFSIZE)
                except OSError:
                    return 0
                if not data:
                    return 0
                try:
                    os.write(dst, data)
                except BlockingIOError:
                    pass
            elif ev:
                return 0
