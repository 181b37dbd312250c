"""Line editor and response filter of vdeterm (vde-2 2.3.2 libvdehist).

:class:`Hist` holds the state of one session between a terminal (raw
bytes in, bytes out) and a management console; all IO goes through four
callables so the class can be driven by tests:

* ``term_read()`` returns the bytes of one terminal read (b"" on EOF);
  ``mgmt_read(block)`` one console read of at most 1024 bytes (b"" on EOF;
  with ``block`` false, None when nothing is waiting); ``term_write(b)`` and
  ``mgmt_write(b)`` write.

Contract (what the C library does, byte for byte):

* :meth:`Hist.load_commands` sends ``help\\n`` and reads lines up to the
  ``.`` line (or a read ending in ``$ ``); the first word of every line
  after the ``------------`` row is a command, a word followed by words
  that extend it with ``/`` is a menu header and dropped; the list is
  sorted bytewise.  Bytes read past the end of the list are discarded.
* :meth:`Hist.from_mgmt` erases the input line with the prompt, prints the
  console's answer rewritten (lines end ``\\r\\n``; lines between ``0000``
  and ``.`` verbatim; ``1xxx text`` -> ``text``; ``3xxx text`` ->
  ``** DBG MSG: text``; other lines dropped) and redraws prompt and line.
* :meth:`Hist.from_term` edits the line: printable bytes are inserted at
  the cursor, DEL erases before it, ESC[A/B history (32 entries), ESC[C/D
  move, ^A/^E start/end, ^L redraw, TAB completes (a second TAB lists the
  candidates), ^D ends the session, ^C clears the line, a NUL byte is a
  newline; Enter sends the line *without* a newline.  It returns 0, or 1
  for ``logout``/^D/EOF (not sent), 2 after sending ``shutdown``.
  ``plugin/add`` and ``plugin/del`` make the next answer reload the list.
  Telnet IAC option bytes are answered as the C library does.
"""
from __future__ import annotations

BUFSIZE = 1024
HISTORYSIZE = 32
IAC, DONT, DO, WONT, WILL = 0xFF, 0xFE, 0xFD, 0xFC, 0xFB
TELOPT_ECHO, TELOPT_SGA, TELOPT_TTYPE = 1, 3, 24


def _cstr(b: bytes) -> bytes:
    n = b.find(b"\0")
    return b if n < 0 else b[:n]


def _strneq(a: bytes, b: bytes, n: int) -> bool:
    """``strncmp(a, b, n) == 0`` for NUL-free byte strings."""
    return a[:n] == b[:n]


def _commonprefix(x: bytes, y: bytes, maxlen: int) -> int:
    n = 0
    while n < maxlen and n < len(x) and n < len(y) and x[n] == y[n]:
        n += 1
    return n


def _isdigit(c: int) -> bool:
    return 0x30 <= c <= 0x39


class Hist:
    """One vdeterm session; see the module docstring."""

    def __init__(self, prompt: bytes, term_read, term_write, mgmt_read, mgmt_write):
        self.prompt = prompt
        self.term_read, self.term_write = term_read, term_write
        self.mgmt_read, self.mgmt_write = mgmt_read, mgmt_write
        self.commands = None            # None: (re)load at the next answer
        self.echo = True
        self.telnet = False
        self.edited = False
        self.vindata = False
        self.lastchar = 0
        self.line = b""                 # the user's line (a C string)
        self.pos = 0                    # cursor in self.line
        self.vline = bytearray()        # partial line from the console
        self.history = [None] * HISTORYSIZE
        self.histindex = 0
        self._inbuf = bytearray(BUFSIZE + 3)   # C reads into a reused buffer

    # -- completion list -------------------------------------------------
    def _readln(self, rb: list):
        """One console line for the list (``rb`` = [data, index]), or None
        at EOF or when a read ends with ``$ ``."""
        line = bytearray()
        last = 0x20
        while True:
            if rb[1] == len(rb[0]):
                data = self.mgmt_read(block=True)
                if not data:
                    return None
                rb[0], rb[1] = data, 0
            c = rb[0][rb[1]]
            if c == 0x20 and last == 0x24 and rb[1] == len(rb[0]) - 1:
                return None
            line.append(c)
            last = c
            rb[1] += 1
            if c == 0x0A or len(line) >= BUFSIZE - 1:
                return bytes(line)

    def load_commands(self) -> None:
        """Send ``help`` and build the completion list from its table."""
        self.mgmt_write(b"help\n")
        found, body, last = [], False, None
        rb = [b"", 0]
        while True:
            line = self._readln(rb)
            if line is None:
                break
            if not body:
                body = line.startswith(b"------------")
                continue
            if line.startswith(b".\n"):
                break
            word = _cstr(line).split(b" ", 1)[0]
            if last is not None and not (word.startswith(last) and
                                         word[len(last):len(last) + 1] == b"/"):
                found.append(last)
            last = word
        if last is not None:
            found.append(last)
        self.commands = sorted(found)

    # -- screen ------------------------------------------------------------
    def _erase(self, prompt_too: bool) -> None:
        extra = len(self.prompt) if prompt_too else 0
        self.term_write(b"\b" * (self.pos + extra) + b" " * (len(self.line) + extra)
                        + b"\b" * (len(self.line) + extra))

    def _redraw(self, prompt_too: bool) -> None:
        head = self.prompt if prompt_too else b""
        self.term_write(head + self.line + b"\b" * (len(self.line) - self.pos))

    # -- console -> terminal -------------------------------------------------
    def from_mgmt(self) -> None:
        """Show everything the console has sent (see module docstring)."""
        self._erase(True)
        while True:
            data = self.mgmt_read(block=False)
            if not data:
                break
            for c in data:
                self.vline.append(c)
                if c == 0x0A:
                    self.vline[-1:] = b"\r\n"
                    self._console_line(bytes(self.vline))
                    self.vline = bytearray()
        if self.commands is None:
            self.load_commands()
        self._redraw(True)

    def _console_line(self, line: bytes) -> None:
        if self.vindata:
            if line.startswith(b".\r"):
                self.vindata = False
            else:
                self.term_write(line)
            return
        text = _cstr(line)
        i = next((k for k in range(len(text) - 3)
                  if all(_isdigit(c) for c in text[k:k + 4])), None)
        if i is None:
            return
        msg = text[i:]
        if msg.startswith(b"0000"):
            self.vindata = True
        elif msg[:1] == b"1":
            self.term_write(msg[5:])
        elif msg[:1] == b"3":
            self.term_write(b"** DBG MSG: ")
            self.term_write(msg[5:])

    # -- terminal -> console -------------------------------------------------
    def from_term(self) -> int:
        """Process one terminal read; 0 to go on, else end (see docstring)."""
        data = self.term_read()
        if not data:
            return 1
        n = len(data)
        buf = self._inbuf
        buf[:n] = data
        rv = 0
        i = 0
        while i < n and len(self.line) < BUFSIZE - 1:
            if buf[i] == IAC and buf[i + 1] == IAC:
                i += 1
            if buf[i] == 0:
                buf[i] = 0x0A
            c = buf[i]
            if c == IAC and buf[i + 1] != IAC:
                i += self._telnet(buf[i + 1], buf[i + 2])
            elif c == 0x1B:
                if buf[i + 1] == 0x5B:
                    self.edited = True
                    self._arrow(buf[i + 2])
                    i += 3
                else:
                    i += 2
            elif c < 0x20 and c not in (0x0A, 0x0D):
                if c == 4:
                    return 1
                self._control(c)
            elif c == 0x7F:
                self._backspace()
            else:
                rv = self._char(c)
                if rv:
                    return rv
            self.lastchar = buf[i] if i < len(buf) else 0
            i += 1
        return rv

    def _telnet(self, action: int, obj: int) -> int:
        if not self.telnet:
            self.telnet, self.echo = True, False
            self.term_write(bytes((IAC, WILL, TELOPT_ECHO)))
        if (action, obj) == (DO, TELOPT_ECHO):
            self.echo = True
        elif (action, obj) == (WILL, TELOPT_ECHO):
            self.term_write(bytes((IAC, DONT, TELOPT_ECHO, IAC, WILL, TELOPT_ECHO)))
        elif (action, obj) == (DO, TELOPT_SGA):
            self.term_write(bytes((IAC, WILL, TELOPT_SGA)))
        elif (action, obj) == (WILL, TELOPT_TTYPE):
            self.term_write(bytes((IAC, DONT, TELOPT_TTYPE)))
        elif action == WILL:
            self.term_write(bytes((IAC, DONT, obj)))
        elif action == DO:
            self.term_write(bytes((IAC, WONT, obj)))
        return 2

    def _arrow(self, code: int) -> None:
        if code == 0x41:                       # up
            self._erase(False)
            self._put_history()
            self._get_history(1)
            self._redraw(False)
        elif code == 0x42:                     # down
            self._erase(False)
            self._put_history()
            self._get_history(-1)
            self._redraw(False)
        elif code == 0x43:                     # right
            if self.pos < len(self.line):
                self.term_write(b"\x1b[C")
                self.pos += 1
        elif code == 0x44:                     # left
            if self.pos > 0:
                self.term_write(b"\x1b[D")
                self.pos -= 1

    def _control(self, c: int) -> None:
        if c == 3:
            self._erase(False)
            self.line, self.pos = b"", 0
        elif c == 12:
            self._erase(True)
            self._redraw(True)
        elif c == 1:
            self._erase(False)
            self.pos = 0
            self._redraw(False)
        elif c in (5, 9):
            if c == 5:                         # ^E, then a TAB as in C
                self._erase(False)
                self.pos = len(self.line)
                self._redraw(False)
            if self.lastchar == 9:
                self._erase(True)
                self._show_matches()
                self._redraw(True)
            else:
                self._erase(False)
                self._complete()
                self._redraw(False)

    def _backspace(self) -> None:
        if self.pos > 0:
            self.pos -= 1
            self.line = self.line[:self.pos] + self.line[self.pos + 1:]
            if self.echo:
                self.term_write(b"\b\x1b[P" if self.edited else b"\b \b")

    def _char(self, c: int) -> int:
        if self.echo:
            if self.edited and c >= 0x20:
                self.term_write(b"\x1b[@")
            self.term_write(bytes((c,)))
        if c == 0x0D:
            return 0
        if c == 0x0A:
            self.histindex = 0
            self._put_history()
            if self.line:
                self._shift_history()
            self.pos = len(self.line)
            rv = self._send()
            if rv:
                return rv
            self.pos = self.histindex = 0
            self.edited = False
            self.line = b""
            return 0
        self.line = self.line[:self.pos] + bytes((c,)) + self.line[self.pos:]
        self.pos += 1
        return 0

    def _send(self) -> int:
        cmd = self.line.lstrip(b" \t")
        if cmd.startswith(b"logout"):
            return 1
        if cmd:
            self.mgmt_write(self.line[:self.pos])
            if cmd.startswith(b"shutdown"):
                return 2
        self.term_write(b"\r\n")
        self.term_write(self.prompt)
        if self.commands is not None and cmd[:10] in (b"plugin/add", b"plugin/del"):
            self.commands = None
        return 0

    # -- history and completion ---------------------------------------------
    def _put_history(self) -> None:
        self.history[self.histindex] = self.line

    def _get_history(self, change: int) -> None:
        idx = min(max(self.histindex + change, 0), HISTORYSIZE - 1)
        if self.history[idx] is None:
            idx -= 1
        idx = max(idx, 0)
        self.histindex = idx
        self.line = self.history[idx] or b""
        self.pos = len(self.line)

    def _shift_history(self) -> None:
        self.history = [None] + self.history[:HISTORYSIZE - 1]

    def _matches(self):
        return [s for s in (self.commands or ()) if _strneq(self.line, s, self.pos)]

    def _show_matches(self) -> None:
        if self.commands and self.pos > 0:
            found = self._matches()
            if len(found) > 1:
                self.term_write(b"".join(s + b" " for s in found) + b"\r\n")

    def _complete(self) -> None:
        if not self.commands or self.pos <= 0:
            return
        found = self._matches()
        if not found:
            return
        match, n = found[0], len(found[0])
        for other in found[1:]:
            n = _commonprefix(match, other, n)
        if n <= 0:
            return
        already = _commonprefix(self.line, match, n)
        if (n - already) + len(self.line) < BUFSIZE:
            line = self.line[:already] + match[already:n] + self.line[already:]
            if len(found) == 1 and line[n:n + 1] != b" " and len(line) + 1 < BUFSIZE:
                line = line[:n] + b" " + line[n:]
                n += 1
            self.line = line
            self.pos = n

