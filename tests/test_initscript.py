"""files/bandix.init's start_service and service_triggers, run by /bin/sh under
stand-ins of OpenWrt's shell libraries:

- /etc/rc.common (procd mode): source the script, call start_service, then
  service_triggers, as rc_procd does around procd_open/close_service;
- /lib/functions/procd.sh: every procd_* call is recorded with its arguments;
- /lib/functions.sh config_load & co: the UCI file is turned into the
  `config`/`option`/`list` shell lines `uci export` prints (by our own
  bandix.uci parser) and evaluated into the same CONFIG_* variables.

The command lines are checked against bandix's own argument parser and
Daemon.RESTART_ONLY, so an option SIGHUP applies is never frozen into a flag.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bandix import config, uci
from bandix.daemon import Daemon

REPO = Path(__file__).resolve().parent.parent
INIT = REPO / "files" / "bandix.init"
KEEP_HEADER = (REPO / "files" / "bandix.keep").read_text()

EXPORT = '''
import sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from bandix import uci
path = Path(sys.argv[1])
if not path.exists():
    sys.exit(1)
print("package " + uci.quote(path.name))
for s in uci.parse(path.read_text()).sections:
    print("config " + s.type + (" " + uci.quote(s.name) if s.name else ""))
    for st in s.body:
        if isinstance(st, uci.Statement):
            print(st.keyword + " " + st.args[0] + " " + uci.quote(st.args[1]))
'''

# Our own minimal functions.sh: the variables and calls init scripts rely on.
FUNCTIONS = r'''
config_set() { eval "CONFIG_${1}_${2}=\$3"; }
config() {
	CONFIG_NUM_SECTIONS=$((CONFIG_NUM_SECTIONS + 1))
	CONFIG_SECTION="${2:-cfg$CONFIG_NUM_SECTIONS}"
	CONFIG_SECTIONS="${CONFIG_SECTIONS:+$CONFIG_SECTIONS }$CONFIG_SECTION"
	config_set "$CONFIG_SECTION" TYPE "$1"
}
option() { local name="$1"; shift; config_set "$CONFIG_SECTION" "$name" "$*"; }
list() {
	local name="$1" len old; shift
	eval "len=\${CONFIG_${CONFIG_SECTION}_${name}_LENGTH:-0}"
	len=$((len + 1))
	config_set "$CONFIG_SECTION" "${name}_ITEM$len" "$*"
	config_set "$CONFIG_SECTION" "${name}_LENGTH" "$len"
	eval "old=\${CONFIG_${CONFIG_SECTION}_${name}}"
	config_set "$CONFIG_SECTION" "$name" "${old:+$old }$*"
}
package() { :; }
config_load() {
	local data v s
	for s in $CONFIG_SECTIONS; do
		for v in $(set | sed -n "s/^\\(CONFIG_${s}_[A-Za-z0-9_]*\\)=.*/\\1/p"); do unset "$v"; done
	done
	CONFIG_SECTIONS=; CONFIG_NUM_SECTIONS=0; CONFIG_SECTION=
	data="$("$PYTHON" "$EXPORT_PY" "$UCI_CONFIG_DIR/$1" "$REPO")" || return 1
	eval "$data"
}
config_get() {
	case "$3" in
		"") eval "echo \"\${CONFIG_${1}_${2}:-\${4}}\"" ;;
		*) eval "$1=\${CONFIG_${2}_${3}:-\${4}}" ;;
	esac
}
config_get_bool() {
	local v
	config_get v "$2" "$3" "$4"
	case "$v" in
		1|on|true|yes|enabled) v=1 ;;
		0|off|false|no|disabled) v=0 ;;
		*) v="$4" ;;
	esac
	eval "$1=\$v"
}
config_foreach() {
	local fn="$1" type="$2" section t; shift 2
	for section in $CONFIG_SECTIONS; do
		config_get t "$section" TYPE
		[ "$t" = "$type" ] && "$fn" "$section" "$@"
	done
	return 0
}
'''

# Our own procd.sh: each call becomes one record, arguments kept exactly.
PROCD = r'''
procd_record() { printf '%s\037' "$@" >> "$PROCD_LOG"; printf '\036' >> "$PROCD_LOG"; }
for f in procd_open_instance procd_close_instance procd_set_param procd_append_param \
	procd_add_reload_trigger procd_add_reload_interface_trigger procd_add_interface_trigger; do
	eval "$f() { procd_record $f \"\$@\"; }"
done
'''

DRIVER = '''
. "$STANDIN/functions.sh"
. "$STANDIN/procd.sh"
. "$INIT"
start_service; echo "start_service=$?" >> "$STANDIN/status"
service_triggers
'''

NETWORK = """
config interface 'loopback'
	option device 'lo'

config device
	option name 'br-lan'
	option type 'bridge'
	list ports 'lan1'

config interface 'lan'
	option device 'br-lan'
	option proto 'static'

config interface 'guest'
	option device 'br-guest'

config interface 'wan'
	option device 'eth1'
	option proto 'dhcp'
"""

HEAD = ["/usr/sbin/bandix", "--config-dir", "/etc/config", "--syslog"]
DEFAULT_COMMAND = [*HEAD, "--iface", "br-lan", "--data-dir", "/tmp/bandix",
                   "--port", "8686", "--listen", "127.0.0.1", "--enable-traffic", "--enable-flows",
                   "--flow-retention-days", "1", "--flow-detail-hours", "2", "--enable-connection"]
# No reload_signal (procd would send it instead of restarting, instance.c instance_restart);
# stdout is not logged, stderr is (daemon.err, for what Python prints when it fails).
PARAMS = [["procd_set_param", "respawn"], ["procd_set_param", "stderr", "1"]]


def run(tmp_path: Path, bandix_uci: str, network: str = NETWORK, init: Path = INIT,
        keep_header: bool = True) -> dict:
    """Run the init script; returns the instance's command, its other params, the triggers,
    start_service's status, stderr and the keep.d file."""
    standin, etc, root = tmp_path / "standin", tmp_path / "config", tmp_path / "root"
    for d in (standin, etc, root):
        d.mkdir(parents=True, exist_ok=True)
    (standin / "functions.sh").write_text(FUNCTIONS)
    (standin / "procd.sh").write_text(PROCD)
    (standin / "export.py").write_text(EXPORT)
    (etc / "bandix").write_text(bandix_uci)
    (etc / "network").write_text(network)
    keep = root / "lib/upgrade/keep.d/bandix"
    keep.parent.mkdir(parents=True, exist_ok=True)
    if keep_header:
        keep.write_text(KEEP_HEADER)
    log = standin / "procd.log"
    (standin / "bin").mkdir(exist_ok=True)
    logger = standin / "bin" / "logger"  # not the host's syslog
    logger.write_text(f'#!/bin/sh\necho "$*" >> {standin / "logger.txt"}\n')
    logger.chmod(0o755)
    env = {"PATH": f"{standin / 'bin'}:{os.environ['PATH']}", "PYTHON": sys.executable,
           "EXPORT_PY": str(standin / "export.py"),
           "REPO": str(REPO), "UCI_CONFIG_DIR": str(etc), "PROCD_LOG": str(log), "STANDIN": str(standin),
           "INIT": str(init), "IPKG_INSTROOT": str(root)}
    result = subprocess.run(["/bin/sh", "-c", DRIVER], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    calls = [rec.split("\x1f")[:-1] for rec in log.read_text().split("\x1e")[:-1]] if log.exists() else []
    command: list[str] = []
    params, triggers = [], []
    for call in calls:
        if call[0] in ("procd_set_param", "procd_append_param") and call[1] == "command":
            command += call[2:]
        elif call[0] == "procd_set_param":
            params.append(call)
        elif "trigger" in call[0]:
            triggers.append(call)
    opened = [c[0] for c in calls if c[0] in ("procd_open_instance", "procd_close_instance")]
    return {"command": command, "params": params, "triggers": triggers, "instances": opened,
            "status": (standin / "status").read_text().strip(), "stderr": result.stderr,
            "keep": keep.read_text() if keep.is_file() else None,
            "logger": (standin / "logger.txt").read_text() if (standin / "logger.txt").exists() else ""}


def default_config() -> str:
    return (REPO / "files" / "bandix.config").read_text()


def test_default_config(tmp_path: Path) -> None:
    """The shipped /etc/config/bandix: br-lan, modules on, data in /tmp, nothing to keep."""
    out = run(tmp_path, default_config())
    assert out["command"] == DEFAULT_COMMAND
    assert out["params"] == PARAMS
    assert out["instances"] == ["procd_open_instance", "procd_close_instance"]
    assert out["triggers"] == [["procd_add_reload_trigger", "bandix"],
                               ["procd_add_reload_interface_trigger", "lan"]]
    assert out["status"] == "start_service=0"
    assert out["keep"] == KEEP_HEADER


@pytest.mark.parametrize("ifaces", ["\tlist iface 'br-lan'\n\tlist iface 'br-guest'\n",
                                    "\toption iface 'br-lan br-guest'\n"])
def test_several_interfaces_as_list_or_option(tmp_path: Path, ifaces: str) -> None:
    """`uci add_list` and `uci set bandix.config.iface='a b'` give the same flags and triggers."""
    out = run(tmp_path, f"config bandix 'config'\n{ifaces}")
    assert out["command"] == [*HEAD, "--iface", "br-lan",
                              "--iface", "br-guest", "--data-dir", "/tmp/bandix"]
    assert out["triggers"] == [["procd_add_reload_trigger", "bandix"],
                               ["procd_add_reload_interface_trigger", "lan"],
                               ["procd_add_reload_interface_trigger", "guest"]]


def test_modules_off_and_reloadable_options_are_not_flags(tmp_path: Path) -> None:
    """Modules off: no switches. Options SIGHUP applies stay out of the command line."""
    out = run(tmp_path, "config bandix 'config'\n\toption iface 'br-lan'\n"
                        "\toption traffic_enabled '0'\n\toption dns_enabled '1'\n\toption flows_enabled 'off'\n"
                        "\toption connection_enabled 'no'\n\toption log_level 'debug'\n"
                        "\tlist additional_subnets '10.8.0.0/24'\n\toption leases_file '/tmp/x.leases'\n"
                        "\toption dns_max_records '500'\n")
    assert out["command"] == [*HEAD, "--iface", "br-lan",
                              "--data-dir", "/tmp/bandix"]


@pytest.mark.parametrize(("data_dir", "kept"), [("/etc/bandix", "/etc/bandix"), ("/overlay/bandix/", "/overlay/bandix"),
                                                ("/mnt/usb/bandix", None), ("/tmp/bandix", None),
                                                ("/var/lib/bandix", None)])
def test_persistence_and_keep_file(tmp_path: Path, data_dir: str, kept: str | None) -> None:
    """A data dir on flash is listed in /lib/upgrade/keep.d/bandix for sysupgrade; tmpfs and disks are not."""
    out = run(tmp_path, f"config bandix 'config'\n\tlist iface 'br-lan'\n\toption data_dir '{data_dir}'\n"
                        "\toption traffic_persist_history '1'\n\toption traffic_flush_interval_seconds '3600'\n")
    assert out["command"] == [*HEAD, "--iface", "br-lan",
                              "--data-dir", data_dir, "--traffic-flush-interval-seconds", "3600",
                              "--traffic-persist-history"]
    assert out["keep"] == KEEP_HEADER + (f"{kept}\n" if kept else "")


def test_keep_file_follows_the_data_dir_back_to_tmp(tmp_path: Path) -> None:
    """Moving the data dir off flash again removes the line."""
    run(tmp_path, "config bandix 'config'\n\tlist iface 'br-lan'\n\toption data_dir '/etc/bandix'\n")
    out = run(tmp_path, "config bandix 'config'\n\tlist iface 'br-lan'\n")
    assert out["keep"] == KEEP_HEADER


def test_odd_values_stay_single_arguments(tmp_path: Path) -> None:
    """Spaces, quotes and $ in a value reach bandix as one argument, unexpanded; a bad boolean
    is no switch (the daemon, reading the file itself, then says what is wrong)."""
    out = run(tmp_path, "config bandix 'config'\n\tlist iface 'br-lan'\n"
                        "\toption data_dir '/srv/my dir/it'\\''s $HOME'\n\toption port ' 8080'\n"
                        "\toption web_log 'yes'\n\toption traffic_enabled 'maybe'\n\toption tc_priority '7'\n")
    assert out["command"] == [*HEAD, "--iface", "br-lan",
                              "--data-dir", "/srv/my dir/it's $HOME", "--port", " 8080", "--tc-priority", "7",
                              "--web-log"]


def test_disabled_or_without_interface_starts_nothing(tmp_path: Path) -> None:
    """`option enabled 0` and a config without iface give no instance (procd stops a running one)."""
    off = run(tmp_path, "config bandix 'config'\n\toption enabled '0'\n\tlist iface 'br-lan'\n")
    assert (off["instances"], off["status"]) == ([], "start_service=0")
    (tmp_path / "x").mkdir()
    none = run(tmp_path / "x", "config bandix 'config'\n\toption port '8686'\n")
    # start_service returns 0: rc.common closes the service either way (rc_procd), and the
    # config trigger is registered so that setting an interface later starts bandix.
    assert (none["instances"], none["status"]) == ([], "start_service=0")
    assert "uci add_list bandix.config.iface=br-lan" in none["stderr"]
    assert none["triggers"] == [["procd_add_reload_trigger", "bandix"]]


def test_old_style_bridge_network_gets_its_trigger(tmp_path: Path) -> None:
    """19.07-style `config interface 'lan'` with `option type 'bridge'` is the device br-lan."""
    out = run(tmp_path, default_config(), "config interface 'lan'\n\toption type 'bridge'\n\toption ifname 'eth0'\n")
    assert out["triggers"][1:] == [["procd_add_reload_interface_trigger", "lan"]]


def test_every_flag_is_a_restart_only_option_and_parses(tmp_path: Path) -> None:
    """Stands in for bandix on the router: every UCI option set, the command line parses with
    bandix's own parser, it carries exactly the start-up options (Daemon.RESTART_ONLY) that UCI
    can set, and none that SIGHUP applies."""
    values = {"iface": "br-lan", "port": "8080", "listen": "0.0.0.0", "data_dir": "/tmp/b", "log_level": "debug",
              "tc_priority": "3", "web_log": "1", "traffic_enabled": "1", "traffic_retention_seconds": "60",
              "traffic_flush_interval_seconds": "120", "traffic_persist_history": "1", "dns_enabled": "1",
              "dns_max_records": "50", "flows_enabled": "1", "flow_flush_interval_secs": "2",
              "flow_idle_timeout_secs": "60", "flow_map_size": "2048", "dns_ttl_cap_secs": "30",
              "sni_ttl_cap_secs": "40", "flow_retention_days": "3", "flow_detail_hours": "5",
              "ipfix_collector": "192.0.2.7:4739",
              "connection_enabled": "1", "connection_interval_seconds": "9", "connection_max_entries": "500",
              "additional_subnets": "10.9.0.0/24", "leases_file": "/tmp/l", "allowed_host": "router.lan",
              "metrics_public": "1", "api_token": "0123456789abcdef0123456789abcdef", "offline_timeout": "60"}
    assert set(values) == {option for option, _ in config._UCI.values()}
    text = "config bandix 'config'\n" + "".join(f"\toption {k} {uci.quote(v)}\n" for k, v in values.items())
    out = run(tmp_path, text)
    parsed = vars(config.build_parser().parse_args(out["command"][1:]))
    restart_only_in_uci = {name for name in Daemon.RESTART_ONLY if config._UCI.get(name, (None,))[0]}
    assert set(parsed) == restart_only_in_uci | {"config_dir", "syslog"}
    assert parsed["syslog"] == "/dev/log"
    uci_file = uci.parse(text)
    from_file = config.from_uci(uci_file.named("config"), Path("bandix"))
    flags = {k: v for k, v in parsed.items() if k not in ("config_dir", "syslog")}
    assert flags == {k: from_file[k] for k in restart_only_in_uci}


def test_a_keep_file_that_cannot_be_written_does_not_stop_bandix(tmp_path: Path) -> None:
    """A full overlay: the keep.d line cannot be written; the instance is still sent, status 0."""
    keep_dir = tmp_path / "root/lib/upgrade/keep.d"
    keep_dir.mkdir(parents=True)
    (keep_dir / "bandix").mkdir()  # writing the file fails, as on a full or read-only overlay
    out = run(tmp_path, "config bandix 'config'\n\tlist iface 'br-lan'\n\toption data_dir '/etc/bandix'\n",
              keep_header=False)
    assert out["instances"] == ["procd_open_instance", "procd_close_instance"]
    assert out["status"] == "start_service=0"
    assert "is not kept by sysupgrade" in out["logger"]


def test_reload_service_restarts_through_start_then_signals() -> None:
    """rc.common's reload calls reload_service: `start` (procd compares the instance) then
    procd_send_signal bandix with no signal (procd sends SIGHUP). tests/test_procd_reload.py runs it."""
    text = INIT.read_text()
    body = text[text.index("reload_service() {"):]
    body = body[:body.index("}\n") + 2]
    assert body.split("\n")[1:3] == ["\tstart", "\tprocd_send_signal bandix"]
    assert "reload_signal" not in text.split("USE_PROCD=1")[1]
