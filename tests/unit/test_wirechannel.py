"""wirefilter's cable model and console, with a seeded RNG (pure)."""

import random
import statistics

from vde_ipn.engine.wirechannel import LR, RL, Channel, WireValue, parse_value
from vde_ipn.engine.wirecommands import run_command

F = b"\x02" * 6 + b"\x04" * 6 + b"\x88\xb5" + b"\0" * 46      # 60 bytes, record 62


def chan(**settings):
    c = Channel(random.Random(7))
    for k, v in settings.items():
        c.set(k, v)
    return c


def run(c, n, d=LR, gap=1.0):
    out, t = [], 0.0
    for i in range(n):
        c.push(d, F, t)
        out += [(t, x) for x in c.due(t)]
        t += gap
    t += 1e6
    out += [(t, x) for x in c.due(t)]
    return out


def test_parse_value():
    assert parse_value("10") == ((LR, RL), WireValue(10, 0, "U"))
    assert parse_value("LR20.5") == ((LR,), WireValue(20.5, 0, "U"))
    assert parse_value("RL1000+500N") == ((RL,), WireValue(1000, 500, "N"))
    assert parse_value("128K") == ((LR, RL), WireValue(131072, 0, "U"))
    assert parse_value("1M ")[1].value == 1 << 20
    assert parse_value("5[0]")[1].value == 5
    assert parse_value("junk")[1] is None


def test_loss_rate_and_direction():
    c = chan(loss="LR30")
    got = len(run(c, 10000))
    assert abs(got / 10000 - 0.7) < 0.02
    assert len(run(c, 1000, RL)) == 1000
    assert len(run(chan(loss="100"), 100)) == 0


def test_gilbert_bursts_are_longer():
    c = chan(loss="20", lostburst="5")
    seq = []
    for i in range(20000):
        c.push(LR, F, i)
        seq.append(bool(c.due(i)))
    lost = seq.count(False) / len(seq)
    runs, n = [], 0
    for ok in seq:
        if not ok:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    assert 0.14 < lost < 0.26 and 3.5 < statistics.mean(runs) < 6.5


def test_duplication_mean():
    got = len(run(chan(dup="50"), 5000))
    assert 1.9 < got / 5000 < 2.1


def test_delay_with_uniform_jitter_and_fifo():
    c = chan(delay="100+20")
    c.fifo = False
    delays = []
    for i in range(2000):
        t = i * 1000.0
        c.push(LR, F, t)
        nxt = c.next_due()
        delays.append(nxt - t)
        c.due(nxt)
    assert min(delays) >= 80 and max(delays) <= 120
    assert abs(statistics.mean(delays) - 100) < 2


def test_fifo_keeps_order_under_jitter():
    c = chan(delay="100+90")
    for i in range(200):
        c.push(LR, F[:-1] + bytes([i]), float(i))
    out = [f[-1] for _, f in c.due(1e9)]
    assert out == list(range(200))


def test_bandwidth_spaces_deliveries():
    c = chan(band="62000")                      # 62-byte records: 1 ms each
    for i in range(100):
        c.push(LR, F, 0.0)
    times = []
    t = 0.0
    while c.next_due() is not None:
        t = max(t, c.next_due())
        times += [t] * len(c.due(t))
    assert len(times) == 100 and 95 <= times[-1] <= 101


def test_capacity_drops_overflow():
    c = chan(band="6200", chanbufsize="620")
    for i in range(50):
        c.push(LR, F, 0.0)
    assert c.waiting() == 10 and c.dropped["capacity"] == 40


def test_mtu_counts_the_record_header():
    c = chan(mtu="61")
    c.push(LR, F, 0)
    c2 = chan(mtu="62")
    c2.push(LR, F, 0)
    assert c.due(0) == [] and len(c2.due(0)) == 1


def test_noise_flips_bits():
    c = chan(noise="10000")                     # a bit flipped in ~57% of frames
    for i in range(50):
        c.push(LR, F, 0)
    out = [f for _, f in c.due(0)]
    assert 15 < sum(f != F for f in out) < 45


def test_speed_holds_the_sender():
    c = chan(speed="62000")
    c.push(LR, F, 0.0)
    assert c.input_ready_at(LR) == 1.0 and c.input_ready_at(RL) == 0


def test_console():
    c = Channel(random.Random(1))
    r = run_command("loss LR5", c, read_file=None, title="WireFilter: bidirectional")
    assert r.text == "1000 Success\n"
    r = run_command("showinfo", c, read_file=None, title="WireFilter: bidirectional")
    assert r.text.startswith("0000 DATA END WITH '.'\nWireFilter: bidirectional\n"
                             "Loss   L->R 5+0U   R->L 0+0U\n")
    assert r.text.endswith(".\n1000 Success\n")
    assert run_command("frob", c, read_file=None, title="").text == \
        "1038 Function not implemented\n"
    assert run_command("logout", c, read_file=None, title="").logout
    assert run_command("  # x", c, read_file=None, title="").text == ""
    r = run_command("load /x", c, read_file=lambda p: b"delay 7\nmtu 99\n", title="")
    assert "\nVDEwf$  (/x) delay 7\n1000 Success\n" in r.text
    assert c.params["delay"][LR].value == 7 and c.params["mtu"][RL].value == 99
