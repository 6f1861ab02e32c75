"""SNI from TLS ClientHellos and QUIC Initials: the RFC test vectors, hellos
made by real TLS stacks (OpenSSL through Python's ssl, aioquic), and fuzzing
that only a name, None, Incomplete or ValueError ever comes out."""

from __future__ import annotations

import random
import ssl

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.crypto import CryptoPair
from aioquic.quic.packet import QuicProtocolVersion
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bandix.collect import quic
from bandix.collect.quic import InitialAssembler, initial_sni, open_initial
from bandix.collect.tls import Incomplete, client_hello_sni, handshake_sni

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAME = "a.example.test"
V1, V2 = int(QuicProtocolVersion.VERSION_1), int(QuicProtocolVersion.VERSION_2)
DCID = bytes.fromhex("8394c8f03e515708")

# RFC 9001 Appendix A.2: the client Initial, protected.
RFC9001_CLIENT_INITIAL = bytes.fromhex(
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"
    "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399"
    "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212"
    "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5"
    "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec"
    "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3"
    "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c"
    "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74"
    "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a"
    "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632"
    "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964"
    "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff"
    "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198"
    "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f"
    "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade"
    "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047"
    "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4"
    "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0"
    "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0"
    "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400"
    "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9"
    "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4"
    "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934"
)

# RFC 9369 Appendix A.2: the same client Initial in QUIC version 2.
RFC9369_CLIENT_INITIAL = bytes.fromhex(
    "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485"
    "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04"
    "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d"
    "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a"
    "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500"
    "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68"
    "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33"
    "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3"
    "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd"
    "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520"
    "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045"
    "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f"
    "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12"
    "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5"
    "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4"
    "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b"
    "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7"
    "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9"
    "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91"
    "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd"
    "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db"
    "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18"
    "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15"
    "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc"
    "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61"
    "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710"
    "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b"
    "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e"
    "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce"
    "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1"
    "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1"
    "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd"
    "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3"
    "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89"
    "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53"
    "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19"
    "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b"
    "a18b2faa745b6fe189cf772a9f84cbfc"
)

# The CRYPTO frame both vectors carry (RFC 9001 A.2, "060040f1...").
RFC_CRYPTO_LEN = 0xF1


# --- helpers: real ClientHellos, and Initials protected with aioquic ---


def openssl_hello(server_hostname: str | None) -> bytes:
    """The first flight of a real OpenSSL client: TLS records with the ClientHello."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if server_hostname is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def aioquic_initials(version: int, server_name: str = NAME, alpn: list[str] | None = None) -> list[bytes]:
    """The datagrams a real aioquic client sends first."""
    config = QuicConfiguration(is_client=True, server_name=server_name, alpn_protocols=alpn or ["h3"])
    config.supported_versions = [version]
    conn = QuicConnection(configuration=config)
    conn.connect(("192.0.2.1", 443), now=0.0)
    return [data for data, _addr in conn.datagrams_to_send(now=0.0)]


def varint(value: int) -> bytes:
    for size, prefix in ((1, 0), (2, 0x40), (4, 0x80), (8, 0xC0)):
        if value < 1 << (8 * size - 2):
            return (value | prefix << (8 * size - 8)).to_bytes(size, "big")
    raise ValueError(value)


def crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + varint(offset) + varint(len(data)) + data


def protect(frames: bytes, version: int = V1, dcid: bytes = DCID, pn: int = 0, pad_to: int = 1200) -> bytes:
    """A client Initial carrying `frames`, encrypted by aioquic (an independent
    implementation of the same packet protection)."""
    pair = CryptoPair()
    pair.setup_initial(cid=dcid, is_client=True, version=version)
    ptype = 0b00 if version == V1 else 0b01
    head = bytes([0xC0 | ptype << 4 | 0x01]) + version.to_bytes(4, "big") + bytes([len(dcid)]) + dcid + b"\x00\x00"
    padding = max(0, 4 - len(frames), pad_to - len(head) - 4 - len(frames) - 16)  # at least 4: room for the sample
    payload = frames + bytes(padding)
    header = head + (0x4000 | (2 + len(payload) + 16)).to_bytes(2, "big") + pn.to_bytes(2, "big")
    return pair.encrypt_packet(header, payload, pn)


def split_records(records: bytes, at: int) -> bytes:
    """The same handshake in two TLS records, split at `at` bytes of fragment."""
    head, fragment = records[:5], records[5 : 5 + int.from_bytes(records[3:5], "big")]
    first, second = fragment[:at], fragment[at:]
    return head[:3] + len(first).to_bytes(2, "big") + first + head[:3] + len(second).to_bytes(2, "big") + second


HELLO = openssl_hello(NAME)
HELLO_HS = HELLO[5:]  # one record in OpenSSL's first flight
SNI_END = HELLO.index(NAME.encode()) + len(NAME)
AIOQUIC_HS = b"".join(data for _off, data in sorted(open_initial(aioquic_initials(V1)[0]).crypto))


# --- TLS over TCP ---


def test_openssl_hello_sni():
    assert client_hello_sni(HELLO) == NAME
    assert handshake_sni(HELLO_HS) == NAME


def test_openssl_hello_without_sni_is_none():
    assert client_hello_sni(openssl_hello(None)) is None


def test_name_is_lowercased():
    assert client_hello_sni(openssl_hello("A.Example.TEST")) == NAME


@pytest.mark.parametrize("cut", range(SNI_END))
def test_truncated_hello_is_incomplete(cut):
    with pytest.raises(Incomplete):
        client_hello_sni(HELLO[:cut])


def test_truncated_hello_without_sni_is_incomplete_until_whole():
    hello = openssl_hello(None)
    for cut in range(len(hello)):
        with pytest.raises(Incomplete):
            client_hello_sni(hello[:cut])
    assert client_hello_sni(hello) is None


@pytest.mark.parametrize("at", [1, 4, 40, SNI_END - 10, SNI_END - 5, len(HELLO) - 6])
def test_hello_split_over_two_records(at):
    assert client_hello_sni(split_records(HELLO, at)) == NAME


def test_hello_split_over_records_and_truncated_is_incomplete():
    with pytest.raises(Incomplete):
        client_hello_sni(split_records(HELLO, 20)[:SNI_END])


def test_partial_record_header_is_incomplete():
    for head in (b"", b"\x16", b"\x16\x03", b"\x16\x03\x01\x02"):
        with pytest.raises(Incomplete):
            client_hello_sni(head)


def test_trailing_records_after_the_hello_are_ignored():
    assert client_hello_sni(HELLO + bytes.fromhex("140303000101")) == NAME


@pytest.mark.parametrize(
    "payload",
    [
        bytes.fromhex("1703030010") + bytes(16),  # application data
        b"GET / HTTP/1.1\r\n",
        bytes.fromhex("160303000402000000"),  # a ServerHello
        bytes.fromhex("1603030000"),  # an empty handshake record
        bytes.fromhex("1602"),  # not TLS 1.x, judged on a partial header
    ],
)
def test_not_a_client_hello(payload):
    with pytest.raises(ValueError):
        client_hello_sni(payload)


def test_hello_cut_short_by_another_record_is_malformed():
    """A shorter record followed by a non-handshake record: the hello can never complete."""
    short = HELLO[:3] + (SNI_END - 10 - 5).to_bytes(2, "big") + HELLO[5 : SNI_END - 10]
    with pytest.raises(ValueError):
        client_hello_sni(short + bytes.fromhex("140303000101"))


def test_contradicting_lengths_are_malformed():
    hs = bytearray(HELLO_HS)
    hs[1:4] = (len(hs) - 4 - 1).to_bytes(3, "big")  # hello one byte shorter than its extensions
    with pytest.raises(ValueError):
        handshake_sni(bytes(hs))


@pytest.mark.parametrize("name", [b"", b"caf\xc3\xa9.test", b"a b", b"a\x00b"])
def test_bad_host_names(name):
    ext = b"\x00\x00" + (len(name) + 5).to_bytes(2, "big") + (len(name) + 3).to_bytes(2, "big")
    ext += b"\x00" + len(name).to_bytes(2, "big") + name
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + len(ext).to_bytes(2, "big") + ext
    with pytest.raises(ValueError):
        handshake_sni(b"\x01" + len(body).to_bytes(3, "big") + body)


# --- QUIC ---


def test_rfc9001_client_initial():
    assert [(off, len(data)) for off, data in open_initial(RFC9001_CLIENT_INITIAL).crypto] == [(0, RFC_CRYPTO_LEN)]
    assert open_initial(RFC9001_CLIENT_INITIAL).dcid == DCID
    assert initial_sni(RFC9001_CLIENT_INITIAL) == "example.com"


def test_rfc9369_client_initial():
    assert [(off, len(data)) for off, data in open_initial(RFC9369_CLIENT_INITIAL).crypto] == [(0, RFC_CRYPTO_LEN)]
    assert initial_sni(RFC9369_CLIENT_INITIAL) == "example.com"


def test_rfc9001_key_derivation():
    """RFC 9001 A.1 client key, IV and header protection key."""
    assert quic._client_keys(quic.VERSIONS[V1], DCID) == tuple(
        bytes.fromhex(h)
        for h in ("1f369613dd76d5467730efcbe3b1a22d", "fa044b2f42a3fd3b46fb255c", "9f50449e04a0e810283a1e9933adedd2")
    )


def test_tampered_initial_does_not_decrypt():
    packet = bytearray(RFC9001_CLIENT_INITIAL)
    packet[-1] ^= 1
    with pytest.raises(ValueError):
        initial_sni(bytes(packet))


def test_version_1_packet_type_bits_under_version_2_are_not_initial():
    packet = bytearray(RFC9369_CLIENT_INITIAL)
    packet[0] &= 0xCF  # type 0b00 is Retry in version 2
    with pytest.raises(ValueError):
        initial_sni(bytes(packet))


@pytest.mark.parametrize("version", [V1, V2])
def test_aioquic_initial(version):
    (datagram,) = aioquic_initials(version)
    assert initial_sni(datagram) == NAME


@pytest.mark.parametrize("version", [V1, V2])
def test_coalesced_datagram_uses_the_first_packet(version):
    first = protect(crypto_frame(0, AIOQUIC_HS), version, pad_to=0)
    assert initial_sni(first + b"\x40" + bytes(60)) == NAME


@given(seed=st.integers(0, 2**32), pieces=st.integers(1, 12), version=st.sampled_from([V1, V2]))
@settings(FUZZ, max_examples=100)
def test_split_and_reordered_crypto_frames(seed, pieces, version):
    """What Chrome does: the ClientHello in several CRYPTO frames, shuffled,
    with PING and PADDING frames between them."""
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(AIOQUIC_HS)), pieces - 1))
    bounds = list(zip([0, *cuts], [*cuts, len(AIOQUIC_HS)], strict=True))
    rng.shuffle(bounds)
    frames = b"".join(crypto_frame(a, AIOQUIC_HS[a:b]) + rng.choice([b"", b"\x01", b"\x00\x00\x00"]) for a, b in bounds)
    assert initial_sni(protect(frames, version)) == NAME


def test_ack_and_connection_close_frames_are_skipped():
    ack = bytes.fromhex("02") + varint(5) + varint(0) + varint(1) + varint(0) + varint(1) + varint(1)
    ack_ecn = bytes.fromhex("03") + varint(5) + varint(0) + varint(0) + varint(0) + varint(1) + varint(2) + varint(3)
    close = b"\x1c" + varint(0x0A) + varint(0x06) + varint(3) + b"bye"
    frames = ack + ack_ecn + crypto_frame(0, AIOQUIC_HS) + close
    assert initial_sni(protect(frames)) == NAME


def test_unknown_frame_is_malformed():
    with pytest.raises(ValueError):
        initial_sni(protect(b"\x08\x00\x00" + crypto_frame(0, AIOQUIC_HS)))  # a STREAM frame


def test_gap_at_offset_zero_is_incomplete():
    with pytest.raises(Incomplete):
        initial_sni(protect(crypto_frame(10, AIOQUIC_HS[10:])))
    with pytest.raises(Incomplete):
        initial_sni(protect(b"\x01"))  # PING only


@pytest.mark.parametrize(
    "datagram",
    [b"", b"\xc0", bytes.fromhex("c0ff00001d08") + bytes(60), bytes.fromhex("4000000001") + bytes(60)],
)
def test_not_a_v1_or_v2_initial(datagram):
    with pytest.raises(ValueError):
        initial_sni(datagram)


# --- InitialAssembler ---

BIG_ALPN = ["h3", *(chr(ord("a") + i) * 250 for i in range(8))]  # ~2 KB of ALPN: three Initials
LONG_NAME = ".".join(["x" * 60] * 24) + ".example.test"  # ~1.5 KB: the name itself straddles two packets


@pytest.mark.parametrize("version", [V1, V2])
def test_assembler_hello_over_several_packets(version):
    first, *rest = aioquic_initials(version, alpn=BIG_ALPN)
    assert len(rest) >= 1
    asm = InitialAssembler()
    assert asm.feed(("10.0.0.2", 5000), first) == NAME  # aioquic puts server_name before ALPN
    assert len(asm) == 0


def test_assembler_packets_in_reverse_order():
    *rest, last = aioquic_initials(V1, alpn=BIG_ALPN)[::-1]
    asm = InitialAssembler()
    for datagram in rest:
        with pytest.raises(Incomplete):
            asm.feed("conn", datagram)
    assert asm.feed("conn", last) == NAME
    assert len(asm) == 0


@pytest.mark.parametrize("version", [V1, V2])
def test_assembler_name_straddles_packets(version):
    first, second, *_ = aioquic_initials(version, server_name=LONG_NAME)
    with pytest.raises(Incomplete):
        initial_sni(first)
    asm = InitialAssembler()
    with pytest.raises(Incomplete):
        asm.feed("conn", first)
    assert len(asm) == 1
    assert asm.feed("conn", second) == LONG_NAME
    assert len(asm) == 0


def test_assembler_keeps_connections_apart():
    first, second, *_ = aioquic_initials(V1, server_name=LONG_NAME)
    asm = InitialAssembler()
    with pytest.raises(Incomplete):
        asm.feed("conn-a", first)
    with pytest.raises(Incomplete):
        asm.feed("conn-b", second)
    assert len(asm) == 2


def test_assembler_evicts_the_oldest():
    asm = InitialAssembler(max_pending=2)
    hellos = [aioquic_initials(V1, server_name=LONG_NAME) for _ in range(3)]
    for i, (first, *_rest) in enumerate(hellos):
        with pytest.raises(Incomplete):
            asm.feed(i, first)
    assert len(asm) == 2
    with pytest.raises(Incomplete):
        asm.feed(0, hellos[0][1])  # its first packet was evicted
    assert asm.feed(2, hellos[2][1]) == LONG_NAME


def test_assembler_crypto_limit():
    first, second, *_ = aioquic_initials(V1, server_name=LONG_NAME)
    asm = InitialAssembler(max_crypto=1500)
    with pytest.raises(Incomplete):
        asm.feed("conn", first)
    with pytest.raises(ValueError):
        asm.feed("conn", second)
    assert len(asm) == 0


# --- fuzzing: only str, None, Incomplete or ValueError ---


def outcome(parse, data: bytes) -> str | None:
    try:
        result = parse(data)
    except (Incomplete, ValueError):
        return None
    assert result is None or (isinstance(result, str) and result and result.isascii())
    return result


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """`original` with a few bytes changed, removed or inserted, maybe cut short."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        action = draw(st.sampled_from(["set", "delete", "insert"]))
        if action == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif action == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@given(st.binary(max_size=2000))
@FUZZ
def test_fuzz_random_bytes(data):
    outcome(client_hello_sni, data)
    outcome(handshake_sni, data)
    outcome(initial_sni, data)
    outcome(lambda d: InitialAssembler().feed("k", d), data)
    outcome(client_hello_sni, b"\x16\x03\x01" + data)
    outcome(handshake_sni, b"\x01" + data)


@given(mutated(HELLO))
@FUZZ
def test_fuzz_mutated_tls_hello(data):
    outcome(client_hello_sni, data)
    outcome(handshake_sni, data[5:])


@given(mutated(crypto_frame(0, AIOQUIC_HS) + b"\x01" + crypto_frame(5, AIOQUIC_HS[5:40])))
@FUZZ
def test_fuzz_mutated_initial_frames(frames):
    """Mutated plaintext, then properly encrypted: reaches the frame parser."""
    outcome(initial_sni, protect(frames, pad_to=0))


@given(mutated(RFC9001_CLIENT_INITIAL[:80]), st.sampled_from([RFC9001_CLIENT_INITIAL, RFC9369_CLIENT_INITIAL]))
@FUZZ
def test_fuzz_mutated_initial_header(head, packet):
    outcome(initial_sni, head + packet[80:])


@given(st.lists(st.sampled_from(aioquic_initials(V1, server_name=LONG_NAME)) | st.binary(max_size=100), max_size=6))
@settings(FUZZ, max_examples=100)
def test_fuzz_assembler_sequences(datagrams):
    asm = InitialAssembler(max_pending=4)
    for datagram in datagrams:
        outcome(lambda d: asm.feed("conn", d), datagram)
        assert len(asm) <= 4


def test_only_client_initials_are_worth_decrypting():
    from bandix.collect.quic import is_client_initial

    v1, v2 = (1).to_bytes(4, "big"), (0x6B3343CF).to_bytes(4, "big")
    assert is_client_initial(bytes([0xC3]) + v1 + b"\x08" * 4)  # type 0: Initial in v1
    assert not is_client_initial(bytes([0xE3]) + v1 + b"\x08" * 4)  # type 2: Handshake in v1
    assert is_client_initial(bytes([0xD3]) + v2 + b"\x08" * 4)  # type 1: Initial in v2
    assert not is_client_initial(bytes([0xC3]) + v2 + b"\x08" * 4)  # type 0: 0-RTT in v2
    assert not is_client_initial(bytes([0x43]) + v1 + b"\x08" * 4)  # a short header
    assert not is_client_initial(bytes([0xC3]) + (0xFF00001D).to_bytes(4, "big") + b"\x08" * 4)  # a draft version


def test_without_cryptography_initials_are_recognised_but_not_opened():
    """A Python where `import cryptography` fails (sys.modules entry None, in a child process): quic
    imports, recognises a real aioquic Initial, says why it cannot open it, and raises Unavailable
    (not ValueError, so the collector counts it as quic_unavailable rather than unparsed)."""
    import subprocess
    import sys

    initial = aioquic_initials(1, "quic.test")[0]
    child = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from bandix.collect import quic\n"
        f"d = bytes.fromhex('{initial.hex()}')\n"
        "print(quic.is_client_initial(d))\n"
        "print(quic.unavailable())\n"
        "try:\n    quic.initial_sni(d)\n"
        "except quic.Unavailable as exc:\n    print('Unavailable', str(exc) == quic.unavailable())\n"
        "print('cryptography' in sys.modules and sys.modules['cryptography'] is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "True"
    assert lines[1] == ("the Python package cryptography cannot be imported (No module named "
                        "'cryptography.exceptions'; 'cryptography' is not a package); install python3-cryptography "
                        "(OpenWrt) or bandix[quic] (pip) and restart bandix")
    assert lines[2:] == ["Unavailable True", "True"]
