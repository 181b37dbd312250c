"""Member memory (System V segments named by member files): what a member
checks before attaching another's, and what survives its owner's moves."""

import errno
import os
import stat

import pytest

from vde_ipn.io.ipn import shm


@pytest.fixture
def members(tmp_path):
    made = []

    def make(name, size=8192, mode=0o640, removed=True):
        view = shm.create_memory(str(tmp_path / name), size, mode, removed=removed)
        made.append(view)
        return str(tmp_path / name), view
    yield make
    for view in made:
        shm.remove_own_memory(view)


def segment_of(path):
    segid, _owner = shm.memory_id(path)
    ds = shm._stat(segid)
    return (int.from_bytes(ds[20:22], "little") & 0o777, int.from_bytes(ds[8:12], "little"),
            int.from_bytes(ds[48:56], "little"))


def test_the_segment_takes_the_files_mode_and_group(members):
    path, view = members("0.ab", mode=0o604)
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o604
    assert segment_of(path) == (0o604, st.st_gid, 8192)
    view[:5] = b"hello"
    seen = shm.open_memory(path, 8192)
    assert bytes(seen[:5]) == b"hello" and seen.readonly


def test_a_wrong_size_or_creator_or_id_is_refused(members, tmp_path):
    path, _view = members("0.ab")
    with pytest.raises(OSError):
        shm.open_memory(path, 4096)                     # not the size expected
    foreign = str(tmp_path / "1.cd")                     # names root's segment...
    with open(path, "rb") as src, open(foreign, "wb") as dst:
        dst.write(src.read(32))
    os.chown(foreign, 65534, -1)                         # ...in a file nobody owns
    with pytest.raises(OSError) as e:
        shm.open_memory(foreign, 8192)
    assert e.value.errno == errno.EINVAL
    for junk in (b"", b"12x\n", b"\0" * 8):
        with open(foreign, "wb") as f:
            f.write(junk)
        with pytest.raises(OSError):
            shm.open_memory(foreign, 8192)
    os.unlink(foreign)
    os.mkfifo(foreign)                                   # would block a plain open
    with pytest.raises(OSError):
        shm.open_memory(foreign, 8192)


def test_truncating_or_removing_the_file_leaves_the_memory_to_those_attached(members):
    path, view = members("0.ab", removed=False)
    seen = shm.open_memory(path, 8192)
    with open(path, "r+b") as f:
        f.truncate(0)
    shm.remove_own_memory(view)                          # IPC_RMID: attached keep it
    os.unlink(path)
    view[:3] = b"yes"
    assert bytes(seen[:3]) == b"yes"


def test_a_reader_that_comes_late_reads_the_saved_copy(members):
    path, view = members("0.ab", removed=False)
    view[:4] = b"left"
    shm.save_memory(path, view)
    shm.remove_own_memory(view)
    view.release()
    del view
    import gc
    gc.collect()                                         # detached: the segment is gone
    seen = shm.open_memory(path, minimum=16, saved=True)
    assert len(seen) == 8192 and bytes(seen[:4]) == b"left"
    assert bytes(shm.open_memory(path, 8192, saved=True)[:4]) == b"left"
    with open(path, "r+b") as f:                         # its owner grows the copy
        f.truncate(1 << 40)
    with pytest.raises(OSError):
        shm.open_memory(path, 8192, minimum=16, saved=True)   # not read, refused
    with pytest.raises(OSError):
        shm.open_memory(path, minimum=16)                # no copy asked for
