/**
 * pagecache: files with pages in the page cache (every inode of every
 * super block whose address_space caches pages), and with
 * `--dump INODE|PATH --dump-dir DIR` the cached content of one file written
 * out: each cached page at its file offset, pages not in memory as zeros,
 * cut at the file's size.
 */
import { UsageError } from '../../core/errors.js';
import { DumpDir } from '../dump.js';
import { fileKind } from '../files.js';
import { cachedInodes, cachedPages, type CachedInode } from '../pagecache.js';
import { absent, definePlugin, type Absent } from '../plugin.js';

export interface PagecacheRow {
  fs: string;
  device: string;
  inode: bigint;
  ino: bigint;
  type: string;
  size: bigint;
  pages: bigint;
  path: string | Absent;
  dumped: string | Absent;
  sha256: string | Absent;
}

const PAGE = 4096n;

/** True when `spec` (0xADDRESS of the struct inode, an inode number, or a path) names the inode. */
function matches(spec: string, i: CachedInode): boolean {
  if (/^0x[0-9a-f]+$/i.test(spec)) return BigInt(spec) === i.inode;
  if (/^\d+$/.test(spec)) return BigInt(spec) === i.ino;
  return i.path === spec;
}

export default definePlugin<PagecacheRow>()({
  name: 'pagecache',
  aliases: ['linux.pagecache.Files', 'linux.pagecache.InodePages'],
  version: '1.0.0',
  summary: 'Files with cached pages (super blocks, their inodes, nrpages); --dump INODE|PATH --dump-dir DIR extracts a file\'s cached content',
  requires: {
    symbols: ['super_blocks', 'vmemmap_base', 'page_offset_base'],
    types: ['page'],
    fields: [
      ['super_block', 's_list'],
      ['super_block', 's_inodes'],
      ['super_block', 's_type'],
      ['super_block', 's_id'],
      ['super_block', 's_root'],
      ['inode', 'i_sb_list'],
      ['inode', 'i_mapping'],
      ['inode', 'i_ino'],
      ['inode', 'i_mode'],
      ['inode', 'i_size'],
      ['inode', 'i_dentry'],
      ['address_space', 'nrpages'],
      ['address_space', 'i_pages'],
      ['dentry', 'd_u.d_alias'],
    ],
  },
  options: {
    dump: { type: 'string', valueName: 'INODE|PATH', description: 'extract this file: 0x address of its struct inode, its inode number, or its path as listed', byDefault: 'list only' },
    'dump-dir': { type: 'string', valueName: 'DIR', description: 'where --dump writes the file', byDefault: 'required with --dump' },
  },
  columns: [
    { key: 'fs', kind: 'str' },
    { key: 'device', kind: 'str' },
    { key: 'inode', kind: 'hex' },
    { key: 'ino', kind: 'int' },
    { key: 'type', kind: 'str' },
    { key: 'size', kind: 'int' },
    { key: 'pages', kind: 'int' },
    { key: 'path', kind: 'str' },
    { key: 'dumped', kind: 'str' },
    { key: 'sha256', kind: 'str' },
  ],
  key: (r) => r.inode.toString(16),
  *run(k, { options, anomalies }) {
    const spec = options.dump;
    if (spec !== undefined && !options['dump-dir']) throw new UsageError('pagecache: --dump needs --dump-dir DIR (where to write the file)');
    if (spec === undefined && options['dump-dir']) throw new UsageError('pagecache: --dump-dir is only used with --dump INODE|PATH');
    const dir = spec !== undefined ? new DumpDir(options['dump-dir']!) : undefined;
    for (const i of cachedInodes(k, anomalies)) {
      if (i.nrpages === 0n) continue;
      if (spec !== undefined && !matches(spec, i)) continue;
      let dumped: string | Absent = absent('not-applicable');
      let sha256: string | Absent = absent('not-applicable');
      if (dir) {
        const size = i.size > 0n ? i.size : 0n;
        const lastIndex = size === 0n ? -1n : (size - 1n) / PAGE;
        const pieces = function* () {
          for (const p of cachedPages(k, i.mapping, anomalies, lastIndex)) yield { offset: Number(p.index * PAGE), bytes: p.bytes };
        };
        const w = dir.writeSparse([i.ino, i.path ?? i.fs], Number(size), pieces());
        dumped = w.file;
        sha256 = w.sha256;
        if (w.truncated) anomalies.add({ kind: 'truncated', where: 'pagecache dump', address: i.inode, detail: `cut at ${w.size} of ${size} bytes` });
      }
      yield {
        fs: i.fs,
        device: i.device,
        inode: i.inode,
        ino: i.ino,
        type: fileKind(i.mode, i.path ?? ''),
        size: i.size,
        pages: i.nrpages,
        path: i.path ?? absent('not-available', 'no dentry names the inode'),
        dumped,
        sha256,
      };
    }
  },
});
