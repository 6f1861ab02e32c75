// ESLint for the LuCI views and the dashboard scripts (make lint; tests/test_luci.py).
// LuCI compiles each view as the body of a function(window, document, L, <requires>),
// so a view's top-level `return` and its `'require x as y'` names are legal there.
// eslint and its two helpers are installed by `make lint` into .eslint/ (git-ignored).
import { createRequire } from 'node:module';

const require = createRequire(process.env.BANDIX_ESLINT_DIR
	? process.env.BANDIX_ESLINT_DIR.replace(/\/?$/, '/') : new URL('../.eslint/', import.meta.url));
const js = require('@eslint/js');
const globals = require('globals');

const luci = { L: 'readonly', E: 'readonly', _: 'readonly', N_: 'readonly' };

export default [
	js.configs.recommended,
	{
		files: ['luci-app-bandix/htdocs/**/*.js'],
		languageOptions: {
			ecmaVersion: 2017,
			sourceType: 'script',
			parserOptions: { ecmaFeatures: { globalReturn: true } },
			globals: { ...globals.browser, ...luci, baseclass: 'readonly', rpc: 'readonly', view: 'readonly',
				poll: 'readonly', ui: 'readonly', form: 'readonly', uci: 'readonly', widgets: 'readonly', api: 'readonly' }
		},
		rules: { 'no-unused-vars': ['error', { args: 'none' }], strict: ['error', 'global'] }
	},
	{
		files: ['bandix/web/*.js'],
		languageOptions: { ecmaVersion: 2017, sourceType: 'script', globals: globals.browser },
		rules: { 'no-unused-vars': ['error', { args: 'none' }] }
	}
];
