"""The built objects: the Python mirror of bpf/bandix.h matches their BTF, the
big-endian one is really big-endian, and the kernel accepts the programs."""

import ctypes
import json
import re
import struct
import subprocess
from pathlib import Path

import pytest

from bandix.bpf import layout, loader
from bandix.bpf.prefixes import build_table, read_lan_table, write_lan_table

ROOT = Path(__file__).resolve().parents[1]
OBJECTS = {"bpfel": ROOT / "bpf/bandix.bpfel.o", "bpfeb": ROOT / "bpf/bandix.bpfeb.o"}
MIRRORS = {
    "bandix_mac_key": layout.MacKey,
    "bandix_counter": layout.Counter,
    "bandix_dev_stats": layout.DevStats,
    "bandix_slot": layout.Slot,
    "bandix_prefix_v4": layout.PrefixV4,
    "bandix_prefix_v6": layout.PrefixV6,
    "bandix_lan": layout.Lan,
    "bandix_limit": layout.Limit,
    "bandix_packet_event": layout.PacketEvent,
    "bandix_flow_key": layout.FlowKey,
    "bandix_flow": layout.Flow,
}


def btf_dump(obj: Path) -> list[dict]:
    out = subprocess.run(["bpftool", "-j", "btf", "dump", "file", str(obj)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["types"]


def btf_types(obj: Path) -> dict[str, dict]:
    return {t["name"]: t for t in btf_dump(obj) if t.get("name")}


@pytest.mark.parametrize("target", OBJECTS)
def test_struct_layouts_match_btf(target):
    types = btf_types(OBJECTS[target])
    for name, mirror in MIRRORS.items():
        btf = types[name]
        assert btf["size"] == ctypes.sizeof(mirror), name
        members = [(m["name"], m["bits_offset"] // 8) for m in btf["members"]]
        ours = [(f[0], getattr(mirror, f[0]).offset) for f in mirror._fields_]
        assert members == ours, name


@pytest.mark.parametrize("target", OBJECTS)
def test_maps_and_programs_are_the_ones_the_daemon_uses(target):
    dump = btf_dump(OBJECTS[target])
    by_id = {t["id"]: t for t in dump}
    types = {t["name"]: t for t in dump if t.get("name")}
    maps = [by_id[v["type_id"]]["name"] for v in types[".maps"]["vars"]]
    assert sorted(maps) == sorted(layout.ALL_MAPS)
    assert types[layout.PROG_INGRESS]["kind"] == "FUNC" and types[layout.PROG_EGRESS]["kind"] == "FUNC"


def test_header_constants_match_the_python_mirror():
    header = (ROOT / "bpf/bandix.h").read_text()
    defines = dict(re.findall(r"#define (BANDIX_\w+) (\d+)", header))
    assert int(defines["BANDIX_LAYOUT_VERSION"]) == layout.LAYOUT_VERSION
    assert int(defines["BANDIX_SLOTS"]) == layout.SLOTS
    assert int(defines["BANDIX_OVERFLOW"]) == layout.OVERFLOW
    assert int(defines["BANDIX_MAX_PREFIXES"]) == layout.MAX_PREFIXES
    assert int(defines["BANDIX_MAX_LIMITS"]) == layout.MAX_LIMITS
    assert [int(defines[f"BANDIX_{n}"]) for n in ("LIMIT_COPY", "QUOTA_RX", "QUOTA_TX", "QUOTA_BLOCK")] == [
        layout.LIMIT_COPY, layout.QUOTA_RX, layout.QUOTA_TX, layout.QUOTA_BLOCK]
    assert layout.DEFAULT_KEY[6:] == struct.pack("=H", int(defines["BANDIX_DEFAULT_KEY_PAD"]))
    assert int(defines["BANDIX_DNS_CAPTURE"]) == layout.DNS_CAPTURE
    assert int(defines["BANDIX_FLOWS"]) == layout.FLOWS
    assert int(defines["BANDIX_HELLO_PACKETS"]) == layout.HELLO_PACKETS


def test_big_endian_object_is_big_endian_with_btf():
    data = OBJECTS["bpfeb"].read_bytes()
    assert data[:4] == b"\x7fELF" and data[5] == 2  # EI_DATA = ELFDATA2MSB
    assert struct.unpack(">H", data[18:20])[0] == 247  # e_machine = EM_BPF
    sections = subprocess.run(["llvm-objdump", "-h", str(OBJECTS["bpfeb"])], check=True,
                              capture_output=True, text=True).stdout
    assert ".BTF" in sections and " tc " in sections


def test_kernel_loads_the_object_and_pins_its_maps(tmp_pin_dir):
    loaded = loader.load(OBJECTS["bpfel"], tmp_pin_dir)
    try:
        assert not loaded.reused_pins
        assert sorted(p.name for p in tmp_pin_dir.iterdir()) == sorted(layout.PINNED_MAPS)
        lan, control = loaded.maps[layout.MAP_LAN], loaded.maps[layout.MAP_CONTROL]
        import ipaddress
        nets = [ipaddress.ip_network("192.168.1.0/24"), ipaddress.ip_network("fd00:1::/64")]
        write_lan_table(lan, control, nets)
        assert read_lan_table(lan, control) == nets
        write_lan_table(lan, control, nets[:1])  # the other buffer
        assert read_lan_table(lan, control) == nets[:1]
    finally:
        loaded.close()
    again = loader.load(OBJECTS["bpfel"], tmp_pin_dir)
    try:
        assert again.reused_pins
        assert read_lan_table(again.maps[layout.MAP_LAN], again.maps[layout.MAP_CONTROL])[0].prefixlen == 24
    finally:
        again.close()


def test_pins_of_another_layout_are_replaced(tmp_pin_dir):
    loaded = loader.load(OBJECTS["bpfel"], tmp_pin_dir)
    loaded.maps[layout.MAP_CONTROL].update(struct.pack("=I", layout.CONTROL_LAYOUT), struct.pack("=I", 999))
    loaded.close()
    again = loader.load(OBJECTS["bpfel"], tmp_pin_dir)
    try:
        assert not again.reused_pins
    finally:
        again.close()


def test_prefix_table_layout_and_limit():
    import ipaddress
    table = build_table([ipaddress.ip_network("10.1.0.0/16")])
    assert table.n_v4 == 1 and bytes(table.v4[0].addr) == bytes([10, 1, 0, 0])
    assert bytes(table.v4[0].mask) == bytes([255, 255, 0, 0])
    too_many = [ipaddress.ip_network(f"10.{i}.0.0/16") for i in range(layout.MAX_PREFIXES + 1)]
    with pytest.raises(ValueError, match="at most 32"):
        build_table(too_many)
