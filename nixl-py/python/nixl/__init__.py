"""``nixl``: NIXL 1.5's Python API over nixl-rs, a Rust implementation of NIXL.

``from nixl import nixl_agent, nixl_agent_config`` works as with NVIDIA's package; the
submodules ``nixl._api``, ``nixl._bindings``, ``nixl._utils`` and ``nixl.logging`` carry
NIXL's names. No CUDA wheel variant is needed: one package serves CPU-only and GPU machines.
"""

from . import _api, _bindings, _utils  # noqa: F401
from ._api import (  # noqa: F401
    DEFAULT_COMM_PORT,
    nixl_agent,
    nixl_agent_config,
    nixl_backend_handle,
    nixl_prepped_dlist_handle,
    nixl_xfer_handle,
    nixlBind,
)
from ._bindings import *  # noqa: F401,F403
from ._utils import ba_buf, free_passthru, malloc_passthru, verify_transfer  # noqa: F401
from .logging import LOGGING_CONFIG, get_logger, set_log_level_by_env, setup_logging  # noqa: F401

__version__ = _bindings.__version__
