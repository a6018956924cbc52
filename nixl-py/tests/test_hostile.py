"""The API under hostile or careless input: every bad call raises a clear (typed) exception,
loses nothing and crashes nothing. Probes that could take the interpreter down run in a child
process whose clean exit is asserted."""

import asyncio
import gc
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import nixl._bindings as nb
from conftest import big_pair

KIB = 1024
MIB = 1 << 20
NIXL_ERRORS = tuple(
    getattr(nb, n) for n in dir(nb) if n.startswith("nixl") and n.endswith("Error")
)


def run_child(code: str):
    """Runs ``code`` in a fresh interpreter; it must exit 0 and print OK."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("OK"), (
        f"child rc={out.returncode}\nstdout: {out.stdout[-2000:]}\nstderr: {out.stderr[-2000:]}"
    )


# ----- numpy descriptor arrays -----

def test_descriptor_arrays_of_every_dtype_and_layout():
    rows = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    want = nb.nixlXferDList(nb.DRAM_SEG, [tuple(r) for r in rows])
    for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
               np.uint64, ">i8", ">u8", ">i4", "<u2"):
        arr = np.array(rows, dtype=dt)
        assert nb.nixlXferDList(nb.DRAM_SEG, arr) == want, dt
        ro = arr.copy()
        ro.flags.writeable = False
        assert nb.nixlXferDList(nb.DRAM_SEG, ro) == want, dt
    t = np.array(rows, dtype=np.int64).T.copy().T  # Fortran order
    assert nb.nixlXferDList(nb.DRAM_SEG, t) == want
    assert nb.nixlXferDList(nb.DRAM_SEG, np.array(rows, dtype=np.int64).T.T) == want
    strided = np.array([r for row in rows for r in (row, [0, 0, 0])], dtype=np.uint64)[::2]
    assert nb.nixlXferDList(nb.DRAM_SEG, strided) == want
    assert nb.nixlXferDList(nb.DRAM_SEG, np.array(rows, dtype=np.int32)[::-1][::-1]) == want
    assert len(nb.nixlXferDList(nb.DRAM_SEG, np.zeros((0, 3), dtype=np.uint64))) == 0
    assert len(nb.nixlXferDList(nb.DRAM_SEG, np.zeros((0,), dtype=np.int64))) == 0
    reg = nb.nixlRegDList(nb.DRAM_SEG, np.array(rows, dtype=">i8"))
    assert reg[2] == (7, 8, 9, b"")


@pytest.mark.parametrize("bad", [
    np.array([[-1, 2, 0]], dtype=np.int8),          # would wrap to 2**64-1
    np.array([[5, -2, 0]], dtype=np.int16),
    np.array([[-5, 2, 0]], dtype=">i8"),            # big-endian, converted
    np.array([[1, 2, 0], [-3, 4, 0]], dtype=np.int64).T.copy().T,  # Fortran, converted
    np.array([[1, 2, 0, 0], [-3, 4, 0, 0]], dtype=np.int64)[:, :3],  # strided, converted
    np.array([[1.5, 2, 0]]),                        # floats lose address bits
    np.array([[1.0, 2.0, 0.0]], dtype=np.float32),
    np.array([[float("nan"), 2, 0]]),
    np.array([[True, False, True]]),
    np.array([[1, 2, 0]], dtype=object),
    np.array([["1", "2", "0"]]),
    np.array([[1 + 0j, 2, 0]]),
    np.zeros((2, 2), dtype=np.uint64),
    np.zeros((2, 4), dtype=np.uint64),
    np.zeros((2, 3, 3), dtype=np.uint64),
    np.zeros((3,), dtype=np.uint64),
    np.array(5, dtype=np.uint64),
], ids=lambda a: f"{a.dtype}{a.shape}")
def test_bad_descriptor_arrays_are_refused(make_agent, bad):
    a = make_agent("arr", backends=[])
    with pytest.raises(TypeError):
        a.get_xfer_descs(bad, "DRAM")
    with pytest.raises(TypeError):
        nb.nixlRegDList(nb.DRAM_SEG, bad)


def test_lists_are_copies_of_the_array():
    arr = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint64)
    x = nb.nixlXferDList(nb.DRAM_SEG, arr)
    arr[:] = 0
    arr.resize((100, 3), refcheck=False)
    del arr
    gc.collect()
    assert x[0] == (1, 2, 3) and x[1] == (4, 5, 6)


def test_array_struct_of_a_temporary_is_kept_alive():
    # An array-like whose __array_struct__ belongs to a temporary array: the capsule is all
    # that keeps the memory alive (2.4 MB: freed with munmap, so a read after free crashes).
    run_child(r"""
import numpy as np, nixl._bindings as nb
N = 100000
class Lazy:
    @property
    def __array_struct__(self):
        return np.arange(3 * N, dtype=np.uint64).reshape(N, 3).__array_struct__
class LazyIdx:
    @property
    def __array_struct__(self):
        return np.zeros(N, dtype=np.int64).__array_struct__
for _ in range(20):
    x = nb.nixlXferDList(nb.DRAM_SEG, Lazy())
    assert len(x) == N and x[N - 1] == (3 * N - 3, 3 * N - 2, 3 * N - 1), x[N - 1]
a = nb.nixlAgent("lazy", nb.nixlAgentConfig(True, False, 0))
b = a.createBackend("UCX", {})
m = np.zeros(64, dtype=np.uint8)
a.registerMem(nb.nixlRegDList(nb.DRAM_SEG, [(m.ctypes.data, 64, 0, "")]), [b])
d = nb.nixlXferDList(nb.DRAM_SEG, [(m.ctypes.data, 64, 0)])
p = a.prepXferDlist("", d, [b])
try:
    a.makeXferReq(nb.NIXL_WRITE, p, LazyIdx(), p, LazyIdx())
except nb.nixlInvalidParamError:
    pass  # 100000 indices into a 1-entry list: refused, but read correctly
print("OK")
""")


def test_array_interfaces_that_lie_about_their_size():
    # A null pointer or a shape whose byte count overflows must not be read.
    run_child(r"""
import numpy as np, nixl._bindings as nb
class Fake:
    def __init__(self, shape, ptr=0, typestr="<u8"):
        self.__array_interface__ = {"version": 3, "shape": shape, "typestr": typestr,
                                    "data": (ptr, True), "strides": None}
for shape in [(2**62, 3), (2**61, 3), (3, 2**62), (2**63 - 1,)]:
    for fn in (lambda f: nb.nixlXferDList(nb.DRAM_SEG, f),):
        try:
            fn(Fake(shape))
        except (TypeError, ValueError, OverflowError, MemoryError):
            pass
        else:
            raise AssertionError(f"accepted {shape}")
try:
    nb.nixlXferDList(nb.DRAM_SEG, Fake((5, 3)))
except (TypeError, ValueError):
    pass
else:
    raise AssertionError("read a null pointer")
print("OK")
""")


def test_descriptor_tuples_of_every_wrong_shape():
    d = nb.nixlXferDList(nb.DRAM_SEG)
    for bad in [(1, 2), (1, 2, 3, 4), (), "abc", [1, 2, 3], None, 5, ("1", 2, 3),
                (1.0, 2, 3), (2**64, 1, 0), (1, 2**64, 0), (1, 2, 2**64), (-1, 1, 0),
                (1, -1, 0), (1, 1, -1), (2**200, 0, 0), (object(), 1, 0)]:
        with pytest.raises(TypeError):
            d.addDesc(bad)
        with pytest.raises(TypeError):
            nb.nixlXferDList(nb.DRAM_SEG, [bad])
    assert d.isEmpty()
    r = nb.nixlRegDList(nb.DRAM_SEG)
    for bad in [(1, 2, 3), (1, 2, 3, 4), (1, 2, 3, None), (1, 2, 3, ["x"])]:
        with pytest.raises(TypeError):
            r.addDesc(bad)
    assert r.isEmpty()
    # Extreme but valid values are kept exactly.
    d.addDesc((2**64 - 1, 2**64 - 1, 2**64 - 1))
    assert d[0] == (2**64 - 1, 2**64 - 1, 2**64 - 1)
    with pytest.raises(TypeError):
        nb.nixlXferDList(nb.DRAM_SEG, -1)


def test_initial_sizes_small_and_enormous():
    for cls in (nb.nixlXferDList, nb.nixlRegDList, nb.nixlRemoteDList):
        assert len(cls(nb.DRAM_SEG, 3)) == 3 and len(cls(nb.DRAM_SEG, 0)) == 0
    assert nb.nixlRemoteDList(nb.DRAM_SEG, 1)[0] == (0, 0, 0, "")
    # Sizes no list can have: a clear error, not an abort of the process.
    run_child(r"""
import nixl._bindings as nb
for cls in (nb.nixlXferDList, nb.nixlRegDList, nb.nixlRemoteDList):
    for n in (2**32, 2**40, 2**63, 2**64 - 1):
        try:
            cls(nb.DRAM_SEG, n)
        except (ValueError, MemoryError):
            pass
        else:
            raise AssertionError(n)
    for n in (2**64, -1, 1.5):
        try:
            cls(nb.DRAM_SEG, n)
        except TypeError:
            pass
        else:
            raise AssertionError(n)
print("OK")
""")


def test_ranges_that_wrap_around_are_refused(make_agent):
    a = make_agent("wrap", backends=["UCX"])
    for bad in [(2**64 - 16, 32, 0, ""), (2**64 - 1, 2, 0, ""), (1, 2**64 - 1, 0, "")]:
        with pytest.raises(nb.nixlInvalidParamError):
            a.register_memory([bad], "DRAM")
    buf = np.zeros(KIB, dtype=np.uint8)
    a.register_memory([(buf.ctypes.data, KIB, 0, "")], "DRAM")
    l = a.get_xfer_descs([(buf.ctypes.data, 2**64 - 1, 0)], "DRAM")
    with pytest.raises(nb.nixlNotFoundError):
        a.prep_xfer_dlist("", l)


# ----- indices -----

def test_index_arrays_of_every_kind(make_agent):
    a = make_agent("idx", backends=["UCX"])
    buf = np.zeros(4 * KIB, dtype=np.uint8)
    a.register_memory([(buf.ctypes.data, buf.nbytes, 0, "")], "DRAM")
    descs = [(buf.ctypes.data + i * KIB, KIB // 2, 0) for i in range(4)]
    lp = a.prep_xfer_dlist("", descs, "DRAM")
    rp = a.prep_xfer_dlist("idx", [(d[0] + KIB // 2, KIB // 2, 0) for d in descs], "DRAM")
    for good in ([0, 3], np.array([0, 3], dtype=np.int8), np.array([0, 3], dtype=">i8"),
                 np.array([0, 9, 3], dtype=np.uint16)[::2], np.array([0, 3], dtype=np.uint64),
                 (0, 3), range(0, 4, 3)):
        h = a.make_prepped_xfer("WRITE", lp, good, rp, good)
        h.release()
    for bad in ([4], [-1], [-5], np.array([2**31], dtype=np.int64), np.array([-1], dtype=np.int8),
                np.array([2**64 - 1], dtype=np.uint64), np.array([2**63 - 1], dtype=">i8"),
                np.array([2**32], dtype=np.uint64), [2**31], [2**63 - 1], [-2**63]):
        with pytest.raises(nb.nixlInvalidParamError):
            a.make_prepped_xfer("WRITE", lp, bad, rp, [0] * len(bad))
    for bad in ([0.0], np.array([0.0]), ["0"], [None], "01", [2**64], [2**100], None, 3,
                np.zeros((1, 1), dtype=np.int32), np.array(0), [[0]]):
        with pytest.raises((TypeError, nb.nixlInvalidParamError)):
            a.make_prepped_xfer("WRITE", lp, bad, rp, [0])
    with pytest.raises(TypeError):
        a.make_prepped_xfer("WRITE", lp, [0], "not a handle", [0])
    with pytest.raises(TypeError):
        a.make_prepped_xfer("WRITE", 1.5, [0], rp, [0])


# ----- pickled lists -----

def test_pickled_bytes_truncated_flipped_or_inflated_are_refused():
    x = nb.nixlXferDList(nb.DRAM_SEG, [(i, 2 * i, 3) for i in range(50)])
    r = nb.nixlRegDList(nb.FILE_SEG, [(i, 2, 3, b"path%d" % i) for i in range(20)])
    rng = random.Random(7)
    for lst in (x, r, nb.nixlRemoteDList(nb.DRAM_SEG, [(1, 2, 3, "peer")])):
        good = lst.__getstate__()
        cls = type(lst)
        for cut in range(len(good)):
            with pytest.raises(nb.nixlInvalidParamError):
                cls(nb.DRAM_SEG).__setstate__(good[:cut])
        with pytest.raises(nb.nixlInvalidParamError):
            cls(nb.DRAM_SEG).__setstate__(good + b"\0")
        for _ in range(3000):
            b = bytearray(good)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            t = cls(nb.DRAM_SEG)
            try:
                t.__setstate__(bytes(b))
            except nb.nixlInvalidParamError:
                continue
            assert pickle.loads(pickle.dumps(t)) == t  # whatever loaded is consistent
        # An enormous claimed count is refused before anything is allocated.
        for n in (2**32 - 1, 2**31, 10**9):
            inflated = good[:5] + n.to_bytes(4, "little") + good[9:]
            with pytest.raises(nb.nixlInvalidParamError):
                cls(nb.DRAM_SEG).__setstate__(inflated)
    # Another class's bytes, and objects that are not bytes.
    with pytest.raises(nb.nixlInvalidParamError):
        nb.nixlRegDList(nb.DRAM_SEG).__setstate__(x.__getstate__())
    with pytest.raises(TypeError):
        nb.nixlXferDList(nb.DRAM_SEG).__setstate__("text")
    with pytest.raises(TypeError):
        nb.nixlXferDList(nb.DRAM_SEG).__setstate__(None)
    # A list whose load failed is unchanged.
    keep = nb.nixlXferDList(nb.DRAM_SEG, [(1, 2, 3)])
    with pytest.raises(nb.nixlInvalidParamError):
        keep.__setstate__(b"\x01\x00")
    assert keep[0] == (1, 2, 3) and len(keep) == 1


# ----- handles -----

def test_handles_released_twice_used_after_release_or_on_another_agent(make_agent):
    a = make_agent("a", backends=["UCX"])
    b = make_agent("b", backends=["UCX"])
    bufs = {}
    for ag in (a, b):
        buf = np.zeros(2 * KIB, dtype=np.uint8)
        bufs[ag.name] = buf
        ag.register_memory([(buf.ctypes.data, buf.nbytes, 0, "")], "DRAM")
    a.add_remote_agent(b.get_agent_metadata())
    b.add_remote_agent(a.get_agent_metadata())

    def handles(ag, peer):
        me, them = bufs[ag.name], bufs[peer]
        lp = ag.prep_xfer_dlist("", [(me.ctypes.data, KIB, 0)], "DRAM")
        rp = ag.prep_xfer_dlist(peer, [(them.ctypes.data, KIB, 0)], "DRAM")
        return lp, rp, ag.make_prepped_xfer("WRITE", lp, [0], rp, [0])

    alp, arp, ah = handles(a, "b")
    blp, brp, bh = handles(b, "a")
    # Handles of one agent mean nothing to another, even where the numbers could coincide.
    with pytest.raises(nb.nixlNotFoundError):
        b.check_xfer_state(ah)
    with pytest.raises(nb.nixlNotFoundError):
        b.transfer(ah)
    with pytest.raises(nb.nixlNotFoundError):
        b.agent.releaseXferReq(int(ah))
    with pytest.raises(nb.nixlNotFoundError):
        b.make_prepped_xfer("WRITE", alp, [0], brp, [0])
    with pytest.raises(nb.nixlNotFoundError):
        b.agent.releasedDlistH(int(alp))
    assert a.transfer(ah) in ("DONE", "PROC") and a.wait(ah) == "DONE"
    with pytest.raises(nb.nixlNotPostedError):
        b.check_xfer_state(bh)  # b's own handle, untouched by the calls above
    ah.release()
    ah.release()  # twice: nothing
    a.release_xfer_handle(ah)
    for call in (a.transfer, a.check_xfer_state, a.wait, a.get_xfer_telemetry,
                 a.query_xfer_backend, a.estimate_xfer_cost):
        with pytest.raises(nb.nixlNotFoundError):
            call(ah)
    with pytest.raises(nb.nixlNotFoundError):
        asyncio.run(a.wait_xfer_async(ah))
    alp.release()
    alp.release()
    with pytest.raises(nb.nixlNotFoundError):
        a.make_prepped_xfer("WRITE", alp, [0], arp, [0])
    for bad in (None, "h", 1.5, object()):
        with pytest.raises(TypeError):
            a.check_xfer_state(bad)
    for bad in (0, -1, 2**64 - 1, 12345):
        with pytest.raises((nb.nixlNotFoundError, OverflowError)):
            a.check_xfer_state(bad)


def test_handles_outlive_their_agent_object():
    from nixl._api import nixl_agent

    a, b = nixl_agent("gone-a"), nixl_agent("gone-b")
    src, dst = np.ones(MIB, dtype=np.uint8), np.zeros(MIB, dtype=np.uint8)
    a.register_memory([(src.ctypes.data, MIB, 0, "")], "DRAM")
    b.register_memory([(dst.ctypes.data, MIB, 0, "")], "DRAM")
    a.add_remote_agent(b.get_agent_metadata())
    l = a.get_xfer_descs([(src.ctypes.data, MIB, 0)], "DRAM")
    r = a.get_xfer_descs([(dst.ctypes.data, MIB, 0)], "DRAM")
    h = a.initialize_xfer("WRITE", l, r, "gone-b")
    p = a.prep_xfer_dlist("", l)
    a.transfer(h)
    del a, b  # the Python agents go; the handles keep what they need
    gc.collect()
    assert h._agent.waitXferReq(int(h), None) == nb.NIXL_SUCCESS
    assert (dst == 1).all()
    h.release()
    p.release()
    del h, p
    gc.collect()


@pytest.mark.parametrize("timeout", [float("nan")])
def test_wait_timeouts_that_are_not_numbers(make_agent, timeout):
    a, b, src, dst, l, r = big_pair(make_agent, 64 * KIB)
    h = a.initialize_xfer("WRITE", l, r, "b")
    a.transfer(h)
    with pytest.raises(ValueError):
        a.wait(h, timeout)
    with pytest.raises(ValueError):
        a.agent.waitXferReq(int(h), timeout)
    with pytest.raises(ValueError):
        a.wait_notifs(timeout)
    for bad in ("1", [1], object()):
        with pytest.raises(TypeError):
            a.wait(h, bad)
        with pytest.raises(TypeError):
            a.wait_notifs(bad)
    assert a.wait(h) == "DONE"


def test_wait_timeouts_negative_infinite_or_huge(make_agent):
    a, b, src, dst, l, r = big_pair(make_agent, 16 * MIB)
    h = a.initialize_xfer("WRITE", l, r, "b", b"done")
    a.transfer(h)
    assert a.wait(h, -1) in ("DONE", "PROC")
    assert a.wait(h, -1e300) in ("DONE", "PROC")
    assert a.wait_notifs(-5) in ({}, {"a": [b"done"]})
    for t in (float("inf"), 1e300, 1e19, 2.0**64, 10**30):
        assert a.wait(h, t) == "DONE"
        assert a.wait([h, h], t) == ["DONE", "DONE"]
        assert a.agent.waitXferReq(int(h), t) == nb.NIXL_SUCCESS
    got = {}
    for t in (float("inf"), 1e300):
        a.send_notif("b", b"x")
        got = b.wait_notifs(t)
        assert got and all(got.values())


def test_release_while_another_thread_waits_cancels_it(make_agent):
    # The waiting thread holds the request too: release must still cancel the transfer and
    # return only once its memory is no longer written, waking the waiter.
    a, b, src, dst, l, r = big_pair(make_agent, 256 * MIB)
    h = a.initialize_xfer("READ", l, r, "b")  # writes into a's own `src`
    outcome = []

    entered = threading.Event()

    def waiter():
        try:
            entered.set()
            outcome.append(a.wait(h))
        except Exception as e:
            outcome.append(e)

    a.transfer(h)
    t = threading.Thread(target=waiter)
    t.start()
    entered.wait()
    time.sleep(0.05)  # let the waiter get inside the native wait (not a timing assertion)
    h.release()
    after = src.copy()
    t.join(120)
    assert not t.is_alive(), "the waiter was not woken by release"
    assert (src == after).all(), "the transfer kept writing after release() returned"
    assert outcome == ["DONE"] or isinstance(outcome[0], nb.nixlCancelledError), outcome


def test_threads_release_and_check_one_handle(make_agent):
    a, b, src, dst, l, r = big_pair(make_agent, MIB)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(20):
            h = a.initialize_xfer("WRITE", l, r, "b")
            a.transfer(h)
            errors = []
            go = threading.Barrier(8)

            def worker(i):
                try:
                    go.wait()
                    if i % 2:
                        h.release()
                    else:
                        try:
                            a.check_xfer_state(h)
                        except nb.nixlNotFoundError:
                            pass  # released by a neighbour: the expected error
                except BaseException as e:
                    errors.append(e)

            ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            assert not errors, errors
    finally:
        sys.setswitchinterval(old)


def test_asyncio_waits_cancelled_then_awaited_again(make_agent):
    a, b, src, dst, l, r = big_pair(make_agent, 64 * MIB)

    async def main():
        h = a.initialize_xfer("WRITE", l, r, "b", b"n1")
        a.transfer(h)
        for _ in range(3):
            w = asyncio.ensure_future(a.wait_xfer_async(h))
            n = asyncio.ensure_future(b.wait_notifs_async())
            await asyncio.sleep(0)
            w.cancel()
            n.cancel()
            for f in (w, n):
                try:
                    await f
                except asyncio.CancelledError:
                    pass
        state = await a.wait_xfer_async(h)
        notifs = await b.wait_notifs_async()
        return state, notifs

    state, notifs = asyncio.run(asyncio.wait_for(main(), 120))
    assert state == "DONE" and notifs == {"a": [b"n1"]}
    assert (dst == src).all()


def test_asyncio_loops_in_several_threads_share_one_agent(make_agent):
    a, b, src, dst, l, r = big_pair(make_agent, 64 * MIB)
    half = 32 * MIB
    results, errors = {}, []

    def run(i):
        async def main():
            ll = a.get_xfer_descs([(src.ctypes.data + i * half, half, 0)], "DRAM")
            rr = a.get_xfer_descs([(dst.ctypes.data + i * half, half, 0)], "DRAM")
            h = a.initialize_xfer("WRITE", ll, rr, "b")
            a.transfer(h)
            return await a.wait_xfer_async(h)

        try:
            results[i] = asyncio.run(asyncio.wait_for(main(), 60))
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    assert results == {0: "DONE", 1: "DONE"} and (dst == src).all()


# ----- configuration -----

@pytest.mark.parametrize(
    "lone", ["UCX", b"UCX", bytearray(b"UCX"), "", 7, None, [b"UCX"], ["UCX", 1]], ids=repr
)
def test_backends_that_are_not_a_list_of_names_are_refused(lone):
    from nixl._api import nixl_agent_config

    # A str would otherwise be iterated: backends "U", "C", "X".
    want = r'backends must be a list of backend names \(e\.g\. \["UCX"\]\)'
    with pytest.raises(TypeError, match=want):
        nixl_agent_config(backends=lone)


def test_backends_changed_on_the_config_or_passed_to_a_call_as_a_str(make_agent):
    from nixl._api import nixl_agent, nixl_agent_config

    assert nixl_agent_config(backends=("UCX",)).backends == ["UCX"]
    assert nixl_agent_config(backends=iter(["UCX"])).backends == ["UCX"]
    assert nixl_agent_config(backends=[]).backends == []
    conf = nixl_agent_config(backends=["UCX"])
    conf.backends = "UCX"
    with pytest.raises(TypeError, match="list of backend names"):
        nixl_agent("lone-name", conf)
    a = make_agent("lone-name-calls", backends=["UCX"])
    buf = np.zeros(KIB, dtype=np.uint8)
    with pytest.raises(TypeError, match="list of backend names"):
        a.register_memory([(buf.ctypes.data, KIB, 0, "")], "DRAM", backends="UCX")
    # Nothing was registered by the refused call: the first registration is the only one.
    reg = a.register_memory([(buf.ctypes.data, KIB, 0, "")], "DRAM", backends=["UCX"])
    a.deregister_memory(reg, backends=["UCX"])
    with pytest.raises(nb.nixlNotFoundError):
        a.deregister_memory(reg)


def test_file_registration_of_an_fd_that_is_not_open_is_refused(make_agent):
    a = make_agent("closed-fd", backends=["POSIX"])
    # The backend's InvalidParam reaches Python as NIXL's BACKEND ("no backend accepted").
    with pytest.raises(nb.nixlBackendError, match="dev_id 1000000 is not an open file descriptor"):
        a.register_memory([(0, 0, 1_000_000, "")], "FILE")


# ----- names, metadata, notifications -----

def test_remote_names_with_nul_bytes_or_huge(make_agent):
    a = make_agent("names", backends=["UCX"])
    d = a.get_xfer_descs([(1, 1, 0)], "DRAM")
    for name in ["x\0y", "\0", "n" * (4 * MIB), "é\0", b"\xff\xfe", b"a\0b"]:
        with pytest.raises((nb.nixlNotFoundError, UnicodeDecodeError)):
            a.make_connection(name)
        with pytest.raises((nb.nixlNotFoundError, UnicodeDecodeError)):
            a.send_notif(name, b"x")
        with pytest.raises((nb.nixlNotFoundError, UnicodeDecodeError)):
            a.initialize_xfer("READ", d, d, name)
        with pytest.raises((nb.nixlNotFoundError, UnicodeDecodeError)):
            a.prep_xfer_dlist(name, d)
        if name != b"\xff\xfe":  # not UTF-8: no agent can have that name
            assert a.check_remote_metadata(name) is False
            a.remove_remote_agent(name)  # logs the unknown agent, as NIXL does
    with pytest.raises(TypeError):
        a.make_connection(None)
    with pytest.raises(TypeError):
        a.send_notif(5, b"x")


def test_agent_names_odd_but_representable(make_agent):
    with pytest.raises(nb.nixlInvalidParamError):
        make_agent("n" * 100000)
    for name in ["a\0b", "n" * 4000, "é✓"]:
        a = make_agent(name, backends=["UCX"])
        b = make_agent("peer-of-odd", backends=["UCX"])
        assert b.add_remote_agent(a.get_agent_metadata()) == name.encode()
        assert b.check_remote_metadata(name)
        b.remove_remote_agent(name)
        assert not b.check_remote_metadata(name)


def test_garbage_metadata_of_every_size_and_every_bit_flip(make_agent):
    a = make_agent("victim", backends=["UCX"])
    peer = make_agent("peer", backends=["UCX"])
    buf = np.zeros(KIB, dtype=np.uint8)
    peer.register_memory([(buf.ctypes.data, KIB, 0, "")], "DRAM")
    good = peer.get_agent_metadata()
    partial = peer.get_partial_agent_metadata(
        peer.get_reg_descs([(buf.ctypes.data, KIB, 0, "")], "DRAM"), True)
    rng = random.Random(11)
    loaded = 0
    for md in (good, partial):
        junk = [md[:n] for n in range(len(md))]
        junk += [bytes(rng.getrandbits(8) for _ in range(n)) for n in range(0, 600, 7)]
        for _ in range(1500):
            b = bytearray(md)
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            junk.append(bytes(b))
        for j in junk:
            try:
                name = a.add_remote_agent(j)
            except NIXL_ERRORS:
                continue
            loaded += 1  # a flip in a value (an address, a port) still parses: that is fine
            assert isinstance(name, bytes)
            a.remove_remote_agent(name)
    # The agent still works with the genuine metadata afterwards.
    assert a.add_remote_agent(good) == b"peer"
    with pytest.raises(TypeError):
        a.add_remote_agent(None)
    with pytest.raises(TypeError):
        a.add_remote_agent([1, 2, 3, 2**40])


def test_notifications_huge_binary_or_empty(make_agent):
    a = make_agent("tx", backends=["UCX"])
    b = make_agent("rx", backends=["UCX"])
    a.add_remote_agent(b.get_agent_metadata())
    payloads = [bytes(range(256)) * 4, b"\0" * 1000, os.urandom(8 * MIB), b"\xff", "é\0x"]
    for p in payloads:
        a.send_notif("rx", p)
    got = []
    while len(got) < len(payloads):
        n = b.wait_notifs(60)
        assert n, "notification lost"
        got += n["tx"]
    want = [p.encode() if isinstance(p, str) else p for p in payloads]
    assert got == want
    for bad in (None, 5, 1.5, [1, 2, 300], object()):
        with pytest.raises(TypeError):
            a.send_notif("rx", bad)


def test_a_bad_notif_map_loses_no_notification(make_agent):
    a = make_agent("tx2", backends=["UCX"])
    b = make_agent("rx2", backends=["UCX"])
    a.add_remote_agent(b.get_agent_metadata())
    a.send_notif("rx2", b"keep")
    assert b.agent.waitNotifs(60)
    for bad in ({"tx2": 5}, {"tx2": "text"}, {"other": None}):
        with pytest.raises(TypeError):
            b.agent.getNotifs(bad)
    assert b.get_new_notifs() == {"tx2": [b"keep"]}
    with pytest.raises(TypeError):
        b.agent.getNotifs([])


def test_interpreter_exits_cleanly_with_transfers_and_waiters_in_flight():
    # Shutdown while a transfer runs, a thread is blocked in wait() and a coroutine awaits:
    # the process must end normally, not crash or hang.
    run_child(r"""
import asyncio, threading, numpy as np
from nixl._api import nixl_agent, nixl_agent_config
size = 256 << 20
a = nixl_agent("exit-a", nixl_agent_config(backends=[]))
b = nixl_agent("exit-b", nixl_agent_config(backends=[]))
for ag in (a, b):
    ag.create_backend("UCX", {"transport": "tcp"})
src = np.ones(size, dtype=np.uint8); dst = np.zeros(size, dtype=np.uint8)
a.register_memory([(src.ctypes.data, size, 0, "")], "DRAM")
b.register_memory([(dst.ctypes.data, size, 0, "")], "DRAM")
a.add_remote_agent(b.get_agent_metadata())
l = a.get_xfer_descs([(src.ctypes.data, size, 0)], "DRAM")
r = a.get_xfer_descs([(dst.ctypes.data, size, 0)], "DRAM")
hs = [a.initialize_xfer("WRITE", l, r, "exit-b") for _ in range(3)]
for h in hs[:2]:
    a.transfer(h)
threading.Thread(target=lambda: a.wait(hs[0]), daemon=True).start()
threading.Thread(target=lambda: b.wait_notifs(), daemon=True).start()
loop = asyncio.new_event_loop()
threading.Thread(target=lambda: loop.run_until_complete(a.wait_xfer_async(hs[1])), daemon=True).start()
print("OK", flush=True)
""")


@pytest.mark.parametrize("call", ["a.wait_notifs()", "a.agent.waitNotifs(1e300)",
                                  "asyncio.run(a.wait_notifs_async())"])
def test_ctrl_c_interrupts_a_wait_without_timeout(call):
    # A wait with no limit sleeps with the GIL released; SIGINT must still end it.
    code = r"""
import asyncio
from nixl._api import nixl_agent
a = nixl_agent("sig-a")
print("WAITING", flush=True)
try:
    CALL
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
""".replace("CALL", call)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        while p.stdout.readline().strip() != "WAITING":  # log lines come first
            assert p.poll() is None, p.stderr.read()
        time.sleep(0.3)  # let it enter the wait (not a timing assertion)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "INTERRUPTED" in out, err[-2000:]


def test_every_list_that_pickles_unpickles():
    # Metadata past what a pickled list may carry is refused when the list is built, not
    # when a peer tries to load it.
    big = b"m" * ((1 << 20) + 1)
    with pytest.raises(ValueError):
        nb.nixlRegDList(nb.DRAM_SEG, [(1, 2, 3, big)])
    with pytest.raises(ValueError):
        nb.nixlRemoteDList(nb.DRAM_SEG, [(1, 2, 3, "a" * ((1 << 20) + 1))])
    r = nb.nixlRegDList(nb.DRAM_SEG)
    with pytest.raises(ValueError):
        r.addDesc((1, 2, 3, big.decode()))
    assert r.isEmpty()
    at_limit = nb.nixlRegDList(nb.FILE_SEG, [(1, 2, 3, big[:-1]), (4, 5, 6, "é\0")])
    assert pickle.loads(pickle.dumps(at_limit)) == at_limit
