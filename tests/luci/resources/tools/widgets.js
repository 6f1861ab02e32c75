'use strict';
'require baseclass';
'require form';
'require rpc';
'require uci';

/*
 * Stand-in for LuCI's tools/widgets.js DeviceSelect: it lists the router's network devices
 * from network.js's state, which initNetworkState (luci-base network.js) builds from these
 * calls, each one's failure (e.g. -32002 Access denied) read as empty (L.resolveDefault):
 * network.interface dump, luci-rpc getBoardJSON / getNetworkDevices / getWirelessDevices /
 * getHostHints, network get_proto_handlers, and uci network / wireless.
 */

var calls = [
	rpc.declare({ object: 'network.interface', method: 'dump', expect: { 'interface': [] } }),
	rpc.declare({ object: 'luci-rpc', method: 'getBoardJSON' }),
	rpc.declare({ object: 'luci-rpc', method: 'getNetworkDevices', expect: { '': {} } }),
	rpc.declare({ object: 'luci-rpc', method: 'getWirelessDevices' }),
	rpc.declare({ object: 'luci-rpc', method: 'getHostHints', expect: { '': {} } }),
	rpc.declare({ object: 'network', method: 'get_proto_handlers', expect: { '': {} } })
];

function networkState() {
	return Promise.all(calls.map(function(call) { return L.resolveDefault(call(), {}); }).concat([
		L.resolveDefault(uci.load('network')), L.resolveDefault(uci.load('wireless'))
	])).then(function(data) { return { netdevs: data[2] || {}, hosts: data[4] || {} }; });
}

var DeviceSelect = form.Value.extend({
	renderWidget: function(sid) {
		var selected = L.toArray(this.cfgvalue(sid)), id = 'widget.' + this.cbid(sid), multiple = this.multiple;
		return networkState().then(function(state) {
			return E('select', { 'id': id, 'multiple': multiple ? '' : null }, Object.keys(state.netdevs).sort().map(function(name) {
				return E('option', { 'value': name, 'selected': selected.indexOf(name) >= 0 ? '' : null }, [ name ]);
			}));
		});
	},
	formvalue: function(sid) {
		var w = this.widget(sid);
		if (!w) return null;
		var values = Array.prototype.map.call(w.selectedOptions, function(o) { return o.value; });
		return this.multiple ? values : (values[0] || '');
	}
});

return baseclass.extend({ DeviceSelect: DeviceSelect });
