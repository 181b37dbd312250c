"""The unixcmd script machine and vdeterm's line editor, without sockets."""
from vde_ipn.cli._vdehist import Hist
from vde_ipn.wire import mgmt_script as ms

VDECMD = rb"""TIMEOUT 1000
1 IN '$ ' 100
3 SEND '$*\n'
5 THROW
6 IN '\n' 100
7 IF '0000 DATA END WITH \'.\'' 10
8 IF '10' 20
9 GOTO 100
10 THROW
11 IN '\n' 100
12 IF '.\n' 5
13 COPY
14 GOTO 10
20 SKIP 2
21 SEND 'logout\n'
22 EXITATOI
100 EXIT -1
"""


def drive(machine, chunks):
    """Run to the end; reads take the next chunk (b"" = timeout)."""
    sent, chunks = [], list(chunks)
    while True:
        act = machine.step()
        if isinstance(act, ms.Send):
            sent.append(act.data)
        elif isinstance(act, ms.Read):
            machine.feed(chunks.pop(0) if chunks else b"")
        elif isinstance(act, ms.Debug):
            continue
        else:
            return act, sent


def test_parse_vdecmd():
    script = ms.parse_script(VDECMD)
    assert script.timeout == 1000
    assert [s.num for s in script.states] == [1, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                             20, 21, 100]   # EXITATOI is no command
    st = {s.num: s for s in script.states}
    assert (st[7].command, st[7].string, st[7].arg) == ("IF", b"0000 DATA END WITH '.'", 10)
    assert (st[3].string, st[100].arg) == (b"$*\n", -1)


def test_parse_quirks():
    script = ms.parse_script(b"9 GOTO 1\n1 IN 'a\\tb\\x' 3\n5\n1 COPY\nBOGUS 4\n2 NOPE\n")
    assert [(s.num, s.command) for s in script.states] == \
        [(1, "IN"), (1, "COPY"), (5, "ERR"), (9, "GOTO")]
    assert script.states[0].string == b"a\tbx"
    assert script.timeout == ms.DEFAULT_TIMEOUT


def test_vdecmd_run_copies_data_lines_with_nuls():
    m = ms.Machine(ms.parse_script(VDECMD), [b"port/print", b"7"])
    act, sent = drive(m, [b"banner\n", b"\nvde$ ",
                          b"0000 DATA END WITH '.'\nline 1\n\n.\n1006 No such\n", b"\nvde$ "])
    assert sent == [b"port/print 7\n", b"logout\n"]
    assert bytes(m.outputs[0].data) == b"line 1\n\0\n\0"
    assert act == ms.Exit(-1)


def test_timeout_jumps_and_running_off_is_a_fault():
    m = ms.Machine(ms.parse_script(b"1 IN 'x' 5\n2 EXIT 1\n5 COPY\n"), [])
    act, _ = drive(m, [b"abc"])
    assert isinstance(act, ms.Fault) and bytes(m.outputs[0].data) == b"abc\0"
    assert drive(ms.Machine(ms.parse_script(b"1 GOTO 4\n"), []), [])[0] == ms.Fault("no such state")


def test_send_expansion_swallows_the_next_character():
    m = ms.Machine(ms.parse_script(rb"1 SEND '$* [$1] [$2] [$9] [$x] [\$1]\n'" + b"\n2 EXIT 0\n"),
                   [b"a%xb", b"c d", b"e"])
    assert drive(m, [])[1] == [b"a%xb c d e [c d [e [ [a%xb] [c d\n"]


def test_rvatoi_skip_outtag_outshift_exitrv():
    text = (b"1 IN '\\n' 9\n2 SKIP 2\n3 RVATOI 16\n4 OUTTAG 7\n5 OUTSHIFT\n6 COPY\n"
            b"7 SHIFT\n8 IFARG 10\n9 EXIT 1\n10 EXITRV\n")
    m = ms.Machine(ms.parse_script(text), [b"a"])
    act, _ = drive(m, [b"xx1f rest\n"])
    assert act == ms.Exit(0x1F)
    assert [(o.tag, bytes(o.data)) for o in m.outputs] == [(7, b""), (0, b"1f rest\n\0")]


def test_debug_lines():
    m = ms.Machine(ms.parse_script(b"1 IN '$ ' 9\n2 EXIT 3\n"), [b"x"], debug=True)
    texts = []
    while True:
        act = m.step()
        if isinstance(act, ms.Debug):
            texts.append(act.text)
        elif isinstance(act, ms.Read):
            m.feed(b"hi$ ")
        else:
            break
    assert b"".join(texts) == (b"c: 1\na[0]: x\na[1]: (null)\nNOW 1 parsing (null)\n"
                               b"NOW 2 parsing hi$ \n")


def test_c_strtol():
    assert ms.c_atoi(b"  -12abc") == -12 and ms.c_atoi(b"x") == 0
    assert ms.c_strtol(b"0x1F", 16) == 31 and ms.c_strtol(b"777", 8) == 511
    assert ms.c_atoi(b"4294967297") == 1           # long truncated to int


class Fake:
    def __init__(self, mgmt_chunks=()):
        self.term, self.sent, self.mgmt = b"", [], list(mgmt_chunks)
        self.keys = []

    def hist(self):
        return Hist(b"vde[s]: ", lambda: self.keys.pop(0) if self.keys else b"",
                    self.tw, self.mr, self.sent.append)

    def tw(self, b):
        self.term += b

    def mr(self, block):
        if self.mgmt:
            return self.mgmt.pop(0)
        return b"" if block else None


HELP = (b"0000 DATA END WITH '.'\nCOMMAND PATH       SYNTAX          HELP\n"
        b"------------       --------------  ------------\n"
        b"port               ============    PORT STATUS MENU\n"
        b"port/showinfo                      show port info\n"
        b"port/setvlan       N VLAN          set port VLAN\n"
        b"showinfo                           show switch version and info\n.\n1000 Success\n")


def test_completion_list_and_tab():
    f = Fake([HELP])
    h = f.hist()
    h.load_commands()
    assert f.sent == [b"help\n"]
    assert h.commands == [b"port/setvlan", b"port/showinfo", b"showinfo"]
    f.keys = [b"port/sh\t"]
    assert h.from_term() == 0
    assert h.line == b"port/showinfo " and h.pos == 14
    f.keys = [b"\n"]
    assert h.from_term() == 0 and f.sent[-1] == b"port/showinfo "
    f.keys = [b"port/s\t\t"]
    h.from_term()
    assert b"port/setvlan port/showinfo \r\n" in f.term


def test_answers_rewritten():
    f = Fake([b"vde$ 0000 DATA END WITH '.'\nNumports=32\n\n.\n1000 Success\n\nvde$ ",
              b"3001 port/ep something\n", b"1038 Function not implemented\n"])
    h = f.hist()
    h.commands = []
    h.from_mgmt()
    body = f.term.replace(b"\b", b"").replace(b" " * 8, b"")
    assert b"Numports=32\r\n\r\nSuccess\r\n" in body
    assert b"** DBG MSG: port/ep something\r\nFunction not implemented\r\n" in body


def test_logout_local_shutdown_sent_history():
    f = Fake()
    h = f.hist()
    h.commands = []
    f.keys = [b"showinfo\n", b"\x1b[A", b"\n", b"  logout\n"]
    assert [h.from_term() for _ in range(4)] == [0, 0, 0, 1]
    assert f.sent == [b"showinfo", b"showinfo"]
    f.keys = [b"shutdown\n"]
    h = f.hist()
    assert h.from_term() == 2 and f.sent[-1] == b"shutdown"
