"""Read the server name (SNI) from QUIC client Initial packets.

Initial packets are encrypted, but with keys anyone can derive from the
Destination Connection ID (RFC 9001 section 5.2), so an on-path observer can
open them: remove header protection, decrypt, collect the CRYPTO frames and
walk the ClientHello inside with tls.handshake_sni.

Clients split and reorder CRYPTO frames inside a packet (Chrome does, on
purpose), and a ClientHello with post-quantum key shares needs more than one
packet; InitialAssembler joins those per connection. Like tls, everything
here ends in a name, None, tls.Incomplete or ValueError, whatever arrives.

Decrypting needs the `cryptography` package, which is optional (`pip install
bandix[quic]`; on OpenWrt `opkg install bandix-quic`): about 17 MB installed
(x86-64, with cffi) and 8 MB of RSS, and it is not built for every target. It is
imported on the first Initial only; without it, `unavailable()` says why and
opening an Initial raises Unavailable. Recognising an Initial needs no crypto.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from functools import lru_cache

from bandix.collect.tls import Incomplete, handshake_sni

MAX_CRYPTO = 16 * 1024  # per connection; real ClientHellos are 0.3-3 KB
MAX_PENDING = 256  # connections waiting for their next Initial packet
MAX_CID = 20  # RFC 9000 section 17.2, for versions 1 and 2


class Unavailable(Exception):
    """Initials cannot be decrypted here: cryptography is not installed (see unavailable())."""


_aes: tuple | None = None  # (Cipher, algorithms, modes, AESGCM, InvalidTag), once imported
_missing: str | None = None  # why cryptography could not be imported, once tried


def unavailable() -> str | None:
    """None when Initials can be decrypted; otherwise why not. The first call imports
    cryptography (a failed import is not retried: it is not going to appear)."""
    global _aes, _missing
    if _aes is None and _missing is None:
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:
            _missing = (f"the Python package cryptography cannot be imported ({exc}); install python3-cryptography "
                        "(OpenWrt) or bandix[quic] (pip) and restart bandix")
        else:
            _aes = (Cipher, algorithms, modes, AESGCM, InvalidTag)
    return _missing


@dataclass(frozen=True, slots=True)
class Version:
    """What differs between QUIC versions for a client Initial."""

    salt: bytes
    label_prefix: bytes  # HKDF labels are prefix + b"key" / b"iv" / b"hp"
    initial_type: int  # long-header packet type bits of an Initial


VERSIONS = {
    0x00000001: Version(bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"), b"quic ", 0b00),  # RFC 9001
    0x6B3343CF: Version(bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"), b"quicv2 ", 0b01),  # RFC 9369
}


@dataclass(slots=True)
class Initial:
    """The parts of a decrypted client Initial packet that SNI reading needs."""

    dcid: bytes
    crypto: list[tuple[int, bytes]]  # CRYPTO frames as (offset, data), in packet order


def is_client_initial(datagram: bytes) -> bool:
    """A long-header Initial of version 1 or 2: the packets worth decrypting.

    A client's first packets also include Handshake and 0-RTT packets, which
    carry no ClientHello; they are skipped without being counted as unparsed.
    """
    if len(datagram) < 7 or datagram[0] & 0xC0 != 0xC0:
        return False
    version = VERSIONS.get(int.from_bytes(datagram[1:5], "big"))
    return version is not None and (datagram[0] >> 4) & 0b11 == version.initial_type


def initial_sni(datagram: bytes) -> str | None:
    """The SNI of the ClientHello in the first packet of a UDP datagram."""
    return InitialAssembler().feed(None, datagram)


def open_initial(datagram: bytes) -> Initial:
    """Decrypt the first (client Initial) packet of a datagram; ValueError if
    it is anything else or does not authenticate, Unavailable without cryptography."""
    if unavailable() is not None:
        raise Unavailable(_missing)
    try:
        return _open_initial(bytes(datagram))
    except (IndexError, TypeError, OverflowError) as exc:  # a bug guard: never let these reach the caller
        raise ValueError(f"bad QUIC Initial: {exc}") from exc


class CryptoStream:
    """The CRYPTO stream from offset 0 as far as it is contiguous, plus the
    fragments that arrived ahead of a gap. Bounded: nothing at or past
    `limit` is kept, and at most `limit` bytes are buffered ahead."""

    def __init__(self, limit: int = MAX_CRYPTO) -> None:
        self.limit = limit
        self.data = bytearray()
        self._ahead: dict[int, bytes] = {}

    def add(self, offset: int, chunk: bytes) -> None:
        chunk = chunk[: max(0, self.limit - offset)]
        if offset > len(self.data):
            if len(chunk) > len(self._ahead.get(offset, b"")):
                if sum(map(len, self._ahead.values())) + len(chunk) > self.limit:
                    raise ValueError("too much out-of-order CRYPTO data")
                self._ahead[offset] = chunk
            return
        self.data += chunk[len(self.data) - offset :]
        for ahead in sorted(self._ahead):
            if ahead > len(self.data):
                break
            self.data += self._ahead.pop(ahead)[len(self.data) - ahead :]

    @property
    def empty(self) -> bool:
        return not self.data and not self._ahead

    @property
    def full(self) -> bool:
        return len(self.data) >= self.limit


class InitialAssembler:
    """Joins CRYPTO data over a connection's Initial packets until the SNI can
    be read. Keyed by the caller's connection key and the DCID (which the
    Initial keys derive from); the oldest pending connection is evicted first.
    """

    def __init__(self, max_pending: int = MAX_PENDING, max_crypto: int = MAX_CRYPTO) -> None:
        self.max_pending = max_pending
        self.max_crypto = max_crypto
        self._pending: OrderedDict[tuple[Hashable, bytes], CryptoStream] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def feed(self, key: Hashable, datagram: bytes) -> str | None:
        """The SNI once known (the connection is then forgotten); Incomplete
        while more packets are needed, ValueError for anything unusable."""
        initial = open_initial(datagram)
        slot = (key, initial.dcid)
        stream = self._pending.pop(slot, None) or CryptoStream(self.max_crypto)
        for offset, data in initial.crypto:
            stream.add(offset, data)
        try:
            return handshake_sni(bytes(stream.data))
        except Incomplete:
            if stream.full:
                raise ValueError("no SNI within the CRYPTO size limit") from None
            if not stream.empty:
                self._keep(slot, stream)
            raise

    def _keep(self, slot: tuple[Hashable, bytes], stream: CryptoStream) -> None:
        self._pending[slot] = stream
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)


def _open_initial(packet: bytes) -> Initial:
    """Parse the long header, remove header protection, decrypt (RFC 9001 section 5)."""
    if len(packet) < 7 or not packet[0] & 0x80:
        raise ValueError("not a QUIC long-header packet")
    version = VERSIONS.get(int.from_bytes(packet[1:5], "big"))
    if version is None:
        raise ValueError("not QUIC version 1 or 2")
    if (packet[0] >> 4) & 0b11 != version.initial_type:
        raise ValueError("not an Initial packet")
    pos = 5
    dcid, pos = _cid(packet, pos)
    _scid, pos = _cid(packet, pos)
    token_len, pos = _varint(packet, pos)
    length, pos = _varint(packet, pos + token_len)
    if pos + length > len(packet) or length < 20:
        raise ValueError("bad Initial length")  # a UDP datagram arrives whole, so this is not Incomplete
    key, iv, hp = _client_keys(version, dcid)
    Cipher, algorithms, modes, AESGCM, InvalidTag = _aes  # cryptography's own names
    sample = packet[pos + 4 : pos + 20]
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sample)
    first = packet[0] ^ (mask[0] & 0x0F)
    pn_len = (first & 0x03) + 1
    pn = bytes(a ^ b for a, b in zip(packet[pos : pos + pn_len], mask[1 : 1 + pn_len], strict=True))
    header = bytes([first]) + packet[1:pos] + pn
    nonce = (int.from_bytes(iv, "big") ^ int.from_bytes(pn, "big")).to_bytes(12, "big")
    try:
        payload = AESGCM(key).decrypt(nonce, packet[pos + pn_len : pos + length], header)
    except InvalidTag:
        raise ValueError("Initial does not decrypt") from None
    return Initial(dcid, _crypto_frames(payload))


def _crypto_frames(payload: bytes) -> list[tuple[int, bytes]]:
    """The CRYPTO frames of a decrypted Initial, skipping the other frames an
    Initial may carry (RFC 9000 section 12.4)."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(payload):
        ftype, pos = _varint(payload, pos)
        if ftype in (0x00, 0x01):  # PADDING, PING
            continue
        if ftype in (0x02, 0x03):  # ACK: largest, delay, range count, first range, ranges, ECN counts
            _, pos = _varint(payload, pos)
            _, pos = _varint(payload, pos)
            count, pos = _varint(payload, pos)
            if count > len(payload):
                raise ValueError("bad ACK range count")
            for _ in range(1 + 2 * count + (3 if ftype == 0x03 else 0)):
                _, pos = _varint(payload, pos)
        elif ftype == 0x06:  # CRYPTO
            offset, pos = _varint(payload, pos)
            length, pos = _varint(payload, pos)
            frames.append((offset, _slice(payload, pos, length)))
            pos += length
        elif ftype == 0x1C:  # CONNECTION_CLOSE: error code, frame type, reason
            _, pos = _varint(payload, pos)
            _, pos = _varint(payload, pos)
            length, pos = _varint(payload, pos)
            pos += len(_slice(payload, pos, length))
        else:
            raise ValueError(f"unexpected frame type {ftype:#x} in an Initial")
    return frames


@lru_cache(maxsize=MAX_PENDING)
def _client_keys(version: Version, dcid: bytes) -> tuple[bytes, bytes, bytes]:
    """AEAD key, IV and header-protection key of the client's Initial packets.
    Cached: every packet of a connection's handshake repeats the derivation."""
    initial = hmac.digest(version.salt, dcid, hashlib.sha256)  # HKDF-Extract
    client = _expand_label(initial, b"client in", 32)
    return (
        _expand_label(client, version.label_prefix + b"key", 16),
        _expand_label(client, version.label_prefix + b"iv", 12),
        _expand_label(client, version.label_prefix + b"hp", 16),
    )


def _expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """TLS 1.3 HKDF-Expand-Label with an empty context (RFC 8446 section 7.1);
    one HMAC block is enough for the at most 32 bytes needed here."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return hmac.digest(secret, info + b"\x01", hashlib.sha256)[:length]


def _cid(packet: bytes, pos: int) -> tuple[bytes, int]:
    length = _slice(packet, pos, 1)[0]
    if length > MAX_CID:
        raise ValueError("connection ID too long")
    return _slice(packet, pos + 1, length), pos + 1 + length


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A QUIC variable-length integer (RFC 9000 section 16) and the position after it."""
    first = _slice(data, pos, 1)[0]
    size = 1 << (first >> 6)
    value = int.from_bytes(_slice(data, pos, size), "big") & ((1 << (8 * size - 2)) - 1)
    return value, pos + size


def _slice(data: bytes, pos: int, length: int) -> bytes:
    if pos + length > len(data):
        raise ValueError("QUIC field runs past the end of the packet")
    return data[pos : pos + length]
