"""Logging for a plugin that many processes run at once: stderr and an optional shared file.

Never stdout, which carries the CNI result. Each line names the command,
container and interface, so lines of parallel invocations can be told apart.
The file is opened O_APPEND and each line is one write(2), so concurrent
plugins interleave whole lines; nothing rotates it in-process (logrotate's
copytruncate or a size cap outside the plugin does that job).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator

ROOT = "vhostuser_vpp"
_FORMAT = "%(asctime)s pid=%(process)d %(cni_context)s %(levelname)s %(name)s: %(message)s"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _ContextFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.context = "-"

    def filter(self, record: logging.LogRecord) -> bool:
        record.cni_context = self.context
        return True


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class AppendFileHandler(logging.Handler):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            os.write(self.fd, (self.format(record) + "\n").encode(errors="replace"))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        os.close(self.fd)
        super().close()


_context = _ContextFilter()


def configure_stderr(level: int = logging.WARNING) -> None:
    _log_to_stderr(level, _UtcFormatter(_FORMAT))


class _JsonFormatter(_UtcFormatter):
    """One JSON object a line, for a resident process (the node agent) whose logs a
    collector parses: time, level, logger, message, and the fields passed as `extra`."""

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "cni_context"}

    def format(self, record: logging.LogRecord) -> str:
        import json

        doc = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **{k: v for k, v in record.__dict__.items() if k not in self._STANDARD},
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_json_stderr(level: int = logging.INFO) -> None:
    _log_to_stderr(level, _JsonFormatter())


def _log_to_stderr(level: int, formatter: logging.Formatter) -> None:
    logger = logging.getLogger(ROOT)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.addFilter(_context)
    handler.setFormatter(formatter)
    logger.addHandler(handler)


def set_context(command: str, container_id: str, ifname: str, network: str = "") -> None:
    parts = [command]
    if container_id:
        parts.append(f"cid={container_id[:12]}")
    if ifname:
        parts.append(f"if={ifname}")
    if network:
        parts.append(f"net={network}")
    _context.context = " ".join(parts)


def level_named(name: str) -> int:
    return _LEVELS[name]


def add_file(path: str, level: int) -> None:
    handler = AppendFileHandler(path)
    handler.setLevel(level)
    handler.addFilter(_context)
    handler.setFormatter(_UtcFormatter(_FORMAT))
    logging.getLogger(ROOT).addHandler(handler)


@contextlib.contextmanager
def request_scope() -> Iterator[None]:
    """One CNI request's logging: the log file its config names (`add_file`) is closed and
    its context forgotten when it ends, so that requests served one after another by one
    process do not pile up handlers or name each other's containers."""
    logger = logging.getLogger(ROOT)
    before = set(logger.handlers)
    try:
        yield
    finally:
        for handler in [h for h in logger.handlers if h not in before]:
            logger.removeHandler(handler)
            handler.close()
        _context.context = "-"
