"""UCI files: libuci's grammar, and edits that keep everything else as it was."""

import os

import pytest

from bandix import uci

HAND_WRITTEN = """\
# bandix settings, edited by hand
package bandix

config bandix 'config'
	option iface br-lan   # the LAN bridge
	option port "8686"
	list   additional_subnets '10.8.0.0/24'
	list additional_subnets "fd00:8::/64"
	option mystery 'kept as is'

config limit
	option mac 'AA-BB-CC-DD-EE-01'
	option start '22:00'
	option end 24:00
	option days '1 2 3'

# bindings
config binding 'tv'
	option mac aa:bb:cc:dd:ee:02
	option hostname 'Living '"room"' TV'
	option note "say \\"hi\\" \\\\ there"
	option odd it\\'s\\ fine
	option multi 'two
lines'
"""


def test_parses_libuci_quoting_and_lists():
    f = uci.parse(HAND_WRITTEN)
    config = f.named("config")
    assert config.type == "bandix" and config.get("iface") == "br-lan" and config.get("port") == "8686"
    assert config.get_list("additional_subnets") == ["10.8.0.0/24", "fd00:8::/64"]
    binding = f.by_type("binding")[0]
    assert binding.name == "tv"
    assert binding.get("hostname") == "Living room TV"
    assert binding.get("note") == 'say "hi" \\ there'
    assert binding.get("odd") == "it's fine"
    assert binding.get("multi") == "two\nlines"
    limit = f.by_type("limit")[0]
    assert limit.name is None and limit.get_list("days") == ["1", "2", "3"] and limit.get("end") == "24:00"


def test_unchanged_file_is_written_back_byte_for_byte():
    text = HAND_WRITTEN
    assert uci.parse(text).dumps() == text


def test_edits_touch_only_what_changed():
    text = HAND_WRITTEN
    f = uci.parse(text)
    f.named("config").set("port", "9000")
    f.named("tv").set("hostname", "it's new")
    new = f.add("limit")
    new.set("mac", "aa:bb:cc:dd:ee:03")
    new.set_list("days", ["6", "7"])
    f.remove(f.by_type("limit")[0])
    out = f.dumps()
    assert "\toption port '9000'\n" in out and '"8686"' not in out
    assert "# bandix settings, edited by hand" in out and "# the LAN bridge" in out
    assert "option mystery 'kept as is'" in out
    assert "\toption hostname 'it'\\''s new'\n" in out
    assert "AA-BB-CC-DD-EE-01" not in out
    assert out.endswith("\nconfig limit\n\toption mac 'aa:bb:cc:dd:ee:03'\n\tlist days '6'\n\tlist days '7'\n")
    again = uci.parse(out)
    assert again.named("tv").get("hostname") == "it's new"
    assert again.by_type("limit")[0].get_list("days") == ["6", "7"]


@pytest.mark.parametrize("text, message", [
    ("option a b\n", "outside a section"),
    ("config\n", "'config' takes 1 or 2 arguments"),
    ("config a b c\n", "'config' takes 1 or 2 arguments"),
    ("config x\n\toption a 'open\n", "unterminated ' quote"),
    ("config x\n\tfrobnicate a b\n", "unknown statement"),
    ("config x\n\toption a b c\n", "'option' takes 2 arguments"),
    ("config x\n\toption 'a b' c\n", "invalid option name"),
    ("config x\n\toption a b\\\n", "backslash at the end"),
])
def test_syntax_errors_name_the_line(text, message):
    with pytest.raises(uci.UciSyntaxError, match=message) as exc:
        uci.parse(text, "/etc/config/bandix")
    assert "/etc/config/bandix:" in str(exc.value)


def test_save_is_atomic_and_keeps_the_mode(tmp_path):
    path = tmp_path / "bandix"
    path.write_text(HAND_WRITTEN)
    os.chmod(path, 0o600)
    f = uci.load(path)
    f.named("config").set("port", "1")
    uci.save(path, f)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert uci.load(path).named("config").get("port") == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["bandix"]  # no temporary left behind
    assert uci.load(tmp_path / "missing").sections == []


def test_values_survive_a_round_trip_whatever_they_hold():
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40))
    def check(value):
        f = uci.UciFile()
        f.add("x", "s").set("v", value)
        assert uci.parse(f.dumps()).named("s").get("v") == value

    check()
