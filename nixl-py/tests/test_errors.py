"""Bad input raises the right exception; nothing crashes."""

import numpy as np
import pytest

import nixl._bindings as nb

KIB = 1024


@pytest.fixture
def pair(make_agent):
    a = make_agent("a")
    b = make_agent("b")
    src = np.ones(16 * KIB, dtype=np.uint8)
    dst = np.zeros(16 * KIB, dtype=np.uint8)
    a.register_memory([(src.ctypes.data, src.nbytes, 0, "")], "DRAM")
    b.register_memory([(dst.ctypes.data, dst.nbytes, 0, "")], "DRAM")
    a.add_remote_agent(b.get_agent_metadata())
    return a, b, src, dst


def test_wrong_op(pair):
    a, b, src, dst = pair
    l = a.get_xfer_descs([(src.ctypes.data, KIB, 0)], "DRAM")
    r = a.get_xfer_descs([(dst.ctypes.data, KIB, 0)], "DRAM")
    with pytest.raises(KeyError):
        a.initialize_xfer("COPY", l, r, "b")
    lp = a.prep_xfer_dlist("", l)
    rp = a.prep_xfer_dlist("b", r)
    with pytest.raises(KeyError):
        a.make_prepped_xfer("read", lp, [0], rp, [0])
    with pytest.raises(TypeError):
        a.agent.createXferReq(7, l, r, "b")


def test_out_of_range_and_mismatched_indices(pair):
    a, b, src, dst = pair
    lp = a.prep_xfer_dlist("", [(src.ctypes.data, KIB, 0)], "DRAM")
    rp = a.prep_xfer_dlist("b", [(dst.ctypes.data, KIB, 0)], "DRAM")
    for li, ri in [([1], [0]), ([0], [5]), ([-1], [0]), ([0, 0], [0]), ([], []),
                   (np.array([2**40]), np.array([0]))]:
        with pytest.raises(nb.nixlInvalidParamError):
            a.make_prepped_xfer("READ", lp, li, rp, ri)
    with pytest.raises(TypeError):
        a.make_prepped_xfer("READ", lp, ["x"], rp, [0])
    with pytest.raises(TypeError):
        a.make_prepped_xfer("READ", lp, np.zeros((1, 1), dtype=np.int32), rp, [0])
    with pytest.raises(nb.nixlInvalidParamError):
        # lengths differ between the sides
        a.initialize_xfer(
            "READ",
            a.get_xfer_descs([(src.ctypes.data, KIB, 0)], "DRAM"),
            a.get_xfer_descs([(dst.ctypes.data, 2 * KIB, 0)], "DRAM"),
            "b",
        )


def test_unknown_agent_and_unregistered_memory(pair):
    a, b, src, dst = pair
    l = a.get_xfer_descs([(src.ctypes.data, KIB, 0)], "DRAM")
    r = a.get_xfer_descs([(dst.ctypes.data, KIB, 0)], "DRAM")
    with pytest.raises(nb.nixlNotFoundError):
        a.initialize_xfer("READ", l, r, "nobody")
    with pytest.raises(nb.nixlNotFoundError):
        a.prep_xfer_dlist("nobody", r)
    other = np.zeros(KIB, dtype=np.uint8)
    with pytest.raises(nb.nixlNotFoundError):
        a.initialize_xfer("READ", a.get_xfer_descs([(other.ctypes.data, KIB, 0)], "DRAM"), r, "b")
    with pytest.raises(nb.nixlNotFoundError):
        a.initialize_xfer("READ", l, a.get_xfer_descs([(other.ctypes.data, KIB, 0)], "DRAM"), "b")
    with pytest.raises(nb.nixlNotFoundError):
        a.deregister_memory(a.get_reg_descs([(other.ctypes.data, KIB, 0, "")], "DRAM"))
    with pytest.raises(nb.nixlNotFoundError):
        a.send_notif("nobody", b"x")
    with pytest.raises(KeyError):
        a.query_memory([(0, 0, 0, "")], "NOPE", "FILE")


def test_garbage_metadata_and_wrong_types(pair):
    a, b, src, dst = pair
    for junk in [b"", b"garbage", b"\x00" * 100, bytes(range(256)) * 4]:
        with pytest.raises((nb.nixlMismatchError, nb.nixlInvalidParamError)):
            a.add_remote_agent(junk)
    with pytest.raises(TypeError):
        a.add_remote_agent(12)
    with pytest.raises(TypeError):
        a.get_xfer_descs("not descriptors", "DRAM")
    with pytest.raises(TypeError):
        a.get_xfer_descs([(1, 2)], "DRAM")
    with pytest.raises(TypeError):
        a.get_xfer_descs([(1, -2, 0)], "DRAM")
    with pytest.raises(TypeError):
        a.get_xfer_descs(np.array([[1, 2]]), "DRAM")
    with pytest.raises(TypeError):
        a.get_xfer_descs(np.array([[-1, 2, 0]]), "DRAM")
    with pytest.raises(TypeError):
        a.get_reg_descs([(1, 2, 3, 4)], "DRAM")
    with pytest.raises(KeyError):
        a.get_xfer_descs([(1, 2, 3)], "GPU")
    with pytest.raises(TypeError):
        a.register_memory(None, "DRAM")
    with pytest.raises(TypeError):
        a.transfer("handle")
    with pytest.raises(nb.nixlNotFoundError):
        a.agent.postXferReq(12345)
    with pytest.raises(nb.nixlInvalidParamError):
        a.register_memory([(src.ctypes.data, KIB, 0, "")], "DRAM", backends=[]) if False else \
            a.agent.registerMem(a.get_reg_descs([(0, 0, 0, "")], "DRAM"), [99])
    with pytest.raises(TypeError):
        a.wait(object())


def test_not_posted_and_repost_active(pair):
    a, b, src, dst = pair
    l = a.get_xfer_descs([(src.ctypes.data, src.nbytes, 0)], "DRAM")
    r = a.get_xfer_descs([(dst.ctypes.data, dst.nbytes, 0)], "DRAM")
    h = a.initialize_xfer("WRITE", l, r, "b")
    with pytest.raises(nb.nixlNotPostedError):
        a.check_xfer_state(h)
    with pytest.raises(nb.nixlNotPostedError):
        a.wait(h)
    a.transfer(h)
    a.wait(h)
    # Deregistered local memory: the request notices at its next post.
    a.deregister_memory(a.get_reg_descs([(src.ctypes.data, src.nbytes, 0, "")], "DRAM"))
    with pytest.raises(nb.nixlNotFoundError):
        a.transfer(h)
