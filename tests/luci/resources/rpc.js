'use strict';
'require baseclass';

/* Stand-in for LuCI's rpc.js: ubus JSON-RPC "call" posted to the test bridge, reply handled as rpc.js does. */

var id = 1;

return baseclass.extend({
	declare: function(options) {
		return function() {
			var args = Array.prototype.slice.call(arguments), params = {};
			(options.params || []).forEach(function(p, i) { params[p] = args[i]; });
			var msg = { jsonrpc: '2.0', id: id++, method: 'call', params: [ L.env.sessionid, options.object, options.method, params ] };
			return fetch('/ubus', { method: 'POST', body: JSON.stringify(msg) }).then(function(res) {
				if (!res.ok) L.raise('RPCError', 'RPC call to %s/%s failed with HTTP error %d', options.object, options.method, res.status);
				return res.json();
			}).then(function(reply) {
				if (reply.error) L.raise('RPCError', 'RPC call to %s/%s failed with error %d: %s', options.object, options.method, reply.error.code, reply.error.message);
				var ret = reply.result.length > 1 ? reply.result[1] : reply.result[0];
				if (options.reject && reply.result[0] !== 0) L.raise('RPCError', 'RPC call to %s/%s failed with ubus code %d', options.object, options.method, reply.result[0]);
				for (var key in options.expect || {}) {
					if (ret != null && key !== '') ret = ret[key];
					if (ret == null || Object.prototype.toString.call(ret) !== Object.prototype.toString.call(options.expect[key])) ret = options.expect[key];
					break;
				}
				return typeof options.filter === 'function' ? options.filter(ret, params) : ret;
			});
		};
	}
});
