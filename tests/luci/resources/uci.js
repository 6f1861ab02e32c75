'use strict';
'require baseclass';
'require rpc';

/*
 * Stand-in for LuCI's uci.js (luci-base htdocs/luci-static/resources/uci.js), our own code
 * modelling what the bandix settings use:
 * - load(): ubus `uci get {config}` (the session's staged changes included by rpcd);
 * - get/sections read the loaded values overlaid with this page's unsaved changes
 *   (state.creates / state.changes / state.deletes, as uci.js keeps them);
 * - set/unset/add/remove only record changes; save() sends them as uci.js's save() does:
 *   `uci delete` per removed section, `uci add {config, type, values}` per new one,
 *   `uci set {config, section, values}` per changed one, then reloads those configs.
 *   Applying them (commit + config.change) is ui.changes.apply's job, not save's.
 */

var callGet = rpc.declare({ object: 'uci', method: 'get', params: [ 'config' ], expect: { values: {} } });
var callSet = rpc.declare({ object: 'uci', method: 'set', params: [ 'config', 'section', 'values' ], reject: true });
var callAdd = rpc.declare({ object: 'uci', method: 'add', params: [ 'config', 'type', 'name', 'values' ], expect: { section: '' }, reject: true });
var callDelete = rpc.declare({ object: 'uci', method: 'delete', params: [ 'config', 'section', 'options' ], reject: true });

var values = {}, creates = {}, changes = {}, deletes = {}, seq = 0;

return baseclass.extend({
	load: function(conf) {
		return callGet(conf).then(function(v) { values[conf] = v; return [ conf ]; });
	},
	unload: function(conf) {
		delete values[conf]; delete creates[conf]; delete changes[conf]; delete deletes[conf];
	},
	get: function(conf, sid, opt) {
		var s = (creates[conf] || {})[sid] || (values[conf] || {})[sid];
		if (s == null || (deletes[conf] || {})[sid] === true)
			return null;
		if (opt == null)
			return s;
		var c = (changes[conf] || {})[sid];
		if (c && opt in c)
			return c[opt];
		var d = (deletes[conf] || {})[sid];
		if (d && d[opt])
			return null;
		return s[opt];
	},
	set: function(conf, sid, opt, val) {
		if (val == null || val === '' || (Array.isArray(val) && !val.length))
			return this.unset(conf, sid, opt);
		if ((creates[conf] || {})[sid]) {
			creates[conf][sid][opt] = val;
			return;
		}
		var old = (values[conf] || {})[sid];
		if (!old)
			return;
		if (JSON.stringify(old[opt]) === JSON.stringify(val) && !((changes[conf] || {})[sid] || {})[opt])
			return;
		((changes[conf] = changes[conf] || {})[sid] = changes[conf][sid] || {})[opt] = val;
		if ((deletes[conf] || {})[sid])
			delete deletes[conf][sid][opt];
	},
	unset: function(conf, sid, opt) {
		if ((creates[conf] || {})[sid]) {
			delete creates[conf][sid][opt];
			return;
		}
		if ((changes[conf] || {})[sid])
			delete changes[conf][sid][opt];
		if (((values[conf] || {})[sid] || {})[opt] != null)
			((deletes[conf] = deletes[conf] || {})[sid] = deletes[conf][sid] || {})[opt] = true;
	},
	add: function(conf, type) {
		var sid = 'new' + (++seq).toString(16);
		(creates[conf] = creates[conf] || {})[sid] = { '.name': sid, '.type': type, '.anonymous': true, '.index': 1000 + seq };
		return sid;
	},
	remove: function(conf, sid) {
		if ((creates[conf] || {})[sid])
			delete creates[conf][sid];
		else
			(deletes[conf] = deletes[conf] || {})[sid] = true;
	},
	sections: function(conf, type) {
		var all = Object.assign({}, values[conf] || {}, creates[conf] || {});
		return Object.keys(all).map(function(k) { return all[k]; })
			.filter(function(s) { return (!type || s['.type'] === type) && (deletes[conf] || {})[s['.name']] !== true; })
			.sort(function(a, b) { return a['.index'] - b['.index']; });
	},
	get_first: function(conf, type, opt) {
		var s = this.sections(conf, type)[0];
		return s ? (opt == null ? s : this.get(conf, s['.name'], opt)) : null;
	},
	save: function() {
		var tasks = [], pkgs = {}, conf, sid;
		for (conf in deletes)
			for (sid in deletes[conf]) {
				tasks.push(callDelete(conf, sid, deletes[conf][sid] === true ? null : Object.keys(deletes[conf][sid])));
				pkgs[conf] = true;
			}
		for (conf in creates)
			for (sid in creates[conf]) {
				var v = {}, s = creates[conf][sid];
				Object.keys(s).forEach(function(k) { if (k.charAt(0) !== '.') v[k] = s[k]; });
				tasks.push(callAdd(conf, s['.type'], null, v));
				pkgs[conf] = true;
			}
		for (conf in changes)
			for (sid in changes[conf]) {
				tasks.push(callSet(conf, sid, changes[conf][sid]));
				pkgs[conf] = true;
			}
		var self = this;
		return Promise.all(tasks).then(function() {
			return Promise.all(Object.keys(pkgs).map(function(c) { self.unload(c); return self.load(c); }));
		});
	}
});
