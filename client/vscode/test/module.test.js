'use strict';
// The module as shipped: what index.d.ts declares is what index.js exports, and nothing
// outside Node's standard library is required.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { it } = require('node:test');

const ROOT = path.join(__dirname, '..');

it('index.js exports exactly the values index.d.ts declares', () => {
  const declared = [...fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8')
    .matchAll(/^export (?:class|function|const) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(Object.keys(require('..')).sort(), [...new Set(declared)].sort());
});

it('requires only Node built-ins and its own files, and declares no dependencies', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(manifest.dependencies, undefined);
  assert.equal(manifest.devDependencies, undefined);
  const files = ['index.js', ...fs.readdirSync(path.join(ROOT, 'lib')).map((name) => path.join('lib', name))];
  for (const file of files) {
    const source = fs.readFileSync(path.join(ROOT, file), 'utf8');
    for (const [, target] of source.matchAll(/require\('([^']+)'\)/g)) {
      assert.ok(target.startsWith('node:') || target.startsWith('./'), `${file} requires ${target}`);
    }
  }
});

it('the published schemas are where schemaPaths says', () => {
  const { schemaPaths } = require('..');
  for (const file of Object.values(schemaPaths)) {
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).$schema, 'https://json-schema.org/draft/2020-12/schema');
  }
});
