'use strict';
'require baseclass';

/*
 * Stand-in for LuCI's ui.js (luci-base): notifications, and ui.changes.apply as LuCI's
 * Save & Apply runs it: POST admin/uci/apply_rollback (the controller calls rpcd's
 * `uci apply {rollback: true, timeout}`, which commits this session's changes and sends
 * config.change for each config), 204 when nothing was staged; then, after apply_holdoff,
 * POST admin/uci/confirm so that rpcd does not roll the change back after apply_rollback s.
 */

function notify(title, children, cls) {
	var node = E('div', { 'class': 'alert-message ' + (cls || '') }, [ title ? E('h4', {}, [ title ]) : '', children ]);
	var main = document.getElementById('maincontent');
	main.insertBefore(node, main.firstChild);
	return node;
}

function post(url, fields) {
	var body = Object.keys(fields).map(function(k) { return k + '=' + encodeURIComponent(fields[k]); }).join('&');
	return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: body });
}

return baseclass.extend({
	addNotification: notify,
	changes: {
		apply: function(checked) {
			return post(L.url('admin/uci', checked ? 'apply_rollback' : 'apply_unchecked'), { sid: L.env.sessionid }).then(function(res) {
				if (res.status === 204)
					return notify(null, E('p', {}, [ 'There are no changes to apply' ]), 'notice');
				if (!res.ok)
					return notify(null, E('p', {}, [ 'Apply request failed with status ' + res.status ]), 'error');
				return res.json().then(function(reply) {
					var note = notify(null, E('p', {}, [ 'Applying configuration changes…' ]), 'notice');
					return new Promise(function(resolve) { window.setTimeout(resolve, L.env.apply_holdoff * 1000); }).then(function() {
						return post(L.url('admin/uci/confirm'), { sid: L.env.sessionid, token: reply.token });
					}).then(function(res) {
						note.remove();
						notify(null, E('p', {}, [ res.ok ? 'Configuration changes applied.' : 'Confirm failed: ' + res.status ]),
							res.ok ? 'notice' : 'error');
					});
				});
			});
		}
	}
});
