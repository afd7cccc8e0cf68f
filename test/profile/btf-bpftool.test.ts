/**
 * Cross-checks the BTF parser against an independent decoder: Debian's
 * `bpftool btf dump file X format raw`, over the real vmlinux BTF of every
 * kernel in the lab cache. Every type's kind, name, size or referenced id,
 * every member's offset and bitfield width, and every enumerator must agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBtf } from '../../src/profile/btf.js';
import { bpftoolDump, describe, hasBpftool } from './helpers/bpftool.js';
import { realVmlinuxBtf } from './helpers/real-btf.js';

for (const prefer of ['5.10', '6.1', '6.12']) {
  test(`vmlinux BTF of ${prefer}: every type agrees with bpftool`, async (t) => {
    if (!hasBpftool()) {
      t.skip('bpftool is not installed (scripts/setup.mjs --test installs it)');
      return;
    }
    const real = await realVmlinuxBtf(prefer);
    if (!real || !real.kernel.startsWith(prefer)) {
      t.skip(`no ${prefer} kernel in the lab cache`);
      return;
    }
    const theirs = bpftoolDump(real.bytes);
    const btf = parseBtf(real.bytes, { source: `btf:${real.kernel}` });
    assert.equal(theirs.size, btf.count - 1);
    let compared = 0;
    for (let id = 1; id < btf.count; id++) {
      const ours = describe(btf.get(id));
      const want = theirs.get(id);
      assert.ok(want, `bpftool has no type ${id}`);
      // Compare the words bpftool prints that we decode (it adds encoding/linkage text we check elsewhere).
      assert.deepEqual(ours, want, `type ${id}`);
      compared++;
    }
    assert.equal(compared, btf.count - 1);
  });
}
