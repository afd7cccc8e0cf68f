/**
 * `vmsight sources [<source>]`: without a source, the memory-access
 * techniques vmsight knows (VEE'15 class, implementation, summary). With one,
 * how each technique fits that target, best first, and which one `info`,
 * `read` and the plugins would pick — without opening anything.
 */
import { FACTORIES, ONLY_WHEN_ASKED, parseSourceSpec, rankTechniques, resolveSourceTarget } from '../../memory/open.js';
import { describeLibvirtDomains, libvirtTarget, locateLibvirtRam, rankLibvirt } from '../../memory/sources/libvirt.js';
import { LibvirtMonitor } from '../../qemu/libvirt.js';
import type { Command } from '../command.js';
import type { Output } from '../render.js';

/** `sources libvirt:` lists the domains; `sources libvirt:NAME` ranks the techniques for one. */
async function libvirtSources(spec: string, domain: string, params: Readonly<Record<string, string>>, out: Output): Promise<number> {
  const t = libvirtTarget(spec, domain, params);
  if (!domain) {
    const rows = await describeLibvirtDomains(t.uri);
    out.rows(
      [
        { key: 'domain', kind: 'str' },
        { key: 'state', kind: 'str' },
        { key: 'backing', kind: 'str' },
        { key: 'pid', kind: 'int' },
        { key: 'techniques', kind: 'str' },
        { key: 'reason', kind: 'str' },
      ],
      rows.map((r) => ({ ...r })),
    );
    if (!rows.length) out.text(`no libvirt domains at ${t.uri}`);
    return 0;
  }
  const monitor = new LibvirtMonitor(t.uri, domain);
  try {
    const ranked = rankLibvirt(await locateLibvirtRam(t, monitor));
    const pick = ranked.find((c) => c.ok);
    out.rows(
      [
        { key: 'chosen', kind: 'str' },
        { key: 'factory', title: 'name', kind: 'str' },
        { key: 'class', kind: 'str' },
        { key: 'ok', title: 'fits', kind: 'bool' },
        { key: 'rank', kind: 'float' },
        { key: 'reason', kind: 'str' },
      ],
      ranked.map((c) => ({ ...c, chosen: c === pick ? '*' : '' })),
    );
    return pick ? 0 : 3;
  } finally {
    await monitor.close();
  }
}

export const command: Command = {
  name: 'sources',
  aliases: ['techniques'],
  summary: 'list memory-access techniques, or rank them for a target',
  usage: '[<source>]   (a dump path, lab guest, qmp:SOCK, shm:FILE?qmp=SOCK, pid:PID?qmp=SOCK, gdb:[HOST:]PORT, libvirt:[NAME][?uri=URI])',
  async run(args, ctx) {
    const spec = args.positionals[0];
    if (!spec) {
      ctx.out.rows(
        [
          { key: 'name', kind: 'str' },
          { key: 'class', kind: 'str' },
          { key: 'summary', kind: 'str' },
        ],
        FACTORIES.map((f) => ({ name: f.name, class: f.class, summary: f.summary })),
      );
      return 0;
    }
    const parsed = parseSourceSpec(spec);
    if (parsed.libvirt !== undefined) return libvirtSources(spec, parsed.libvirt, parsed.params, ctx.out);
    const target = resolveSourceTarget(parsed);
    const ranked = await rankTechniques(target);
    const pick = ranked.find((c) => c.ok && !ONLY_WHEN_ASKED.has(c.class));
    ctx.out.rows(
      [
        { key: 'chosen', kind: 'str' },
        { key: 'factory', title: 'name', kind: 'str' },
        { key: 'class', kind: 'str' },
        { key: 'ok', title: 'fits', kind: 'bool' },
        { key: 'rank', kind: 'float' },
        { key: 'reason', kind: 'str' },
      ],
      ranked.map((c) => ({ ...c, chosen: c === pick ? '*' : c.ok && ONLY_WHEN_ASKED.has(c.class) ? 'ask' : '' })),
    );
    if (!pick) ctx.out.text('no technique fits this target');
    return pick ? 0 : 3;
  },
};
