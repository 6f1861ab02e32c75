"""Read the server name (SNI) from the start of a TLS ClientHello.

Captured packets are untrusted and often partial: the ClientHello may be split
over TLS records and over TCP segments, and the capture may hold only the
first segment. So the walk is strict about declared lengths (a length that
contradicts its enclosing one is ValueError), and running out of bytes that
the lengths promise is Incomplete, which tells the caller to wait for more.
Nothing else ever escapes: these functions run on every captured hello.
"""

from __future__ import annotations

HANDSHAKE = 0x16
CLIENT_HELLO = 1
EXT_SERVER_NAME = 0
HOST_NAME = 0
MAX_RECORD = 2**14 + 2048  # TLSCiphertext limit; a plaintext hello record is well under it
_UNBOUNDED = 1 << 62


class Incomplete(Exception):
    """The bytes end before the SNI could be read: the ClientHello continues in
    a later segment (or packet). Not a ValueError, so callers that drop
    malformed input keep waiting on this one."""


class _Reader:
    """A cursor over `data` that may not pass `end` (the innermost declared
    length). Passing `end` means the lengths contradict each other; passing
    the end of `data` is Incomplete, unless `data` is known to be all there is
    (`final`), then it is ValueError too."""

    def __init__(self, data: bytes, final: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data) if final else _UNBOUNDED
        self.final = final

    def take(self, n: int) -> bytes:
        stop = self.pos + n
        if stop > self.end:
            raise ValueError("field overruns its enclosing length")
        if stop > len(self.data):
            if self.final:
                raise ValueError("handshake ends inside a field")
            raise Incomplete
        out = self.data[self.pos : stop]
        self.pos = stop
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def limit(self, n: int) -> None:
        """The next `n` bytes are a block; reads must stay inside it."""
        if self.pos + n > self.end:
            raise ValueError("block overruns its enclosing length")
        self.end = self.pos + n


def client_hello_sni(payload: bytes) -> str | None:
    """The SNI of the ClientHello at the start of a TCP payload (TLS records)."""
    try:
        handshake, final = _record_fragments(payload)
        return _hello_sni(_Reader(handshake, final))
    except (IndexError, TypeError, OverflowError) as exc:  # a bug guard: never let these reach the caller
        raise ValueError(f"bad ClientHello: {exc}") from exc


def handshake_sni(hs: bytes) -> str | None:
    """The SNI of a ClientHello given as raw handshake bytes (QUIC CRYPTO data)."""
    try:
        return _hello_sni(_Reader(bytes(hs)))
    except (IndexError, TypeError, OverflowError) as exc:
        raise ValueError(f"bad ClientHello: {exc}") from exc


def _record_fragments(payload: bytes) -> tuple[bytes, bool]:
    """The handshake bytes carried by the leading handshake records, and
    whether they are final: a record of another type after them means the
    handshake stream cannot continue in this flight."""
    parts: list[bytes] = []
    pos = 0
    while len(payload) - pos >= 5:
        ctype, major, length = payload[pos], payload[pos + 1], int.from_bytes(payload[pos + 3 : pos + 5], "big")
        if ctype != HANDSHAKE:
            if not parts:
                raise ValueError("not a TLS handshake record")
            return b"".join(parts), True
        if major != 3 or length == 0 or length > MAX_RECORD:
            raise ValueError("bad TLS record header")
        parts.append(payload[pos + 5 : pos + 5 + length])
        pos += 5 + length
    if not parts and not bytes([HANDSHAKE, 3]).startswith(payload[:2]):
        raise ValueError("not a TLS handshake record")  # judged on the partial header we have
    return b"".join(parts), False


def _hello_sni(r: _Reader) -> str | None:
    """Walk the ClientHello up to its server_name extension."""
    if r.uint(1) != CLIENT_HELLO:
        raise ValueError("not a ClientHello")
    r.limit(r.uint(3))
    if r.uint(2) >> 8 != 3:
        raise ValueError("bad legacy_version")
    r.take(32)  # random
    session_id = r.uint(1)
    if session_id > 32:
        raise ValueError("session_id too long")
    r.take(session_id)
    suites = r.uint(2)
    if suites < 2 or suites % 2:
        raise ValueError("bad cipher_suites length")
    r.take(suites)
    compression = r.uint(1)
    if compression < 1:
        raise ValueError("no compression methods")
    r.take(compression)
    if r.pos == r.end:
        return None  # a pre-TLS-1.3 hello may omit extensions altogether
    if r.uint(2) != r.end - r.pos:
        raise ValueError("extensions length disagrees with the hello length")
    while r.pos < r.end:
        ext_type, ext_len = r.uint(2), r.uint(2)
        if ext_type == EXT_SERVER_NAME:
            return _server_name(r, ext_len)
        r.take(ext_len)
    return None


def _server_name(r: _Reader, ext_len: int) -> str | None:
    """The host_name entry of a server_name extension (RFC 6066 section 3)."""
    r.limit(ext_len)
    if r.uint(2) != ext_len - 2:
        raise ValueError("server_name list length disagrees with the extension")
    while r.pos < r.end:
        name_type, name = r.uint(1), r.take(r.uint(2))
        if name_type == HOST_NAME:
            return _host(name)
    return None


def _host(name: bytes) -> str:
    """Printable ASCII only: the name is stored and shown, and a control byte
    or non-ASCII here is garbage or an attack, never a real host name."""
    if not name or any(b < 0x21 or b > 0x7E for b in name):
        raise ValueError("server name is empty or not printable ASCII")
    return name.decode("ascii").lower()
