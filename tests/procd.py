"""A model of OpenWrt's procd, rc.common and procd.sh for init scripts under test.

No OpenWrt runs here. This models, in our own code, what an init script like
files/bandix.init relies on (sources read: openwrt/procd service/service.c,
service/instance.c, service/trigger.c; openwrt/openwrt
package/base-files/files/etc/rc.common, package/system/procd/files/procd.sh
and reload_config):

- rc.common (procd mode): `start` is rc_procd start_service: procd_open_service,
  start_service, procd_close_service "set" whatever start_service returned;
  `reload` calls reload_service when the script defines one, else `start`;
  `stop` is stop_service then procd_kill (ubus service delete).
- procd.sh: _procd_open_instance names instances instance1, instance2...;
  _procd_set_param's types (command/netdev/file/respawn arrays, env/data/limits
  tables, reload_signal as a signal number, stdout/stderr booleans...);
  _procd_close_instance fills an empty respawn with 3600 5 5;
  _procd_close_service calls service_triggers itself, then `ubus call service set`;
  _procd_add_reload_trigger / _procd_add_reload_interface_trigger add
  [type, [if, [eq, package|interface, X], [run_script, /etc/init.d/NAME, reload]], 1000];
  _procd_send_signal sends no signal number unless one is given.
- service.c: service_handle_set -> service_update: `set` replaces the instance
  list (instances no longer sent are stopped, vlist_flush), `add` does not;
  service_handle_signal: kill() of every instance's pid, SIGHUP when no signal
  is given; service_handle_delete stops every instance.
- instance.c: instance_update: not running -> start with the new config;
  running -> instance_restart only if instance_config_changed (command, env,
  netdev, file checksums, nice, facility, user, group, pidfile, respawn,
  seccomp, limits, jail mounts, errors: not `data`, not reload_signal, not
  stdout/stderr); instance_restart sends reload_signal when one is set,
  else SIGTERM and starts the new process when the old one has exited
  (instance_exit with halt+restart), SIGKILL after term_timeout (5 s).
- trigger.c: trigger_event matches the event type exactly, re-arms the
  trigger's delay (its timeout, 1000 ms from procd.sh) on every event and
  keeps the last event's data; when the delay ends the rule runs (json_script
  `eq`) and starts run_script; a trigger whose job runs ignores events.
- reload_config: `uci show` of every config, md5 against the last run's; a
  config.change event {package: name} for each that changed.

The processes are real: `spawn(command)` starts the instance's command (the
test maps OpenWrt paths into its namespace) and returns a Popen.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

STANDIN = r'''
# procd.sh stand-in: each call one record (fields \037, records \036); the
# Python model builds the ubus messages from them as procd.sh would.
procd_record() { printf '%s\037' "$@" >> "$PROCD_LOG"; printf '\036' >> "$PROCD_LOG"; }
for f in procd_open_service procd_open_instance procd_close_instance procd_set_param procd_append_param \
	procd_add_reload_trigger procd_add_reload_interface_trigger procd_send_signal procd_kill; do
	eval "$f() { procd_record $f \"\$@\"; }"
done
# _procd_close_service: service_triggers runs inside it, then `ubus call service set|add`.
procd_close_service() { service_triggers; procd_record procd_close_service "${1:-set}"; }
procd_lock() { :; }
'''

# rc.common's procd part, as the real one defines it (our own text).
RC_COMMON = r'''
start_service() { return 0; }
stop_service() { return 0; }
service_triggers() { return 0; }
. "$INITSCRIPT"
rc_procd() {
	local method=set
	[ -n "$2" ] && method=add
	procd_open_service "$(basename "$INITSCRIPT")" "$INITSCRIPT"
	"$@"
	procd_close_service "$method"
}
start() { rc_procd start_service "$@"; }
stop() { stop_service "$@"; procd_kill "$(basename "$INITSCRIPT")" "$1"; }
reload() {
	if eval "type reload_service" >/dev/null 2>&1; then reload_service "$@"; else start; fi
}
restart() { stop; start; }
"$ACTION"
'''

SIGNALS = {s.name[3:]: s.value for s in signal.Signals if s.name.startswith("SIG") and "_" not in s.name}


def _table(args: list[str]) -> dict[str, str]:
    """_procd_add_table_data: name=value, a bare name is an empty value."""
    out = {}
    for a in args:
        name, sep, value = a.partition("=")
        out[name] = value if sep else ""
    return out


def messages(records: list[list[str]]) -> list[tuple[str, dict]]:
    """The ubus calls (method, message) procd.sh makes for these recorded calls, in order."""
    calls: list[tuple[str, dict]] = []
    service: dict | None = None
    instance: dict | None = None
    triggers: list = []
    seq = 0
    for call, *args in records:
        if call == "procd_open_service":
            service, triggers, seq = {"name": args[0], "script": args[1], "instances": {}}, [], 0
        elif call == "procd_open_instance":
            seq += 1
            instance = {}
            service["instances"][args[0] if args else f"instance{seq}"] = instance
        elif call in ("procd_set_param", "procd_append_param"):
            kind, values = args[0], args[1:]
            if kind in ("command", "netdev", "file", "respawn", "watch"):
                old = instance.get(kind, []) if call == "procd_append_param" else []
                instance[kind] = old + values
            elif kind in ("env", "data", "limits"):
                old = instance.get(kind, {}) if call == "procd_append_param" else {}
                instance[kind] = {**old, **_table(values)}
            elif kind in ("nice", "term_timeout"):
                instance[kind] = int(values[0])
            elif kind == "reload_signal":
                instance[kind] = SIGNALS[values[0]] if not values[0].isdigit() else int(values[0])
            elif kind in ("stdout", "stderr", "no_new_privs"):
                instance[kind] = values[0] == "1"
            else:
                instance[kind] = values[0]
        elif call == "procd_close_instance":
            if "respawn" in instance and not instance["respawn"]:
                instance["respawn"] = ["3600", "5", "5"]
            instance = None
        elif call == "procd_add_reload_trigger":
            name = Path(service["script"]).name
            for package in args:
                triggers.append(["config.change", ["if", ["eq", "package", package],
                                                   ["run_script", f"/etc/init.d/{name}", "reload"]], 1000])
        elif call == "procd_add_reload_interface_trigger":
            name = Path(service["script"]).name
            triggers.append(["interface.*", ["if", ["eq", "interface", args[0]],
                                             ["run_script", f"/etc/init.d/{name}", "reload"]], 1000])
        elif call == "procd_close_service":
            calls.append((args[0], {**service, "triggers": triggers}))
            service = None
        elif call == "procd_send_signal":
            msg = {"name": args[0]}
            if len(args) > 1 and args[1] not in ("", "*"):
                msg["instance"] = args[1]
            if len(args) > 2 and args[2]:
                msg["signal"] = SIGNALS[args[2]] if not args[2].isdigit() else int(args[2])
            calls.append(("signal", msg))
        elif call == "procd_kill":
            msg = {"name": args[0]}
            if len(args) > 1 and args[1]:
                msg["instance"] = args[1]
            calls.append(("delete", msg))
    return calls


# instance_config_changed's fields (reload_signal, data, stdout, stderr are not among them).
COMPARED = ("command", "env", "netdev", "file_md5", "nice", "facility", "user", "group", "pidfile",
            "respawn", "seccomp", "limits", "jail", "error")


@dataclass
class Instance:
    name: str
    config: dict
    proc: subprocess.Popen | None = None
    halt: bool = False
    restart: bool = False
    started: list[int] = field(default_factory=list)  # every pid this instance ran, in order

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Procd:
    """procd's service list; `init(script, action)` runs an init script as rc.common does."""

    def __init__(self, spawn: Callable[[list[str]], subprocess.Popen], root: Path, standin_dir: Path,
                 env: dict[str, str]) -> None:
        self.spawn, self.root, self.env = spawn, root, env
        self.standin_dir = standin_dir
        standin_dir.mkdir(parents=True, exist_ok=True)
        (standin_dir / "procd.sh").write_text(STANDIN)
        (standin_dir / "rc.common").write_text(RC_COMMON)
        self.services: dict[str, dict] = {}
        self.lock = threading.RLock()
        self.ubus_log: list[tuple[str, dict]] = []
        self._triggers: list[dict] = []
        self._md5: dict[str, str] = {}

    # -- rc.common --------------------------------------------------------------------------------

    def init(self, script: Path, action: str) -> subprocess.CompletedProcess:
        """`/etc/init.d/NAME action`: the script under rc.common, its procd calls then made in order."""
        log = self.standin_dir / f"procd-{time.monotonic_ns()}.log"
        driver = (f'. "{self.env["FUNCTIONS_SH"]}"\n. "{self.standin_dir / "procd.sh"}"\n'
                  f'. "{self.standin_dir / "rc.common"}"\n')
        env = {**self.env, "PROCD_LOG": str(log), "INITSCRIPT": str(script), "ACTION": action}
        done = subprocess.run(["/bin/sh", "-c", driver], env=env, capture_output=True, text=True, timeout=60)
        records = [r.split("\x1f")[:-1] for r in log.read_text().split("\x1e")[:-1]] if log.exists() else []
        for method, msg in messages(records):
            self.ubus(method, msg)
        return done

    # -- ubus service object ----------------------------------------------------------------------

    def ubus(self, method: str, msg: dict) -> None:
        with self.lock:
            self.ubus_log.append((method, msg))
            if method in ("set", "add"):
                self._service_set(msg, add=method == "add")
            elif method == "signal":
                # service_handle_signal: SIGHUP unless a signal is given, kill() of each instance's pid.
                sig = msg.get("signal", signal.SIGHUP)
                for inst in self.services.get(msg["name"], {}).get("instances", {}).values():
                    if inst.proc is not None and (msg.get("instance") in (None, inst.name)):
                        try:
                            os.kill(inst.proc.pid, sig)
                        except ProcessLookupError:
                            pass
            elif method == "delete":
                for inst in list(self.services.get(msg["name"], {}).get("instances", {}).values()):
                    self._stop(inst)
                self.services.pop(msg["name"], None)
                self._triggers = [t for t in self._triggers if t["service"] != msg["name"]]

    def _file_md5(self, files: list[str]) -> list[str]:
        """instance_file_update: the md5 of each `file` param's content (zero when unreadable)."""
        out = []
        for f in files:
            try:
                out.append(hashlib.md5((self.root / f.lstrip("/")).read_bytes()).hexdigest())
            except OSError:
                out.append("0")
        return out

    def _comparable(self, config: dict) -> dict:
        c = {k: config.get(k) for k in COMPARED}
        c["file_md5"] = self._file_md5(config.get("file", []))
        return c

    def _service_set(self, msg: dict, add: bool) -> None:
        name = msg["name"]
        service = self.services.setdefault(name, {"instances": {}})
        # service_update: the service's triggers are replaced by the new ones.
        self._triggers = [t for t in self._triggers if t["service"] != name]
        for rule in msg.get("triggers", []):
            self._triggers.append({"service": name, "type": rule[0], "rule": rule[1],
                                   "timeout": rule[2] if len(rule) > 2 else 0, "timer": None,
                                   "data": None, "pending": False})
        new = msg.get("instances", {})
        for iname, config in new.items():
            old = service["instances"].get(iname)
            if old is None:
                inst = Instance(iname, config)
                service["instances"][iname] = inst
                self._start(inst)
            else:
                self._update(old, config)
        if not add:  # vlist_flush: what was not sent again is stopped
            for iname in [n for n in service["instances"] if n not in new]:
                self._stop(service["instances"].pop(iname))

    def _update(self, inst: Instance, config: dict) -> None:
        """instance_update."""
        changed = self._comparable(inst.config) != self._comparable(config)
        if not inst.running or inst.halt:
            inst.config = config
            self._start(inst)
            return
        if changed:
            self._restart(inst)
        inst.config = config

    def _start(self, inst: Instance) -> None:
        if inst.running:
            if inst.halt:
                inst.restart = True
            return
        inst.halt = inst.restart = False
        if not inst.config.get("command"):
            return
        inst.proc = self.spawn(list(inst.config["command"]))
        inst.started.append(inst.proc.pid)
        threading.Thread(target=self._watch, args=(inst, inst.proc), daemon=True).start()

    def _restart(self, inst: Instance) -> None:
        """instance_restart: reload_signal instead of a restart when one is set."""
        if not inst.running:
            return
        if inst.config.get("reload_signal"):
            os.kill(inst.proc.pid, inst.config["reload_signal"])
            return
        inst.halt = inst.restart = True
        self._term(inst)

    def _stop(self, inst: Instance) -> None:
        """instance_stop(halt)."""
        inst.halt, inst.restart = True, False
        if inst.running:
            self._term(inst)

    def _term(self, inst: Instance) -> None:
        proc = inst.proc
        proc.send_signal(signal.SIGTERM)
        timeout = inst.config.get("term_timeout", 5)

        def kill_late() -> None:
            if proc.poll() is None:
                proc.kill()
        threading.Timer(timeout, kill_late).start()

    def _watch(self, inst: Instance, proc: subprocess.Popen) -> None:
        """instance_exit: a halted instance that should restart starts its new config."""
        proc.wait()
        with self.lock:
            if inst.proc is not proc:
                return
            if inst.halt and inst.restart:
                inst.proc = None
                self._start(inst)

    # -- events and triggers ----------------------------------------------------------------------

    def event(self, kind: str, data: dict) -> None:
        """`ubus call service event`: trigger_event."""
        with self.lock:
            for t in self._triggers:
                if t["pending"] or t["type"] != kind:
                    continue
                t["data"] = data
                if t["timer"]:
                    t["timer"].cancel()
                t["timer"] = threading.Timer(t["timeout"] / 1000, self._run_trigger, args=(t,))
                t["timer"].start()

    def _run_trigger(self, t: dict) -> None:
        """trigger_delay_cb: the rule with the last event's data; run_script as a job."""
        rule, data = t["rule"], t["data"] or {}
        _if, (op, key, value), (cmd, script, *args) = rule
        if op != "eq" or data.get(key) != value or cmd != "run_script":
            return
        t["pending"] = True
        try:
            for action in args:
                self.init(self.root / script.lstrip("/"), action)
        finally:
            t["pending"] = False

    def reload_config(self, config_dir: Path, show: Callable[[Path], str]) -> list[str]:
        """/sbin/reload_config: config.change for each config whose `uci show` changed."""
        changed = []
        for path in sorted(config_dir.iterdir()):
            digest = hashlib.md5(show(path).encode()).hexdigest()
            if path.name in self._md5 and self._md5[path.name] != digest:
                changed.append(path.name)
            self._md5[path.name] = digest
        for name in changed:
            self.event("config.change", {"package": name})
        return changed

    def instance(self, service: str, name: str = "instance1") -> Instance | None:
        return self.services.get(service, {}).get("instances", {}).get(name)

    def status(self) -> str:
        return json.dumps({s: {n: {"pids": i.started, "running": i.running} for n, i in v["instances"].items()}
                           for s, v in self.services.items()})
