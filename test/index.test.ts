import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as vmsight from '../src/index.js';

test('the library entry exposes every layer', () => {
  for (const name of ['openSource', 'QmpClient', 'AddressSpace', 'bootstrapKernelSpace', 'loadKallsyms', 'parseBtf', 'TypeDb', 'Typed', 'importIsf', 'exportIsf', 'attachKernel', 'runPlugin', 'labUp', 'createOutput'] as const)
    assert.equal(typeof vmsight[name], 'function', name);
  assert.ok(vmsight.plugins.length >= 20);
  assert.equal(vmsight.findPlugin('linux.pslist.PsList')?.name, 'pslist');
  assert.equal(vmsight.ExitCode.usage, 2);
});
