"""Logging for a plugin that many processes run at once: stderr and an optional shared file.

Never stdout, which carries the CNI result. Each line names the command,
container and interface, so lines of parallel invocations can be told apart.
The file is opened O_APPEND and each line is one write(2), so concurrent
plugins interleave whole lines; nothing rotates it in-process (logrotate's
copytruncate or a size cap outside the plugin does that job).

One process may serve many requests at once (the node agent, one thread each): a
request's context and the handlers it adds (its stderr, its config's logFile) are bound
to it by a context variable, so no request's lines reach another's stderr or file.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import IO

ROOT = "vhostuser_vpp"
_FORMAT = "%(asctime)s pid=%(process)d %(cni_context)s %(levelname)s %(name)s: %(message)s"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


# "ADD cid=... if=... net=..." of the request being served, and the request itself.
_cni_context: contextvars.ContextVar[str] = contextvars.ContextVar("cni_context", default="-")
_request: contextvars.ContextVar[object | None] = contextvars.ContextVar("request", default=None)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.cni_context = _cni_context.get()
        return True


class _RequestFilter(_ContextFilter):
    """Passes only the records logged while serving one request."""

    def __init__(self, request: object) -> None:
        super().__init__()
        self.request = request

    def filter(self, record: logging.LogRecord) -> bool:
        return _request.get() is self.request and super().filter(record)


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
        context = getattr(record, "cni_context", "-")
        if context != "-":
            doc["cni"] = context
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_json_stderr(level: int = logging.INFO) -> None:
    _log_to_stderr(level, _JsonFormatter())


def _log_to_stderr(level: int, formatter: logging.Formatter) -> None:
    logger = logging.getLogger(ROOT)
    logger.propagate = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.addFilter(_context)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    _relevel(logger)


def _relevel(logger: logging.Logger) -> None:
    """The logger's level: the lowest any of its handlers takes, so that a debug line no
    handler wants costs a level check, not a record (a dozen per VPP call)."""
    logger.setLevel(min((h.level for h in logger.handlers), default=logging.WARNING))


def set_context(command: str, container_id: str, ifname: str, network: str = "") -> None:
    parts = [command]
    if container_id:
        parts.append(f"cid={container_id[:12]}")
    if ifname:
        parts.append(f"if={ifname}")
    if network:
        parts.append(f"net={network}")
    _cni_context.set(" ".join(parts))


def level_named(name: str) -> int:
    return _LEVELS[name]


def add_file(path: str, level: int) -> None:
    """The request's config's logFile, for the rest of the request (`request_scope`)."""
    handler = AppendFileHandler(path)
    handler.setLevel(level)
    _bind(handler)


def _bind(handler: logging.Handler) -> None:
    request = _request.get()
    handler.addFilter(_RequestFilter(request) if request is not None else _context)
    handler.setFormatter(_UtcFormatter(_FORMAT))
    logger = logging.getLogger(ROOT)
    logger.addHandler(handler)
    _relevel(logger)


@contextlib.contextmanager
def request_scope(stderr: IO[str], level: int = logging.WARNING) -> Iterator[None]:
    """One CNI request's logging: its lines at `level` and above on its `stderr`, its
    context, and the handlers it adds, all removed and closed when it ends, so that
    requests served one after another, or at once, by one process neither pile up
    handlers nor see each other's lines."""
    logger = logging.getLogger(ROOT)
    request = object()
    tokens = (_request.set(request), _cni_context.set("-"))
    stream = logging.StreamHandler(stderr)
    stream.setLevel(level)
    _bind(stream)
    try:
        yield
    finally:
        for handler in list(logger.handlers):
            if any(isinstance(f, _RequestFilter) and f.request is request for f in handler.filters):
                logger.removeHandler(handler)
                handler.close()
        _relevel(logger)
        _cni_context.reset(tokens[1])
        _request.reset(tokens[0])
