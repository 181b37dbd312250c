"""wirefilter's cable model and console, with a seeded RNG (pure)."""

import errno
import random
import statistics

from vde_ipn.engine.wirefilter.channel import LR, RL, Channel, WireValue, parse_value
from vde_ipn.engine.wirefilter.commands import run_command

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
    assert parse_value("LR20+5N [1]") == ((LR,), WireValue(20, 5, "U"))
    assert parse_value("LR20+5N[1]") == ((LR,), WireValue(20, 5, "N"))


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


def test_rates_hold_for_any_seed_and_only_one_way():
    """Over 20000 frames the loss and duplication rates are within about
    five standard deviations of their setting, whatever the seed; the other
    direction keeps every frame once."""
    for seed in range(5):
        c = Channel(random.Random(seed))
        c.set("loss", "LR30")
        c.set("dup", "LR50")
        got = len(run(c, 20000))
        # kept 70%, each kept frame 2 copies on average (1 + 0.5 + 0.25 ...)
        assert abs(got / 20000 - 0.7 * 2) < 0.05, (seed, got)
        assert c.dropped["loss"] == 20000 - (got - c.duplicated)
        assert len(run(c, 2000, RL)) == 2000


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


# -- Markov mode --------------------------------------------------------------

def cmd(c, line, now=0.0, interactive=True):
    return run_command(line, c, read_file=None, title="WireFilter: bidirectional",
                       now=now, interactive=interactive)


def block(r):
    """The data lines of a reply (between DATA and '.')."""
    lines = r.text.split("\n")
    assert lines[0] == "0000 DATA END WITH '.'" and r.text.endswith(".\n1000 Success\n"), r.text
    return lines[1:-3]


def test_values_per_node_and_node_switch():
    c = Channel(random.Random(3))
    assert cmd(c, "loss 100[1]").text == "1022 Invalid argument\n"
    assert cmd(c, "markov-numnodes 2").text == "1000 Success\n"
    assert cmd(c, "loss 100 [1]").rc == 0 and cmd(c, "delay LR20+5N[1]").rc == 0
    assert cmd(c, "dup 3[0]").rc == 0 and cmd(c, "loss 5[2]").rc == errno.EINVAL
    assert cmd(c, "loss 5[-1]").rc == errno.EINVAL
    m1 = c.markov.nodes[1].params
    assert m1["loss"][LR].value == 100 and m1["delay"][LR] == WireValue(20, 5, "N")
    assert m1["delay"][RL].value == 0 and c.markov.nodes[0].params["dup"][RL].value == 3
    assert cmd(c, "delay RL1K+1N [1]").rc == 0         # a blank hides the suffixes
    assert m1["delay"][RL] == WireValue(1, 0, "U")
    assert c.params["loss"][LR].value == 0
    assert cmd(c, "markov-setnode 1").rc == 0 and c.params["loss"][LR].value == 100
    c.push(LR, F, 0)
    assert c.due(0) == [] and c.dropped["loss"] == 1
    assert cmd(c, "markov-setnode 0").rc == 0
    c.push(LR, F, 1)
    assert c.due(1) == [(LR, F)]
    assert cmd(c, "markov-setnode 2").rc == errno.EINVAL and c.markov.current == 0


def test_showinfo_showedges_showcurrent():
    c = Channel(random.Random(3))
    assert block(cmd(c, "showedges")) == ['Edge 0 ->0  ""->"" weigth 100']
    assert block(cmd(c, "showcurrent")) == ['Current Markov Node 0 "" (0,..,0)']
    assert not any(ln.startswith("Node") for ln in block(cmd(c, "showinfo")))
    cmd(c, "markov-numnodes 3")
    cmd(c, "markov-time 1e6")
    assert cmd(c, "markov-name 1,bad").rc == 0 and cmd(c, "markov-name  2 , x y").rc == 0
    assert cmd(c, "setedge 0,1,10").rc == 0 and cmd(c, "setedge 0,2,2.5").rc == 0
    assert cmd(c, "setedge 0,3,1").rc == errno.EINVAL
    assert cmd(c, "setedge 0 ,1,1").rc == errno.EINVAL
    assert block(cmd(c, "showedges 0")) == [
        'Edge 0 ->0  ""->"" weigth 87.5', 'Edge 0 ->1  ""->"bad" weigth 10',
        'Edge 0 ->2  ""->" x y" weigth 2.5']
    assert block(cmd(c, "showedges 2")) == ['Edge 2 ->2  " x y"->" x y" weigth 100']
    assert cmd(c, "showedges 3").text == "0000 DATA END WITH '.'\n.\n1022 Invalid argument\n"
    info = block(cmd(c, "showinfo 1"))
    assert info[:3] == ["WireFilter: bidirectional", 'Node 1 "bad" (0,..,2) Markov-time 1e+06',
                        "Loss   L->R 0+0U   R->L 0+0U"]
    assert block(cmd(c, "showinfo"))[1] == 'Node 0 "" (0,..,2) Markov-time 1e+06'
    assert cmd(c, "showinfo 3").rc == errno.EINVAL
    cmd(c, "markov-setnode 2")
    assert block(cmd(c, "showcurrent")) == ['Current Markov Node 2 " x y" (0,..,2)']
    assert cmd(c, "markov-name 2,").rc == 0
    assert block(cmd(c, "showcurrent")) == ['Current Markov Node 2 "" (0,..,2)']


def test_numnodes_keeps_what_survives():
    c = Channel(random.Random(3))
    cmd(c, "markov-numnodes 3")
    cmd(c, "markov-name 2,two")
    cmd(c, "loss 7[1]")
    cmd(c, "loss 9[2]")
    cmd(c, "setedge 1,0,20")
    cmd(c, "setedge 1,2,30")
    cmd(c, "markov-setnode 2")
    assert cmd(c, "markov-numnodes 0").rc == errno.EINVAL
    cmd(c, "markov-numnodes 2")
    assert c.markov.current == 0 and c.markov.weights == [[100, 0], [20, 80]]
    assert c.markov.nodes[1].params["loss"][LR].value == 7
    cmd(c, "markov-numnodes 3")
    assert c.markov.weights[2] == [0, 0, 100] and c.markov.weights[1] == [20, 80, 0]
    assert c.markov.nodes[2].name is None and c.markov.nodes[2].params["loss"][LR].value == 0
    cmd(c, "markov-numnodes 1")
    assert c.markov.weights == [[100]] and block(cmd(c, "showcurrent")) == [
        'Current Markov Node 0 "" (0,..,0)']


def test_transitions_follow_weights_on_a_fake_clock():
    c = Channel(random.Random(11))
    assert cmd(c, "markov-numnodes 2", now=1000).transitions == []
    assert c.markov.next_due() == 1100
    cmd(c, "setedge 0,1,25")
    cmd(c, "setedge 1,0,100")            # node 1 always goes back to 0 at once
    assert c.markov.advance(1099) == []
    seen, now = [], 1100
    while now < 1100 + 100 * 4000:
        seen += c.markov.advance(now)
        now += 100
    ups = sum(1 for i, k in seen if (i, k) == (0, 1))
    assert all(t in ((0, 1), (1, 0)) for t in seen)
    # from 0: 1 with probability 1/4 (then back to 0 at the next step)
    assert 0.19 < ups / (4000 - ups) < 0.31, ups
    assert c.markov.next_due() == now


def test_missed_periods_are_all_stepped_and_time_restarts():
    c = Channel(random.Random(5))
    cmd(c, "markov-numnodes 2", now=0)
    cmd(c, "setedge 0,1,100")
    cmd(c, "setedge 1,0,100")            # a flip-flop
    # the first step was taken at 0 (when node 0 still kept to itself)
    assert c.markov.advance(350) == [(0, 1), (1, 0), (0, 1)]   # at 100, 200, 300
    assert c.markov.next_due() == 400
    r = cmd(c, "markov-time 50", now=1000)  # restarts: one step at once
    assert r.rc == 0 and r.transitions == [(1, 0)] and c.markov.next_due() == 1050
    assert cmd(c, "markov-time 0").rc == errno.EINVAL
    assert cmd(c, "markov-time x").rc == errno.EINVAL
    assert block(cmd(c, "showinfo"))[1] == 'Node 0 "" (0,..,1) Markov-time 50'
    assert c.markov.transition_line(1, 0) == '3800 Node 1 "" -> 0 ""'


def test_scan_order_and_overweight_edges():
    c = Channel(random.Random(1))
    cmd(c, "markov-numnodes 3")
    cmd(c, "markov-setnode 1")
    cmd(c, "setedge 1,0,150")            # self weight -50: never chosen, 0 always
    for _ in range(20):
        c.markov.current = 1
        c.markov.next_step = 0
        assert c.markov.advance(0) == [(1, 0)]
    c2 = Channel(random.Random(1))
    c2.markov.resize(3, 0)
    c2.markov.set_edge(2, 2, 0)          # self edges are always recomputed
    assert c2.markov.weights[2] == [0, 0, 100]


def test_markov_debug_and_rc_file():
    c = Channel(random.Random(1))
    r = cmd(c, "markov-debug 1")
    assert r.rc == 0 and r.debug == 1 and r.text == "1000 Success\n"
    assert cmd(c, "markov-debug -1").rc == errno.EINVAL
    assert cmd(c, "markov-debug 1", interactive=False).rc == errno.EINVAL
    cmd(c, "markov-numnodes 2", interactive=False)
    assert cmd(c, "markov-name 1,far away", interactive=False).rc == 0
    assert c.markov.transition_line(0, 1) == '3801 Node 0 "" -> 1 "far away"'
