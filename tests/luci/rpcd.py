"""Models of rpcd and of uhttpd's ubus JSON-RPC endpoint, on the points luci-app-bandix relies on.

Our own code, modelled on (openwrt/rpcd) plugin.c, session.c, main.c and (openwrt/uhttpd) ubus.c:

- plugin.c rpc_plugin_api_init: at start-up only, every executable regular file of
  /usr/libexec/rpcd is run with `list`; its JSON object becomes a ubus object of that name
  whose methods are the object's keys (rpc_plugin_parse_exec). A plugin installed later
  does not exist for ubus ("Object not found") until rpcd starts again.
- plugin.c rpc_plugin_call: `<plugin> call <method>` with the call's arguments as JSON on
  stdin, ubus_rpc_session included; stdout must be one JSON object (UBUS_STATUS_OK), nothing
  is UBUS_STATUS_NO_DATA (5), anything else UBUS_STATUS_INVALID_ARGUMENT (2). A method
  not in the `list` table is UBUS_STATUS_METHOD_NOT_FOUND (3).
- session.c rpc_handle_login / rpc_login_setup_acls: the ACL files of
  /usr/share/rpcd/acl.d are read when a session logs in; each access group is granted with
  the permission ("read", "write") the login's `read`/`write` lists allow (fnmatch), write
  implying read (rpc_login_test_permission); the default session 000...0 gets the group
  "unauthenticated" only. Scope tables grant (scope, object, function), arrays grant
  (scope, object, permission) (rpc_login_setup_acl_scope). rpc_session_acl_allowed matches
  object and function with fnmatch.
- main.c: SIGHUP freezes the sessions (rpc_session_freeze, grants included), re-executes
  rpcd, which scans the plugins again and thaws the sessions (rpc_session_thaw): sessions
  survive, with the grants they had.
- ubus.c uh_ubus_handle_request_object ("call", the legacy /ubus endpoint): params are
  [sid, object, function, args]; a missing one is -32700 Parse error; an unknown object
  -32000 Object not found (looked up first); no session access -32002 Access denied;
  uh_ubus_send_request refuses args that carry ubus_rpc_session (-32602) and adds
  ubus_rpc_session = sid; the answer is {"jsonrpc", "id", "result": [status, data?]}, data
  only when not empty (uh_ubus_request_cb, legacy format).
"""

from __future__ import annotations

import fnmatch
import json
import os
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

DEFAULT_SID = "0" * 32
OK, INVALID_ARGUMENT, METHOD_NOT_FOUND, NOT_FOUND, NO_DATA, PERMISSION_DENIED = 0, 2, 3, 4, 5, 6

# ubus objects served by rpcd's built-in modules or other daemons (not exec plugins):
# object -> handler(sid, method, args) -> (status, data).
Builtin = Callable[[str, str, dict], tuple[int, dict | None]]


class Rpcd:
    def __init__(self, root: Path, logins: dict[str, dict[str, list[str]]],
                 run_plugin: Callable[[Path, list[str], str], subprocess.CompletedProcess]) -> None:
        """root: the router's filesystem (usr/libexec/rpcd, usr/share/rpcd/acl.d);
        logins: rpcd's `config login` sections, user -> {"read": [...], "write": [...]};
        run_plugin(path, argv, stdin): how an exec plugin runs (the test's namespace)."""
        self.root, self.logins, self.run_plugin = root, logins, run_plugin
        self.builtins: dict[str, Builtin] = {}
        self.sessions: dict[str, set[tuple[str, str, str]]] = {}
        self.objects: dict[str, dict] = {}
        self.starts = 0
        self._start()

    # -- main.c ------------------------------------------------------------------------------

    def _start(self) -> None:
        """rpcd starting: plugins scanned, the default session set up, frozen sessions thawed."""
        self.starts += 1
        self.objects = {}
        plugin_dir = self.root / "usr/libexec/rpcd"
        for path in sorted(plugin_dir.iterdir()) if plugin_dir.is_dir() else []:
            if not path.is_file() or not os.stat(path).st_mode & 0o100:
                continue
            done = self.run_plugin(path, ["list"], "")
            try:
                table = json.loads(done.stdout)
            except ValueError:
                continue
            if isinstance(table, dict) and table:
                self.objects[path.name] = {"path": path, "methods": table}
        self.sessions[DEFAULT_SID] = self._grants(None)

    def sighup(self) -> None:
        """SIGHUP: freeze the sessions, re-execute, thaw them (their grants as they were)."""
        frozen = {sid: set(g) for sid, g in self.sessions.items() if sid != DEFAULT_SID}
        self.sessions = {}
        self._start()
        self.sessions.update(frozen)

    # -- session.c ---------------------------------------------------------------------------

    def _allowed_group(self, login: dict[str, list[str]] | None, perm: str, group: str) -> bool:
        if login is None:
            return group == "unauthenticated"
        if any(fnmatch.fnmatchcase(group, pattern) for pattern in login.get(perm, [])):
            return True
        return perm == "read" and self._allowed_group(login, "write", group)

    def _grants(self, login: dict[str, list[str]] | None) -> set[tuple[str, str, str]]:
        grants: set[tuple[str, str, str]] = set()
        acl_dir = self.root / "usr/share/rpcd/acl.d"
        for path in sorted(acl_dir.glob("*.json")) if acl_dir.is_dir() else []:
            for group, perms in json.loads(path.read_text()).items():
                for perm, scopes in perms.items():
                    if perm not in ("read", "write") or not isinstance(scopes, dict):
                        continue
                    if not self._allowed_group(login, perm, group):
                        continue
                    for scope, objects in scopes.items():
                        if isinstance(objects, dict):
                            grants |= {(scope, obj, fn) for obj, fns in objects.items() for fn in fns}
                        elif isinstance(objects, list):
                            grants |= {(scope, obj, perm) for obj in objects}
                        grants.add(("access-group", group, perm))
        return grants

    def login(self, username: str) -> str:
        """session login (the password check is not modelled): a new session with today's ACLs."""
        sid = secrets.token_hex(16)
        self.sessions[sid] = self._grants(self.logins[username])
        return sid

    def access(self, sid: str, scope: str, obj: str, function: str) -> bool:
        grants = self.sessions.get(sid)
        if grants is None:
            return False
        return any(s == scope and fnmatch.fnmatchcase(obj, o) and fnmatch.fnmatchcase(function, f)
                   for s, o, f in grants)

    # -- ubus --------------------------------------------------------------------------------

    def exists(self, obj: str) -> bool:
        return obj in self.objects or obj in self.builtins

    def call(self, sid: str, obj: str, method: str, args: dict) -> tuple[int, dict | None]:
        if obj in self.builtins:
            return self.builtins[obj](sid, method, args)
        plugin = self.objects.get(obj)
        if plugin is None:
            return NOT_FOUND, None
        if method not in plugin["methods"]:
            return METHOD_NOT_FOUND, None
        done = self.run_plugin(plugin["path"], ["call", method], json.dumps(args))
        if not done.stdout.strip():
            return NO_DATA, None
        try:
            reply = json.loads(done.stdout)
        except ValueError:
            return INVALID_ARGUMENT, None
        return (OK, reply) if isinstance(reply, dict) else (INVALID_ARGUMENT, None)


def uhttpd_ubus(rpcd: Rpcd, request: object) -> dict:
    """One JSON-RPC request object posted to /ubus, answered as uhttpd's ubus handler does."""
    def error(code: int, message: str) -> dict:
        return {"jsonrpc": "2.0", "id": request.get("id") if isinstance(request, dict) else None,
                "error": {"code": code, "message": message}}

    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or "method" not in request:
        return error(-32700, "Parse error")
    if request["method"] != "call":
        return error(-32601, "Method not found")
    params = request.get("params")
    if not (isinstance(params, list) and len(params) >= 4 and all(isinstance(p, str) for p in params[:3])
            and isinstance(params[3], dict)):
        return error(-32700, "Parse error")
    sid, obj, function, args = params[:4]
    if not rpcd.exists(obj):
        return error(-32000, "Object not found")
    if not rpcd.access(sid, "ubus", obj, function):
        return error(-32002, "Access denied")
    if "ubus_rpc_session" in args:
        return error(-32602, "Invalid parameters")
    status, data = rpcd.call(sid, obj, function, {**args, "ubus_rpc_session": sid})
    return {"jsonrpc": "2.0", "id": request.get("id"), "result": [status, data] if data else [status]}


class UciModule:
    """rpcd's uci object (openwrt/rpcd uci.c), on the points LuCI's forms use:

    - every call checks the session's access to the config: read for get/changes, write
      for set/add/delete (rpc_uci_read_access / rpc_uci_write_access: PERMISSION_DENIED);
    - set/add/delete are staged per session (its savedir /var/run/rpcd/uci-<sid>), and `get`
      of that session sees them; the file itself is untouched;
    - apply {rollback, timeout}: every config this session staged is committed and gets a
      config.change event for procd (rpc_uci_apply -> rpc_uci_trigger_event); with rollback
      the old files come back after `timeout` s unless `confirm` comes first (rpc_uci_confirm);
      nothing staged is UBUS_STATUS_NO_DATA.
    """

    def __init__(self, rpcd: Rpcd, config_dir: Path, on_change: Callable[[str], None]) -> None:
        self.rpcd, self.config_dir, self.on_change = rpcd, config_dir, on_change
        self.staged: dict[str, dict[str, list[tuple]]] = {}  # sid -> config -> ops
        self._rollback: dict[str, str] | None = None
        self._timer = None

    def _file(self, sid: str, config: str):
        from bandix import uci
        f = uci.load(self.config_dir / config)
        for op in self.staged.get(sid, {}).get(config, []):
            if op[0] == "add":
                _, type_, name, values = op
                section = f.add(type_, name)
                for k, v in values.items():
                    section.set_list(k, list(v)) if isinstance(v, list) else section.set(k, str(v))
            elif op[0] == "set":
                _, section_name, values = op
                section = section_by_name(f, section_name)
                for k, v in (values.items() if section else ()):
                    section.set_list(k, list(v)) if isinstance(v, list) else section.set(k, str(v))
            elif op[0] == "delete":
                _, section_name, options = op
                section = section_by_name(f, section_name)
                if section and options is None:
                    f.remove(section)
                elif section:
                    for o in options:
                        section.delete(o)
        return f

    def __call__(self, sid: str, method: str, args: dict) -> tuple[int, dict | None]:
        from bandix import uci
        config = args.get("config")
        if method in ("get", "changes", "set", "add", "delete"):
            if not isinstance(config, str) or not config.isidentifier():
                return INVALID_ARGUMENT, None
            perm = "read" if method in ("get", "changes") else "write"
            if not self.rpcd.access(sid, "uci", config, perm):
                return PERMISSION_DENIED, None
        ops = self.staged.setdefault(sid, {})
        if method == "get":
            return OK, {"values": section_values(self._file(sid, config))}
        if method == "changes":
            return OK, {"changes": {c: [list(op) for op in o] for c, o in ops.items() if o}}
        if method == "set":
            ops.setdefault(config, []).append(("set", args.get("section"), args.get("values") or {}))
            return OK, None
        if method == "add":
            ops.setdefault(config, []).append(("add", args.get("type"), args.get("name"), args.get("values") or {}))
            return OK, {"section": f"new{len(ops[config])}"}
        if method == "delete":
            ops.setdefault(config, []).append(("delete", args.get("section"), args.get("options")))
            return OK, None
        if method == "apply":
            changed = [c for c, o in ops.items() if o]
            if not changed:
                return NO_DATA, None
            backup = {c: (self.config_dir / c).read_text() if (self.config_dir / c).exists() else "" for c in changed}
            for c in changed:
                uci.save(self.config_dir / c, self._file(sid, c))
            self.staged[sid] = {}
            if args.get("rollback"):
                import threading
                self._rollback = backup
                self._timer = threading.Timer(int(args.get("timeout", 30)), self._roll_back)
                self._timer.start()
            for c in changed:
                self.on_change(c)
            return OK, None
        if method == "confirm":
            if self._timer is None:
                return NO_DATA, None
            self._timer.cancel()
            self._timer, self._rollback = None, None
            return OK, None
        return METHOD_NOT_FOUND, None

    def _roll_back(self) -> None:
        for c, text in (self._rollback or {}).items():
            (self.config_dir / c).write_text(text)
            self.on_change(c)
        self._rollback, self._timer = None, None


def _anonymous_name(index: int, type_: str) -> str:
    """uci's name for an anonymous section (cfg + index + a checksum of the type)."""
    return f"cfg{index:02x}{sum(type_.encode()) % 0x10000:04x}"


def section_by_name(f, name: str):
    for index, s in enumerate(f.sections):
        if (s.name or _anonymous_name(index, s.type)) == name:
            return s
    return None


def section_values(f) -> dict:
    """`uci get {config}`'s values: every section with .name, .type, .anonymous, .index, options
    (lists as arrays)."""
    from bandix import uci
    out = {}
    for index, s in enumerate(f.sections):
        name = s.name or _anonymous_name(index, s.type)
        values: dict = {".name": name, ".type": s.type, ".anonymous": s.name is None, ".index": index}
        for option in s.options():
            statements = [st for st in s.body if isinstance(st, uci.Statement) and st.args[0] == option]
            values[option] = s.get_list(option) if statements[0].keyword == "list" else s.get(option)
        out[name] = values
    return out
