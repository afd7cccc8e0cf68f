import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { aptOptions, defaultMirrors, kernelDependency, parseAptSources, parseStanza, preparePrivateApt, sourcesList } from '../../src/lab/apt.js';

const mirrors = { archive: 'http://mirror.example/debian', security: 'http://mirror.example/debian-security' };

test('each suite lists its release, -updates, -security and (not bullseye) backports', () => {
  assert.equal(
    sourcesList('bookworm', mirrors),
    [
      'deb http://mirror.example/debian bookworm main',
      'deb http://mirror.example/debian bookworm-updates main',
      'deb http://mirror.example/debian-security bookworm-security main',
      'deb http://mirror.example/debian bookworm-backports main',
      '',
    ].join('\n'),
  );
  assert.doesNotMatch(sourcesList('bullseye', mirrors), /backports/);
  assert.match(sourcesList('trixie', mirrors), /trixie-security main/);
});

test('apt options point every state and cache path into the private directory', () => {
  const opts = aptOptions('/cache/apt/bookworm');
  const values = new Map<string, string>();
  for (let i = 0; i < opts.length; i += 2) {
    assert.equal(opts[i], '-o');
    const [k, v] = opts[i + 1]!.split(/=(.*)/s);
    values.set(k!, v!);
  }
  for (const key of ['Dir::Etc::SourceList', 'Dir::Etc::SourceParts', 'Dir::State::Lists', 'Dir::State::status', 'Dir::Cache::archives', 'Dir::Cache::pkgcache', 'Dir::Etc::Preferences']) {
    assert.ok(values.get(key)?.startsWith('/cache/apt/bookworm'), `${key} = ${values.get(key)}`);
  }
  assert.equal(values.get('APT::Architecture'), 'amd64');
  // Nothing may name the host's apt state.
  for (const v of values.values()) assert.doesNotMatch(v, /^\/var\/lib\/apt|^\/etc\/apt\/sources/);
});

test('the private tree is created once and a changed sources.list invalidates the update stamp', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmsight-apt-'));
  try {
    const dir = preparePrivateApt(root, 'trixie', mirrors);
    assert.equal(fs.readFileSync(path.join(dir, 'sources.list'), 'utf8'), sourcesList('trixie', mirrors));
    assert.equal(fs.readFileSync(path.join(dir, 'status'), 'utf8'), '');
    assert.ok(fs.statSync(path.join(dir, 'lists', 'partial')).isDirectory());
    fs.writeFileSync(path.join(dir, 'updated'), 'x');
    preparePrivateApt(root, 'trixie', mirrors);
    assert.ok(fs.existsSync(path.join(dir, 'updated')), 'same list keeps the stamp');
    preparePrivateApt(root, 'trixie', { ...mirrors, archive: 'http://other.example/debian' });
    assert.ok(!fs.existsSync(path.join(dir, 'updated')), 'a new mirror forces apt-get update');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('apt-cache stanzas and metapackage dependencies parse', () => {
  const text = [
    'Package: linux-image-amd64',
    'Source: linux-signed-amd64 (6.1.192+2)',
    'Version: 6.1.192-2',
    'Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)',
    'Description: Linux for 64-bit PCs (meta-package)',
    ' continued description',
    'Size: 1500',
    '',
    'Package: linux-image-amd64',
    'Version: 6.1.180-1',
    '',
  ].join('\n');
  const rec = parseStanza(text)!;
  assert.equal(rec.version, '6.1.192-2');
  assert.equal(rec.size, 1500);
  assert.equal(kernelDependency(rec), 'linux-image-6.1.0-56-amd64');
  assert.equal(kernelDependency({ package: 'x', version: '1', depends: ['linux-base', 'linux-image-6.12.117+deb13-cloud-amd64 (= 6.12.117-1) | foo'] }), 'linux-image-6.12.117+deb13-cloud-amd64');
  assert.equal(kernelDependency({ package: 'x', version: '1', depends: ['linux-base (>= 4)'] }), undefined);
  assert.equal(parseStanza('garbage'), undefined);
});

test('mirrors come from the host apt sources, one-line or deb822, never hard-coded', () => {
  const deb822 = [
    'Types: deb',
    '# a comment',
    'URIs: http://mirror.example/debian',
    'Suites: bookworm bookworm-updates',
    'Components: main',
    '',
    'Types: deb-src',
    'URIs: http://src.example/debian',
    'Suites: bookworm',
    '',
    'Types: deb',
    'URIs: http://mirror.example/debian-security/',
    'Suites: bookworm-security',
  ].join('\n');
  const fromDeb822 = parseAptSources(deb822);
  assert.deepEqual(fromDeb822.map((s) => s.uri), ['http://mirror.example/debian', 'http://mirror.example/debian-security/']);
  assert.deepEqual(defaultMirrors(fromDeb822), { archive: 'http://mirror.example/debian', security: 'http://mirror.example/debian-security' });
  const oneLine = parseAptSources('deb [arch=amd64] http://a.example/debian bookworm main\ndeb http://b.example/debian-security bookworm-security main\ndeb http://other.example/node nodistro main\n');
  assert.deepEqual(defaultMirrors(oneLine), { archive: 'http://a.example/debian', security: 'http://b.example/debian-security' });
  assert.throws(() => defaultMirrors(parseAptSources('deb http://other.example/node nodistro main\n')), /no Debian archive.*|VMSIGHT_DEBIAN_MIRROR/);
});
