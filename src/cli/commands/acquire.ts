/**
 * `vmsight acquire <source> -o FILE [--technique T] [--live] [--keep]`: writes guest memory as an
 * ELF core (QEMU's dump layout, read by vmsight and Volatility 3). By default a live guest is paused for the
 * copy (guest-halting access: one consistent instant) and always resumed, signals included; `--live` copies
 * while it runs. The kernel's facts (release, build-id, KASLR offset, banner) go into a "VMSIGHT" ELF note and
 * a side file FILE.json, VMCOREINFO into its usual note; the SHA-256 of the file is printed.
 */
import fs from 'node:fs';
import { hex, UsageError } from '../../core/errors.js';
import { startProgress } from '../../core/progress.js';
import { readPhys } from '../../memory/access.js';
import { writeElfCore, type ElfNoteSpec } from '../../memory/formats/elf-writer.js';
import { openSource, parseSourceSpec } from '../../memory/open.js';
import type { PhysicalMemory } from '../../memory/types.js';
import { bootstrapKernelSpace } from '../../profile/kernel-space.js';
import type { Command } from '../command.js';
import { requireSource, stringOption } from './common.js';
import { monotonicMs } from '../../core/clock.js';

const USAGE = '<source> -o FILE [--technique CLASS|NAME] [--live] [--keep]';
const SNAPSHOTS = new Set(['halt-snapshot', 'live-snapshot']);
/** Techniques that read with the guest stopped anyway (all-stop) or read a frozen copy: no extra pause. */
const NO_PAUSE = new Set([...SNAPSHOTS, 'debugger-stub', 'gdb-stub', 'file', 'elf-core', 'kdump', 'lime', 'raw-file']);

/** The kernel's facts for the note and side file; empty when the memory holds no recognisable Linux kernel. */
async function kernelFacts(memory: PhysicalMemory): Promise<{ facts: Record<string, unknown>; vmcoreinfo?: string; note?: string }> {
  try {
    const ks = await bootstrapKernelSpace(memory, { bannerScan: 'image', lazyHints: true });
    const copy = ks.vmcoreinfoCopy;
    let vmcoreinfo: string | undefined;
    if (copy?.pa !== undefined) vmcoreinfo = Buffer.from(readPhys(memory, copy.pa, copy.length)).toString('latin1').replace(/\0+$/, '');
    else vmcoreinfo = (await memory.hints?.().catch(() => undefined))?.vmcoreinfo;
    const facts: Record<string, unknown> = {
      release: ks.release,
      buildId: ks.vmcoreinfo?.buildId,
      banner: ks.banner?.text,
      kaslrOffset: ks.kaslr ? hex(ks.kaslr.virtualShift) : undefined,
      physBase: ks.kaslr ? (ks.kaslr.physBase < 0n ? `-${hex(-ks.kaslr.physBase)}` : hex(ks.kaslr.physBase)) : undefined,
      pagingLevels: ks.levels,
      dtb: hex(ks.dtb),
    };
    return { facts, ...(vmcoreinfo ? { vmcoreinfo } : {}) };
  } catch (e) {
    return { facts: {}, note: `no kernel facts: ${(e as Error).message}` };
  }
}

export const command: Command = {
  name: 'acquire',
  summary: 'write guest memory to an ELF core (paused for consistency unless --live), with its SHA-256 and the kernel facts',
  usage: USAGE,
  options: {
    output: { type: 'string', short: 'o' },
    technique: { type: 'string' },
    live: { type: 'boolean' },
    keep: { type: 'boolean' },
  },
  async run(args, ctx) {
    const spec = requireSource(args, `vmsight acquire ${USAGE}`);
    const file = stringOption(args, 'output');
    if (!file) throw new UsageError('acquire needs -o FILE', { hint: `usage: vmsight acquire ${USAGE}` });
    if (fs.existsSync(file)) throw new UsageError(`${file} already exists`, { hint: 'acquire never overwrites: choose another -o FILE' });
    const technique = stringOption(args, 'technique');
    const live = args.values['live'] === true;
    const keep = args.values['keep'] === true;
    if (keep && !(technique && SNAPSHOTS.has(technique))) {
      throw new UsageError('--keep keeps the snapshot a snapshot technique took', { hint: 'add --technique halt-snapshot or --technique live-snapshot' });
    }
    const target = parseSourceSpec(spec);
    const fromFile = target.file !== undefined;
    const gdbOnly = target.gdb !== undefined && target.qmp === undefined && target.lab === undefined;
    const pause = !live && !fromFile && !gdbOnly && !(technique && NO_PAUSE.has(technique));

    // Our own signal listeners: halting then resumes the guest without killing the process, and the copy
    // loop stops at its next batch, removes the partial file and closes the source.
    let interrupted: string | undefined;
    const onSignal = (s: NodeJS.Signals) => void (interrupted = `interrupted by ${s}`);
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, onSignal);
    const t0 = monotonicMs();
    try {
      const opened = await openSource(spec, { ...(technique !== undefined ? { technique } : {}), ...(pause ? { halting: true } : {}) });
      const memory = opened.memory;
      let kept: string | undefined;
      let written;
      let facts: Awaited<ReturnType<typeof kernelFacts>>;
      // Drawn by the CLI's renderer (on a terminal, not with --quiet: see cli/progress.ts).
      const bar = startProgress('acquire', 'bytes');
      const progress = Object.assign((done: number, total: number) => bar.update(done, total), { end: () => bar.end() });
      try {
        facts = await kernelFacts(memory);
        const consistency = fromFile ? 'file' : SNAPSHOTS.has(opened.chosen.class) ? 'snapshot' : pause || opened.chosen.class === 'debugger-stub' ? 'paused' : 'live';
        const meta = {
          tool: 'vmsight acquire',
          source: spec,
          technique: `${opened.chosen.class} (${opened.chosen.factory})`,
          consistency,
          acquiredAt: new Date().toISOString(),
          ...facts.facts,
        };
        const notes: ElfNoteSpec[] = [];
        if (facts.vmcoreinfo) notes.push({ name: 'VMCOREINFO', type: 0, desc: Buffer.from(facts.vmcoreinfo, 'latin1') });
        notes.push({ name: 'VMSIGHT', type: 1, desc: Buffer.from(JSON.stringify(meta), 'utf8') });
        written = await writeElfCore(memory, file, { notes, onProgress: progress, stop: () => interrupted });
        if (keep) kept = (memory as { keepSnapshot?: () => string }).keepSnapshot?.();
        await memory.close(); // resumes the guest before anything else
        const pausedMs = (memory as { stats?: { pausedMs: number } }).stats?.pausedMs;
        const sideFile = `${file}.json`;
        const record = {
          ...meta,
          file,
          bytes: written.bytes,
          sha256: written.sha256,
          ranges: written.ranges.map((r) => `${hex(r.start)}-${hex(r.end - 1)}`),
          unreadBytes: written.unreadBytes,
          ...(written.firstFailure ? { firstFailure: written.firstFailure } : {}),
          ...(pausedMs !== undefined ? { guestPausedMs: Math.round(pausedMs) } : {}),
          ...(kept ? { snapshotKept: kept } : {}),
          ...(facts.note ? { note: facts.note } : {}),
          ms: Math.round(monotonicMs() - t0),
          sideFile,
        };
        fs.writeFileSync(sideFile, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
        ctx.out.record(record);
      } finally {
        progress.end();
        await memory.close();
      }
    } finally {
      for (const s of signals) process.off(s, onSignal);
    }
  },
};
