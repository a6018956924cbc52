"""NIXL 1.5's Python API (``nixl_agent``, ``nixl_agent_config``, handles) over nixl-rs.

Names, arguments, defaults and return values follow NIXL 1.5. Extensions (not in NIXL, marked
"Extension" below): ``nixl_agent.wait``, ``wait_notifs``, ``wait_xfer_async``,
``wait_notifs_async`` and ``listen_port``: completion and notification waits that sleep until
the transfer threads signal, using no CPU meanwhile, instead of polling ``check_xfer_state``.
"""

from __future__ import annotations

import asyncio
import math
import numbers
import operator
import os
import pickle
import threading
import time
from typing import Optional, Union

import numpy as np

from . import _bindings as nixlBind
from . import _tensors
from ._bindings import DEFAULT_COMM_PORT, nixl_thread_sync_t
from .logging import get_logger

logger = get_logger(__name__)

_MEMS = {
    "DRAM": nixlBind.DRAM_SEG,
    "VRAM": nixlBind.VRAM_SEG,
    "FILE": nixlBind.FILE_SEG,
    "BLOCK": nixlBind.BLK_SEG,
    "OBJ": nixlBind.OBJ_SEG,
    "cpu": nixlBind.DRAM_SEG,
    "cuda": nixlBind.VRAM_SEG,
}
_OPS = {"READ": nixlBind.NIXL_READ, "WRITE": nixlBind.NIXL_WRITE}


def _state(status) -> str:
    if status == nixlBind.NIXL_SUCCESS:
        return "DONE"
    if status == nixlBind.NIXL_IN_PROG:
        return "PROC"
    return "ERR"


def _index(handle) -> int:
    """The native integer of a handle; anything else is a TypeError."""
    return operator.index(handle)


def _name(agent) -> str:
    """An agent name as str: ``add_remote_agent`` returns bytes (as NIXL's does), and callers
    pass that back."""
    if isinstance(agent, (bytes, bytearray)):
        return bytes(agent).decode()
    return agent


def _backend_names(backends) -> list[str]:
    """``backends`` as a list of backend names. A lone name (``"UCX"``) is refused rather than
    iterated, which would ask for one backend per character ("U", "C", "X")."""
    want = 'backends must be a list of backend names (e.g. ["UCX"])'
    if isinstance(backends, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"{want}, not the {type(backends).__name__} {backends!r}")
    try:
        names = list(backends)
    except TypeError:
        raise TypeError(f"{want}, not {type(backends).__name__}") from None
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{want}; {name!r} is not a str")
    return names


class nixl_agent_config:
    """Options for ``nixl_agent``, as in NIXL 1.5."""

    def __init__(
        self,
        enable_prog_thread: bool = True,
        enable_listen_thread: bool = False,
        listen_port: int = DEFAULT_COMM_PORT,
        capture_telemetry: bool = False,
        num_threads: int = 0,
        backends: list[str] = ["UCX"],
        sync_mode: Optional[nixl_thread_sync_t] = None,
    ):
        if sync_mode is not None and not isinstance(sync_mode, nixl_thread_sync_t):
            raise TypeError("sync_mode must be a nixl_thread_sync_t or None")
        self.enable_pthread = enable_prog_thread
        self.enable_listen = enable_listen_thread
        self.port = listen_port
        self.capture_telemetry = capture_telemetry
        self.num_threads = num_threads
        self.backends = _backend_names(backends)
        self.sync_mode = sync_mode


# Makes "release once" atomic across threads releasing one handle together (reentrant: a
# handle collected while another is being released releases itself in the same thread).
_release_lock = threading.RLock()


class _Handle:
    """An integer handle owned by a native agent, released once."""

    __slots__ = ("_agent", "_handle", "_released", "__weakref__")

    def __init__(self, agent, value: int):
        self._agent = agent
        self._handle = value
        self._released = False

    def __int__(self) -> int:
        return self._handle

    def __index__(self) -> int:
        return self._handle

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._handle:#x}, released={self._released})"


class nixl_xfer_handle(_Handle):
    """A transfer request. ``release()`` frees it, canceling an unfinished post and waiting
    until none of its memory is touched. A handle garbage-collected while its transfer runs
    is kept alive natively until the transfer finishes: never freed under the transfer."""

    __slots__ = ()

    def release(self) -> None:
        with _release_lock:
            if self._released:
                return
            self._released = True
        self._agent.releaseXferReq(self._handle)

    def __del__(self):
        if not getattr(self, "_released", True):
            self._released = True
            try:
                self._agent._parkXferReq(self._handle)
            except Exception:  # interpreter shutdown: the agent frees it
                pass


class nixl_prepped_dlist_handle(_Handle):
    """A descriptor list prepared once with ``prep_xfer_dlist``."""

    __slots__ = ()

    def release(self) -> None:
        with _release_lock:
            if self._released:
                return
            self._released = True
        self._agent.releasedDlistH(self._handle)

    def __del__(self):
        if not getattr(self, "_released", True):
            try:
                self.release()
            except Exception:
                pass


nixl_backend_handle = int


class _Waiters:
    """Futures of one asyncio loop waiting on the agent's wake-up descriptor. Every loop that
    waits on one agent (one per thread, say) watches the same descriptor; a wake-up may be
    for any of them, so the loop that drains it wakes the others too."""

    def __init__(self, loop, fd, group):
        self.loop = loop
        self.fd = fd
        self.group = group
        self.futures = []
        loop.add_reader(fd, self._readable)

    def _readable(self):
        try:
            while os.read(self.fd, 4096):
                pass
        except BlockingIOError:
            pass
        self._wake()
        for other in self.group.others(self):
            try:
                other.loop.call_soon_threadsafe(other._wake)
            except RuntimeError:  # its loop closed meanwhile
                pass

    def _wake(self):
        futures, self.futures = self.futures, []
        for f in futures:
            if not f.done():
                f.set_result(None)

    def next_wakeup(self):
        f = self.loop.create_future()
        self.futures.append(f)
        return f

    def close(self):
        try:
            if not self.loop.is_closed():
                self.loop.remove_reader(self.fd)
        except Exception:
            pass


class _WaiterGroup:
    """The `_Waiters` of each loop waiting on one agent."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_loop = {}

    def get(self, loop, fd):
        with self.lock:
            w = self.by_loop.get(loop)
            if w is None:
                for old in [l for l in self.by_loop if l.is_closed()]:
                    self.by_loop.pop(old).close()
                w = self.by_loop[loop] = _Waiters(loop, fd, self)
            return w

    def others(self, me):
        with self.lock:
            return [w for w in self.by_loop.values() if w is not me]

    def close(self):
        with self.lock:
            for w in self.by_loop.values():
                w.close()
            self.by_loop.clear()


class nixl_agent:
    """A NIXL agent: creates its backends, registers memory, exchanges metadata, transfers."""

    def __init__(
        self,
        agent_name: str,
        nixl_conf: Optional[nixl_agent_config] = None,
        instantiate_all: bool = False,
    ):
        if nixl_conf is None:
            nixl_conf = nixl_agent_config()
        # Checked again here: the config is a plain attribute holder and may be changed.
        configured = _backend_names(nixl_conf.backends)
        sync_mode = nixl_conf.sync_mode
        if sync_mode is None:
            sync_mode = (
                nixl_thread_sync_t.NIXL_THREAD_SYNC_STRICT
                if nixl_conf.enable_listen
                else nixl_thread_sync_t.NIXL_THREAD_SYNC_DEFAULT
            )
        self.name = agent_name
        self.notifs: dict[str, list[bytes]] = {}
        self.backends: dict[str, int] = {}
        self.backend_mems: dict[str, list[str]] = {}
        self.backend_options: dict[str, dict[str, str]] = {}
        self.plugin_b_options: dict[str, dict[str, str]] = {}
        self.plugin_mem_types: dict[str, list[str]] = {}
        self.nixl_mems = dict(_MEMS)
        self.nixl_ops = dict(_OPS)
        self._waiters = _WaiterGroup()

        config = nixlBind.nixlAgentConfig(
            nixl_conf.enable_pthread,
            nixl_conf.enable_listen,
            nixl_conf.port,
            sync_mode,
            max(1, nixl_conf.num_threads),
            0,
            100000,
            nixl_conf.capture_telemetry,
        )
        self.agent = nixlBind.nixlAgent(agent_name, config)
        self.plugin_list = self.agent.getAvailPlugins()
        if len(self.plugin_list) == 0:
            raise RuntimeError("No plugins available for NIXL")
        for plugin in self.plugin_list:
            self._load_plugin_params(plugin)

        wanted = self.plugin_list if instantiate_all else configured
        for backend in wanted:
            params = {}
            if nixl_conf.num_threads > 0 and "num_threads" in self.plugin_b_options.get(backend, {}):
                params["num_threads"] = str(nixl_conf.num_threads)
            self.create_backend(backend, params)
        logger.info("Initialized NIXL agent: %s", agent_name)

    def _load_plugin_params(self, plugin: str):
        params, mems = self.agent.getPluginParams(plugin)
        self.plugin_b_options[plugin] = params
        self.plugin_mem_types[plugin] = mems

    # ----- plugins and backends -----

    def get_plugin_list(self) -> list[str]:
        return self.plugin_list

    def get_plugin_mem_types(self, backend: str) -> list[str]:
        if backend not in self.plugin_mem_types:
            logger.warning("Plugin %s is not available", backend)
            return []
        return self.plugin_mem_types[backend]

    def get_plugin_params(self, backend: str) -> dict[str, str]:
        if backend not in self.plugin_b_options:
            logger.warning("Plugin %s is not available", backend)
            return {}
        return self.plugin_b_options[backend]

    def get_backend_mem_types(self, backend: str) -> list[str]:
        if backend not in self.backend_mems:
            logger.warning("Backend %s not instantiated", backend)
            return []
        return self.backend_mems[backend]

    def get_backend_params(self, backend: str) -> dict[str, str]:
        if backend not in self.backend_options:
            logger.warning("Backend %s not instantiated", backend)
            return {}
        return self.backend_options[backend]

    def create_backend(self, backend: str, initParams: dict[str, str] = {}):
        handle = self.agent.createBackend(backend, dict(initParams))
        self.backends[backend] = handle
        params, mems = self.agent.getBackendParams(handle)
        self.backend_mems[backend] = mems
        self.backend_options[backend] = params
        logger.info("Backend %s was instantiated", backend)

    def _backend_handles(self, backends) -> list[int]:
        return [self.backends[b] for b in _backend_names(backends)]

    # ----- descriptors -----

    def _mem(self, mem_type):
        return self.nixl_mems[mem_type]

    def get_reg_descs(self, descs, mem_type: Optional[str] = None) -> "nixlBind.nixlRegDList":
        """A registration list from 4-tuples ``(addr, len, dev, meta)``, an N×3 numpy array,
        a tensor or a list of tensors (a list returns as is)."""
        if isinstance(descs, nixlBind.nixlRegDList):
            return descs
        if _tensors.is_tensor(descs):
            descs = [descs]
        if isinstance(descs, np.ndarray):
            if mem_type is None:
                logger.error("Please specify a mem type if not using Tensors")
                return None
            return nixlBind.nixlRegDList(self._mem(mem_type), descs)
        if isinstance(descs, (list, tuple)):
            if len(descs) > 0 and _tensors.is_tensor(descs[0]):
                mem = _tensors.mem_type(descs[0])
                if any(_tensors.mem_type(t) != mem for t in descs):
                    raise ValueError("all tensors must be on the same kind of device")
                rows = [_tensors.desc(t) + ("",) for t in descs]
                return nixlBind.nixlRegDList(self._mem(mem_type or mem), rows)
            if mem_type is None:
                logger.error("Please specify a mem type if not using Tensors")
                return None
            return nixlBind.nixlRegDList(self._mem(mem_type), list(descs))
        raise TypeError(
            "descs must be a list of (addr, len, dev, meta) tuples, an N×3 numpy array, "
            f"a tensor or a list of tensors, not {type(descs).__name__}"
        )

    def get_xfer_descs(self, descs, mem_type: Optional[str] = None) -> "nixlBind.nixlXferDList":
        """A transfer list from 3-tuples ``(addr, len, dev)``, an N×3 numpy array (read in
        place, the fast path), a tensor, a list of tensors or an existing list."""
        if isinstance(descs, nixlBind.nixlXferDList):
            return descs
        if isinstance(descs, nixlBind.nixlRegDList):
            return descs.trim()
        if _tensors.is_tensor(descs):
            descs = [descs]
        if isinstance(descs, np.ndarray):
            if mem_type is None:
                logger.error("Please specify a mem type if not using Tensors")
                return None
            return nixlBind.nixlXferDList(self._mem(mem_type), descs)
        if isinstance(descs, (list, tuple)):
            if len(descs) > 0 and _tensors.is_tensor(descs[0]):
                mem = _tensors.mem_type(descs[0])
                if any(_tensors.mem_type(t) != mem for t in descs):
                    raise ValueError("all tensors must be on the same kind of device")
                rows = [_tensors.desc(t) for t in descs]
                return nixlBind.nixlXferDList(self._mem(mem_type or mem), rows)
            if mem_type is None:
                logger.error("Please specify a mem type if not using Tensors")
                return None
            return nixlBind.nixlXferDList(self._mem(mem_type), list(descs))
        raise TypeError(
            "descs must be a list of (addr, len, dev) tuples, an N×3 numpy array, "
            f"a tensor or a list of tensors, not {type(descs).__name__}"
        )

    def get_remote_descs(
        self, descs: Union["nixlBind.nixlRemoteDList", list[tuple]], mem_type: Optional[str] = None
    ) -> "nixlBind.nixlRemoteDList":
        """A remote list from 4-tuples ``(addr, len, dev, agent_name)``."""
        if isinstance(descs, nixlBind.nixlRemoteDList):
            return descs
        if mem_type is None:
            logger.error("Please specify a mem type")
            return None
        return nixlBind.nixlRemoteDList(self._mem(mem_type), list(descs))

    def get_serialized_descs(self, descs) -> bytes:
        """Pickled descriptor list(s), for sending to a peer."""
        return pickle.dumps(descs)

    def deserialize_descs(self, serialized_descs: bytes):
        """The descriptor list(s) from ``get_serialized_descs``."""
        return pickle.loads(serialized_descs)

    # ----- registration -----

    def register_memory(
        self, reg_list, mem_type: Optional[str] = None, backends: list[str] = []
    ) -> "nixlBind.nixlRegDList":
        reg_descs = self.get_reg_descs(reg_list, mem_type)
        self.agent.registerMem(reg_descs, self._backend_handles(backends))
        return reg_descs

    def deregister_memory(self, dereg_list, backends: list[str] = []):
        self.agent.deregisterMem(dereg_list, self._backend_handles(backends))

    def query_memory(
        self, reg_list, backend: str, mem_type: Optional[str] = None
    ) -> list[Optional[dict[str, str]]]:
        reg_descs = self.get_reg_descs(reg_list, mem_type)
        return self.agent.queryMem(reg_descs, self.backends[backend])

    def make_connection(self, remote_agent: str, backends: list[str] = []):
        self.agent.makeConnection(_name(remote_agent), self._backend_handles(backends))

    # ----- transfers -----

    def prep_xfer_dlist(
        self,
        agent_name: str,
        xfer_list,
        mem_type: Optional[str] = None,
        backends: list[str] = [],
    ) -> nixl_prepped_dlist_handle:
        """Prepares a list once for many ``make_prepped_xfer`` calls. ``"NIXL_INIT_AGENT"``
        or ``""`` means this agent's own (initiator) memory."""
        descs = self.get_xfer_descs(xfer_list, mem_type)
        agent_name = _name(agent_name)
        if agent_name == "NIXL_INIT_AGENT":
            agent_name = nixlBind.NIXL_INIT_AGENT
        handle = self.agent.prepXferDlist(_name(agent_name), descs, self._backend_handles(backends))
        return nixl_prepped_dlist_handle(self.agent, handle)

    def make_prepped_xfer(
        self,
        operation: str,
        local_xfer_side: nixl_prepped_dlist_handle,
        local_indices,
        remote_xfer_side: nixl_prepped_dlist_handle,
        remote_indices,
        notif_msg: bytes = b"",
        backends: list[str] = [],
        skip_desc_merge: bool = False,
    ) -> nixl_xfer_handle:
        """A request from two prepped lists and index lists (lists or numpy arrays)."""
        op = self.nixl_ops[operation]
        handle = self.agent.makeXferReq(
            op,
            _index(local_xfer_side),
            local_indices,
            _index(remote_xfer_side),
            remote_indices,
            notif_msg,
            self._backend_handles(backends),
            skip_desc_merge,
        )
        return nixl_xfer_handle(self.agent, handle)

    def initialize_xfer(
        self,
        operation: str,
        local_descs: "nixlBind.nixlXferDList",
        remote_descs: "nixlBind.nixlXferDList",
        remote_agent: str,
        notif_msg: bytes = b"",
        backends: list[str] = [],
    ) -> nixl_xfer_handle:
        """A request between two descriptor lists."""
        op = self.nixl_ops[operation]
        handle = self.agent.createXferReq(
            op, local_descs, remote_descs, _name(remote_agent), notif_msg, self._backend_handles(backends)
        )
        return nixl_xfer_handle(self.agent, handle)

    def transfer(self, handle: nixl_xfer_handle, notif_msg: bytes = b"") -> str:
        """Posts the request: ``"DONE"`` or ``"PROC"``; failures raise their exception."""
        return _state(self.agent.postXferReq(_index(handle), notif_msg))

    def check_xfer_state(self, handle: nixl_xfer_handle) -> str:
        """``"DONE"`` or ``"PROC"``; a failed transfer raises its exception
        (``nixlRemoteDisconnectError``, ...)."""
        return _state(self.agent.getXferStatus(_index(handle)))

    def get_xfer_telemetry(self, handle: nixl_xfer_handle) -> "nixlBind.nixlXferTelemetry":
        return self.agent.getXferTelemetry(_index(handle))

    def query_xfer_backend(self, handle: nixl_xfer_handle) -> str:
        b = self.agent.queryXferBackend(_index(handle))
        for name, h in self.backends.items():
            if h == b:
                return name
        return ""

    def estimate_xfer_cost(self, req_handle: nixl_xfer_handle) -> tuple[int, int, int]:
        return self.agent.estimateXferCost(_index(req_handle))

    def release_xfer_handle(self, handle: nixl_xfer_handle):
        handle.release()

    def release_dlist_handle(self, handle: nixl_prepped_dlist_handle):
        handle.release()

    def prep_mem_view(self, dlist, *, backends: Optional[list[str]] = None) -> int:
        return self.agent.prepMemView(dlist, self._backend_handles(backends or []))

    def release_mem_view(self, mvh: int) -> None:
        self.agent.releaseMemView(mvh)

    # ----- notifications -----

    def get_new_notifs(self, backends: list[str] = []) -> dict[str, list[bytes]]:
        """Notifications received since the last call, by sender."""
        return self.agent.getNotifs({}, self._backend_handles(backends))

    def update_notifs(self, backends: list[str] = []) -> dict[str, list[bytes]]:
        """Adds new notifications to ``self.notifs`` and returns it."""
        for sender, msgs in self.get_new_notifs(backends).items():
            self.notifs.setdefault(sender, []).extend(msgs)
        return self.notifs

    def check_remote_xfer_done(
        self, remote_agent_name: str, lookup_tag: bytes, backends: list[str] = [], tag_is_prefix=True
    ) -> bool:
        """True (and the notification consumed) if ``remote_agent_name`` sent a notification
        starting with (or, with ``tag_is_prefix=False``, containing) ``lookup_tag``."""
        self.update_notifs(backends)
        msgs = self.notifs.get(_name(remote_agent_name), [])
        for i, msg in enumerate(msgs):
            if (msg.startswith(lookup_tag) if tag_is_prefix else lookup_tag in msg):
                del msgs[i]
                return True
        return False

    def send_notif(self, remote_agent_name: str, notif_msg: bytes, backend: Optional[str] = None):
        handles = [self.backends[backend]] if backend else []
        self.agent.genNotif(_name(remote_agent_name), notif_msg, handles)

    # ----- metadata -----

    def get_agent_metadata(self) -> bytes:
        return self.agent.getLocalMD()

    def get_partial_agent_metadata(
        self, descs: "nixlBind.nixlRegDList", inc_conn_info: bool = False, backends: list[str] = []
    ) -> bytes:
        if descs is None:
            descs = nixlBind.nixlRegDList(nixlBind.DRAM_SEG)
        return self.agent.getLocalPartialMD(descs, inc_conn_info, self._backend_handles(backends))

    def add_remote_agent(self, metadata: bytes) -> str:
        """Loads a peer's metadata; returns its name (as bytes, as NIXL 1.5 does)."""
        return self.agent.loadRemoteMD(metadata)

    def remove_remote_agent(self, agent: str):
        try:
            self.agent.invalidateRemoteMD(_name(agent))
        except nixlBind.nixlNotFoundError as e:
            logger.error("remove_remote_agent(%s): %s", agent, e)

    def send_local_metadata(self, ip_addr: str = "", port: int = DEFAULT_COMM_PORT):
        self.agent.sendLocalMD(ip_addr, port)

    def send_partial_agent_metadata(
        self,
        descs: "nixlBind.nixlRegDList",
        inc_conn_info: bool = False,
        backends: list[str] = [],
        ip_addr: str = "",
        port: int = DEFAULT_COMM_PORT,
        label: str = "",
    ):
        if descs is None:
            descs = nixlBind.nixlRegDList(nixlBind.DRAM_SEG)
        self.agent.sendLocalPartialMD(
            descs, inc_conn_info, self._backend_handles(backends), ip_addr, port, label
        )

    def fetch_remote_metadata(
        self, remote_agent: str, ip_addr: str = "", port: int = DEFAULT_COMM_PORT, label: str = ""
    ):
        self.agent.fetchRemoteMD(_name(remote_agent), ip_addr, port, label)

    def invalidate_local_metadata(self, ip_addr: str = "", port: int = DEFAULT_COMM_PORT):
        self.agent.invalidateLocalMD(ip_addr, port)

    def check_remote_metadata(self, agent: str, descs: "nixlBind.nixlXferDList" = None) -> bool:
        """True once ``agent``'s metadata (covering ``descs``, if given) is loaded."""
        try:
            self.agent.checkRemoteMD(_name(agent), descs)
            return True
        except nixlBind.nixlNotFoundError:
            return False

    # ----- extensions: waiting without polling -----

    @property
    def listen_port(self) -> Optional[int]:
        """Extension: the metadata listener's actual port (when configured as 0), or None."""
        return self.agent.getListenPort()

    def wait(self, handles, timeout: Optional[float] = None):
        """Extension: blocks until each handle's transfer ends or ``timeout`` seconds pass in
        all (None: no limit), sleeping with the GIL released; returns the state (``"DONE"``,
        or ``"PROC"`` on timeout) for one handle, or a list for a list. A failed transfer
        raises its exception, as ``check_xfer_state`` does."""
        if timeout is not None:
            if not isinstance(timeout, numbers.Real):
                raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
            if math.isnan(timeout):
                raise ValueError("timeout must be a number of seconds, not NaN")
        single = isinstance(handles, nixl_xfer_handle)
        hs = [handles] if single else list(handles)
        deadline = None if timeout is None else time.monotonic() + timeout
        out = []
        for h in hs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            out.append(_state(self.agent.waitXferReq(_index(h), left)))
        return out[0] if single else out

    def wait_notifs(
        self, timeout: Optional[float] = None, backends: list[str] = []
    ) -> dict[str, list[bytes]]:
        """Extension: blocks until a notification arrives or ``timeout`` seconds pass, then
        returns ``get_new_notifs()`` (empty on timeout)."""
        if self.agent.waitNotifs(timeout):
            return self.get_new_notifs(backends)
        return {}

    def _next_wakeup(self):
        loop = asyncio.get_running_loop()
        return self._waiters.get(loop, self.agent._wakeFd()).next_wakeup()

    async def wait_xfer_async(self, handle: nixl_xfer_handle) -> str:
        """Extension: awaits the end of the transfer without polling and returns its state
        (``"DONE"``); a failure raises its exception. Other coroutines run meanwhile."""
        while not self.agent._armXfer(_index(handle)):
            await self._next_wakeup()
        return self.check_xfer_state(handle)

    async def wait_notifs_async(self, backends: list[str] = []) -> dict[str, list[bytes]]:
        """Extension: awaits the arrival of notifications and returns them
        (``get_new_notifs()``)."""
        while True:
            while not self.agent._armNotifs():
                await self._next_wakeup()
            notifs = self.get_new_notifs(backends)
            if notifs:
                return notifs

    def __del__(self):
        waiters = getattr(self, "_waiters", None)
        if waiters is not None:
            waiters.close()
