'use strict';
'require baseclass';
'require rpc';

/* Stand-in for LuCI's uci.js: load and read (ubus uci get through the bridge). */

var callGet = rpc.declare({ object: 'uci', method: 'get', params: [ 'config' ], expect: { values: {} } });
var state = {};

return baseclass.extend({
	load: function(conf) {
		return callGet(conf).then(function(values) { state[conf] = values; return [ conf ]; });
	},
	get: function(conf, sid, opt) {
		var s = (state[conf] || {})[sid];
		return s == null ? null : (opt == null ? s : s[opt]);
	},
	sections: function(conf, type) {
		return Object.keys(state[conf] || {}).map(function(k) { return state[conf][k]; })
			.filter(function(s) { return !type || s['.type'] === type; })
			.sort(function(a, b) { return a['.index'] - b['.index']; });
	},
	get_first: function(conf, type, opt) {
		var s = this.sections(conf, type)[0];
		return s ? (opt == null ? s : s[opt]) : null;
	}
});
