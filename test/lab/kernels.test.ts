import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/core/errors.js';
import { parseKernelSpec } from '../../src/lab/kernels.js';

test('kernel specs map to a suite metapackage or a package name', () => {
  assert.deepEqual(parseKernelSpec('6.1'), { kind: 'meta', suite: 'bookworm', metapackage: 'linux-image-amd64' });
  assert.deepEqual(parseKernelSpec('5.10'), { kind: 'meta', suite: 'bullseye', metapackage: 'linux-image-amd64' });
  assert.deepEqual(parseKernelSpec('6.12-rt'), { kind: 'meta', suite: 'trixie', metapackage: 'linux-image-rt-amd64' });
  assert.deepEqual(parseKernelSpec('6.1-cloud'), { kind: 'meta', suite: 'bookworm', metapackage: 'linux-image-cloud-amd64' });
  assert.deepEqual(parseKernelSpec('trixie'), { kind: 'meta', suite: 'trixie', metapackage: 'linux-image-amd64' });
  assert.deepEqual(parseKernelSpec('linux-image-6.12.95+deb12-amd64'), { kind: 'package', package: 'linux-image-6.12.95+deb12-amd64' });
});

test('unknown or unsafe specs are usage errors', () => {
  for (const bad of ['6.2', '6.1-foo', 'sid', '', 'linux-image-$(reboot)', '../6.1']) {
    assert.throws(() => parseKernelSpec(bad), UsageError, bad);
  }
});
