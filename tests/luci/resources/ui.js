'use strict';
'require baseclass';

/* Stand-in for LuCI's ui.js: notifications only. */

return baseclass.extend({
	addNotification: function(title, children, cls) {
		var node = E('div', { 'class': 'alert-message ' + (cls || '') }, [ title ? E('h4', {}, [ title ]) : '', children ]);
		document.getElementById('maincontent').insertBefore(node, document.getElementById('maincontent').firstChild);
		return node;
	}
});
