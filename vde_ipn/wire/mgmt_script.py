"""The unixcmd / libvdemgmt script machine (vde-2 2.3.2 ``cmdparse``), sans IO.

A script is a text file of numbered states plus an optional ``TIMEOUT ms``
line (default 10000 ms); each state is ``NUM COMMAND ['string'] [number]``.
:func:`parse_script` turns the text into a :class:`Script` with the quirks of
the C parser kept: lines are read in 255-byte pieces, a line whose first
field is not a positive number is ignored unless it starts with ``TIMEOUT``,
an unknown command name drops the line, an *empty* command name (``"5"``
alone) makes a state that fails the run with -1, states are kept sorted by
number (equal numbers in file order, a jump goes to the first of them).
In a quoted string ``\\n``, ``\\t``, ``\\f`` are control characters and any
other backslashed character stands for itself (so ``\\'`` is a quote).

Commands (``S`` = the string, ``N`` = the number):

``IN S N``      read bytes into the line buffer until it ends with S; on
                timeout or EOF jump to N.  At least one byte is always read.
``THROW``       empty the line buffer and reset the cursor.
``SEND S``      send S with ``$*``/``$0`` = all arguments joined by spaces,
                ``$K`` = argument K (the character after the reference is
                swallowed, as in C).
``SHIFT``       drop the first argument.    ``IFARG N``  jump to N (always,
                since the argument count never goes below zero by itself).
``IF S N``      jump to N when the buffer from the cursor starts with S.
``GOTO N``      jump.       ``SKIP S N``  move the cursor after S if S is in
                the buffer, else forward N bytes (capped at the end).
``COPY``        append the buffer from the cursor, plus a NUL byte, to the
                current output buffer.
``RVATOI N``    return value := ``strtol`` of the buffer from the cursor,
                base N (<= 0: 10; 1 or > 36: -1).
``EXIT N``      stop with N.   ``EXITRV``  stop with the return value (-1
                unless RVATOI set it).
``OUTTAG N``    tag the current output buffer.  ``OUTSHIFT``  start a new one.

Running off the end of the script or jumping to a missing label is a
crash in C (SIGSEGV): :class:`Machine` reports it as :class:`Fault`.

Driving: call :meth:`Machine.step` until it returns :class:`Exit` or
:class:`Fault`.  :class:`Send` asks the caller to write bytes; :class:`Read`
asks for one read of at most 256 bytes waiting at most ``timeout`` ms (a
negative value waits forever) answered with :meth:`Machine.feed` (data, or
``b""`` for timeout/EOF); :class:`Debug` carries a debug-mode text line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Union

__all__ = ["State", "Script", "parse_script", "Machine", "OutBuffer",
           "Send", "Read", "Debug", "Exit", "Fault", "c_atoi", "c_strtol"]

DEFAULT_TIMEOUT = 10000
READ_SIZE = 256
LINE_SIZE = 256          # fgets() buffer of the C parser

COMMANDS = ("", "IN", "THROW", "SEND", "SHIFT", "IF", "GOTO", "COPY", "EXIT",
            "EXITRV", "SKIP", "IFARG", "RVATOI", "OUTSHIFT", "OUTTAG")
_SPACES = b" \t\n\v\f\r"


def c_strtol(text: bytes, base: int = 10) -> int:
    """``strtol(text, NULL, base)`` truncated to a 32-bit int (2 <= base <= 36)."""
    i = 0
    while i < len(text) and text[i] in _SPACES:
        i += 1
    neg = False
    if i < len(text) and text[i] in b"+-":
        neg = text[i] == 0x2D
        i += 1
    if base == 16 and text[i:i + 2].lower() == b"0x" and \
            _digit(text[i + 2:i + 3], 16) is not None:
        i += 2
    value = 0
    while i < len(text):
        d = _digit(text[i:i + 1], base)
        if d is None:
            break
        value = value * base + d
        i += 1
    value = min(value, 2 ** 63 - 1 + neg)         # LONG_MAX / LONG_MIN clamp
    value = -value if neg else value
    value &= 0xFFFFFFFF                            # long -> int
    return value - (1 << 32) if value >= 1 << 31 else value


def _digit(ch: bytes, base: int) -> Optional[int]:
    if not ch:
        return None
    c = ch[0]
    if 0x30 <= c <= 0x39:
        d = c - 0x30
    elif 0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A:
        d = (c | 0x20) - 0x61 + 10
    else:
        return None
    return d if d < base else None


def c_atoi(text: bytes) -> int:
    """``atoi``: decimal ``strtol`` of the leading part, 0 when none."""
    return c_strtol(text, 10)


@dataclass
class State:
    num: int
    command: str
    string: bytes = b""
    arg: int = 0


@dataclass
class Script:
    states: List[State] = field(default_factory=list)
    timeout: int = DEFAULT_TIMEOUT


def _cut_nul(b: bytes) -> bytes:
    n = b.find(b"\0")
    return b if n < 0 else b[:n]


def _fgets_lines(data: bytes):
    """The pieces successive fgets(buf, 256) calls return (NUL-cut)."""
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos, pos + LINE_SIZE - 1)
        end = pos + LINE_SIZE - 1 if end < 0 else end + 1
        yield _cut_nul(data[pos:end])
        pos = end


def _blankskip(s: bytes, i: int) -> int:
    while i < len(s) and s[i] in b" \t":
        i += 1
    return i


def _fieldskip(s: bytes, i: int) -> int:
    while i < len(s) and s[i] not in b" \t\n":
        i += 1
    return i


def parse_script(data: bytes) -> Script:
    """Parse the text of a script file (see the module docstring)."""
    script = Script()
    for line in _fgets_lines(data):
        i = _blankskip(line, 0)
        num = c_atoi(line[i:])
        if num <= 0:
            if line[i:i + 7] == b"TIMEOUT":
                script.timeout = c_atoi(line[i + 8:])
            continue
        i = _blankskip(line, _fieldskip(line, i))
        j = _fieldskip(line, i)
        name = line[i:j].decode("latin-1")
        if name not in COMMANDS:
            continue
        i = _blankskip(line, j)
        string = b""
        if line[i:i + 1] == b"'":
            out = bytearray()
            i += 1
            while i < len(line) and line[i] != 0x27:
                if line[i] == 0x5C and i + 1 < len(line):
                    i += 1
                    out.append({0x6E: 10, 0x74: 9, 0x66: 12}.get(line[i], line[i]))
                else:
                    out.append(line[i])
                i += 1
            string = bytes(out)
            if i < len(line):
                i += 1
            i = _blankskip(line, i)
        state = State(num, name or "ERR", string, c_atoi(line[i:]))
        k = len(script.states)
        while k > 0 and script.states[k - 1].num > num:
            k -= 1
        script.states.insert(k, state)
    return script


@dataclass
class OutBuffer:
    data: bytearray = field(default_factory=bytearray)
    tag: int = 0


@dataclass
class Send:
    data: bytes


@dataclass
class Read:
    timeout: int


@dataclass
class Debug:
    text: bytes


@dataclass
class Exit:
    status: int


@dataclass
class Fault:
    reason: str


Action = Union[Send, Read, Debug, Exit, Fault]


class Machine:
    """One run of a :class:`Script` over a byte stream (see module docstring).

    ``args`` are the command words (``argv + optind`` in C, bytes).  The
    output buffers are in :attr:`outputs` (unixcmd prints only the first).
    """

    def __init__(self, script: Script, args: Sequence[bytes], debug: bool = False):
        self.script = script
        self.args = list(args)
        self.argc = len(self.args)
        self.debug = debug
        self.outputs: List[OutBuffer] = [OutBuffer()]
        self.rv = -1
        self._pc: Optional[int] = 0 if script.states else None
        self._inbuf = b""           # read from the stream, not yet consumed
        self._line: Optional[bytearray] = None
        self._curr = 0
        self._pending: List[Action] = []
        self._waiting = False
        self._done: Optional[Action] = None
        if debug:
            self._debug(b"c: %d\n" % self.argc)
            for i in range(self.argc + 1):
                self._debug(b"a[%d]: %s\n" % (i, self._arg(i) or b"(null)"))

    # -- helpers -------------------------------------------------------
    def _debug(self, text: bytes) -> None:
        self._pending.append(Debug(text))

    def _arg(self, i: int) -> Optional[bytes]:
        return self.args[i] if 0 <= i < self.argc else None

    def _goto(self, num: int) -> None:
        for k, st in enumerate(self.script.states):
            if st.num == num:
                self._pc = k
                return
        self._pc = None

    def _next(self) -> None:
        self._pc = self._pc + 1 if self._pc + 1 < len(self.script.states) else None

    def _view(self) -> bytes:
        """The line buffer from the cursor, as a C string."""
        return _cut_nul(bytes(self._line[self._curr:])) if self._line is not None else b""

    # -- driving ---------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Answer a :class:`Read`: the bytes read, or b"" on timeout/EOF."""
        if not self._waiting:
            raise RuntimeError("feed() without a pending Read")
        self._waiting = False
        state = self.script.states[self._pc]
        if not data:
            self._goto(state.arg)
            return
        self._inbuf = data
        self._scan(state.string)

    def step(self) -> Action:
        """The next action; :class:`Exit`/:class:`Fault` are final."""
        while True:
            if self._pending:
                return self._pending.pop(0)
            if self._done is not None:
                return self._done
            if self._waiting:
                return Read(self.script.timeout)
            if self._pc is None:
                self._done = Fault("no such state")
                continue
            self._exec(self.script.states[self._pc])

    def _exec(self, st: State) -> None:
        if self.debug:
            shown = b"(null)" if self._line is None else self._view()
            self._debug(b"NOW %d parsing %s\n" % (st.num, shown))
        cmd = st.command
        if cmd == "ERR":
            self._done = Exit(-1)
        elif cmd == "IN":
            if self._line is None:
                self._line = bytearray()
            self._scan(st.string)
        elif cmd == "THROW":
            self._curr = 0
            if self._line is not None:
                self._line = bytearray()
            self._next()
        elif cmd == "SEND":
            self._pending.append(Send(self._expand(st.string)))
            self._next()
        elif cmd == "SHIFT":
            self.argc -= 1
            self.args = self.args[1:]
            self._next()
        elif cmd == "IF":
            if self._line is not None and self._view().startswith(st.string):
                self._goto(st.arg)
            else:
                self._next()
        elif cmd == "GOTO":
            self._goto(st.arg)
        elif cmd == "COPY":
            if self._line is not None:
                self.outputs[-1].data += self._view() + b"\0"
            self._next()
        elif cmd == "EXIT":
            self._done = Exit(st.arg)
        elif cmd == "EXITRV":
            self._done = Exit(self.rv)
        elif cmd == "SKIP":
            self._skip(st)
            self._next()
        elif cmd == "IFARG":
            if self.argc >= 0:
                self._goto(st.arg)
            else:
                self._next()
        elif cmd == "RVATOI":
            self._rvatoi(st.arg)
            self._next()
        elif cmd == "OUTSHIFT":
            self.outputs.append(OutBuffer())
            self._next()
        elif cmd == "OUTTAG":
            self.outputs[-1].tag = st.arg
            self._next()

    def _scan(self, pattern: bytes) -> None:
        """Move buffered bytes into the line until it ends with ``pattern``."""
        while True:
            if not self._inbuf:
                self._waiting = True
                return
            self._line.append(self._inbuf[0])
            self._inbuf = self._inbuf[1:]
            if self._line.endswith(pattern):
                self._next()
                return

    def _expand(self, s: bytes) -> bytes:
        out = bytearray()
        t = 0
        while t < len(s):
            if s[t] == 0x24 and (t == 0 or s[t - 1] != 0x5C):
                t += 1
                if t < len(s) and s[t] in b"*0":
                    out += b" ".join(self.args[:max(self.argc, 0)])
                else:
                    num = c_atoi(s[t:])
                    while t < len(s) and 0x30 <= s[t] <= 0x39:
                        t += 1
                    if 0 <= num < self.argc:
                        out += self.args[num]
            else:
                out.append(s[t])
            t += 1
        return bytes(out)

    def _skip(self, st: State) -> None:
        if self._line is None:
            return
        hit = bytes(self._line).find(st.string) if st.string else -1
        if hit >= 0:
            self._curr = hit + len(st.string)
        else:
            self._curr += st.arg
        self._curr = max(0, min(self._curr, len(self._line)))

    def _rvatoi(self, base: int) -> None:
        if self._line is None:
            self.rv = -1
        elif base <= 0:
            self.rv = c_strtol(self._view(), 10)
        elif 2 <= base <= 36:
            self.rv = c_strtol(self._view(), base)
        else:
            self.rv = -1
