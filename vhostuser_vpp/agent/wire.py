"""The shim's protocol with the node agent: one CNI request per connection.

    shim  -> agent   b"vhostuser-vpp cni/1\\n"
                     u32 length, the environment: b"KEY=VALUE" pairs joined by NUL
                     u32 length, stdin (the network config, as the runtime wrote it)
                     u32 length, the shim's own path (a plugin it delegates to may be it)
    agent -> shim    b"accepted\\n"            at once, before the request is served
                     i32 exit code, u32 length + stdout, u32 length + stderr
              or     b"declined REASON\\n"     and the connection closes

Integers are big-endian. An agent that does not speak the shim's version declines (an
agent too old to know the socket cannot be reached at all); either way the shim serves
the request itself, so the protocol can change without a request ever failing.

Imported by the shim, which starts without `site` and must stay cheap: nothing is imported
here at run time (`typing` alone would add half the shim's start-up), not even
`__future__` (hence the quoted annotations).
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _socket import socket as Connection

HELLO = b"vhostuser-vpp cni/1\n"
ACCEPTED = b"accepted\n"
DECLINED = b"declined "
# Far above any real environment or network config; a bound on what the agent reads.
MAX_ENVIRONMENT = 1 << 20
MAX_STDIN = 16 << 20
MAX_OUTPUT = 64 << 20
MAX_PATH = 4096


class ProtocolError(Exception):
    """The peer sent something this version does not speak, or went away mid-message."""


def encode_request(environ: list[bytes], stdin: bytes, executable: bytes) -> bytes:
    env = b"\0".join(environ)
    return HELLO + _sized(env) + _sized(stdin) + _sized(executable)


def decode_environment(data: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    for item in data.split(b"\0") if data else ():
        key, sep, value = item.partition(b"=")
        if not sep or not key:
            raise ProtocolError(f"environment entry without KEY=: {item[:40]!r}")
        pairs.append((key, value))
    return pairs


def encode_answer(code: int, stdout: bytes, stderr: bytes) -> bytes:
    return code.to_bytes(4, "big", signed=True) + _sized(stdout) + _sized(stderr)


def read_request(conn: "Connection") -> tuple[bytes, bytes, bytes]:
    """(environment, stdin, executable) of a request, after its hello line."""
    hello = read_exactly(conn, len(HELLO))
    if hello != HELLO:
        raise ProtocolError(f"not this protocol version: {hello!r}")
    return read_sized(conn, MAX_ENVIRONMENT), read_sized(conn, MAX_STDIN), read_sized(conn, MAX_PATH)


def read_answer(conn: "Connection") -> tuple[int, bytes, bytes]:
    code = int.from_bytes(read_exactly(conn, 4), "big", signed=True)
    return code, read_sized(conn, MAX_OUTPUT), read_sized(conn, MAX_OUTPUT)


def read_line(conn: "Connection", limit: int = 512) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            raise ProtocolError("connection closed before a whole line")
        line += chunk
        if len(line) > limit:
            raise ProtocolError("line too long")
    return line


def read_sized(conn: "Connection", limit: int) -> bytes:
    size = int.from_bytes(read_exactly(conn, 4), "big")
    if size > limit:
        raise ProtocolError(f"{size} bytes announced, at most {limit}")
    return read_exactly(conn, size)


def read_exactly(conn: "Connection", size: int) -> bytes:
    parts = []
    left = size
    while left:
        chunk = conn.recv(min(left, 1 << 20))
        if not chunk:
            raise ProtocolError(f"connection closed {left} bytes short")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _sized(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data
