"""Logging for the ``nixl`` package: NIXL's logger names, format and ``NIXL_LOG_LEVEL``."""

from __future__ import annotations

import logging as _logging
import logging.config as _logging_config
import os

LOGGING_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "simpleFormatter": {
            "format": "%(asctime)s NIXL %(levelname)-7s %(filename)s:%(lineno)d %(message)s",
            "datefmt": "%Y-%m-%d %H:%M:%S",
        }
    },
    "handlers": {
        "consoleHandler": {
            "class": "logging.StreamHandler",
            "level": "INFO",
            "formatter": "simpleFormatter",
            "stream": "ext://sys.stdout",
        }
    },
    "loggers": {"nixl": {"level": "INFO", "handlers": ["consoleHandler"], "propagate": False}},
}

_configured = False


def setup_logging() -> None:
    """Installs the ``nixl`` logger's handler and format (once)."""
    global _configured
    if not _configured:
        _logging_config.dictConfig(LOGGING_CONFIG)
        _configured = True


def set_log_level_by_env(nixl_logger: _logging.Logger) -> None:
    """Applies ``NIXL_LOG_LEVEL`` (DEBUG, INFO, WARN, ERROR, ...) to ``nixl_logger``."""
    level = os.environ.get("NIXL_LOG_LEVEL", "").strip().upper()
    if level in ("WARN", "WARNING"):
        level = "WARNING"
    if level in ("TRACE",):
        level = "DEBUG"
    if level in _logging.getLevelNamesMapping() if hasattr(_logging, "getLevelNamesMapping") else (
        "CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"
    ):
        nixl_logger.setLevel(level)


def get_logger(name: str) -> _logging.Logger:
    """A logger under ``nixl`` (``name`` may be a module's ``__name__``)."""
    setup_logging()
    if name != "nixl" and not name.startswith("nixl."):
        name = "nixl." + name
    logger = _logging.getLogger(name)
    set_log_level_by_env(_logging.getLogger("nixl"))
    return logger
