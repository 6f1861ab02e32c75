'use strict';
'require baseclass';
'require form';
'require rpc';

/* Stand-in for LuCI's tools/widgets.js: DeviceSelect lists the router's network devices (luci-rpc getNetworkDevices). */

var callDevices = rpc.declare({ object: 'luci-rpc', method: 'getNetworkDevices', expect: { '': {} } });

var DeviceSelect = form.Value.extend({
	renderWidget: function(sid) {
		var selected = L.toArray(this.cfgvalue(sid)), id = 'widget.' + this.cbid(sid), multiple = this.multiple;
		return callDevices().then(function(devices) {
			return E('select', { 'id': id, 'multiple': multiple ? '' : null }, Object.keys(devices).sort().map(function(name) {
				return E('option', { 'value': name, 'selected': selected.indexOf(name) >= 0 ? '' : null }, [ name ]);
			}));
		});
	}
});

return baseclass.extend({ DeviceSelect: DeviceSelect });
