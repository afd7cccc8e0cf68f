/**
 * Loaded kernel modules, three ways: the `modules` list (what lsmod and
 * /proc/modules show), the sysfs view (`module_kset`: one kobject per
 * /sys/module entry, whose module_kobject points back at its struct module),
 * and carving (struct module candidates found in the module mapping area by
 * their mkobj.mod back-pointer). A module in the second or third view but not
 * in the first has been unlinked: hidden.
 *
 * Memory layout by presence (R8): since Linux kernel commit ac3b43283923
 * ("module: replace module_layout with module_memory") (in v6.4) a module has
 * `mem[MOD_*]` (struct module_memory {base, size}); before, `core_layout` and
 * `init_layout` (struct module_layout {base, size, text_size, ...}).
 */
import { ObjValue, ObjValue as Value } from '../profile/typed.js';
import type { AnomalySink } from './anomaly.js';
import type { Kernel } from './kernel.js';
import { listForEach, listForEachEntry } from './walk/list.js';
import { gva } from '../core/address.js';

/** enum module_state, as /proc/modules words it. */
const STATE_WORDS: Record<string, string> = {
  MODULE_STATE_LIVE: 'Live',
  MODULE_STATE_COMING: 'Loading',
  MODULE_STATE_GOING: 'Unloading',
  MODULE_STATE_UNFORMED: 'Unformed',
};

/** What a struct module's name can be (a C identifier, hyphens allowed by modprobe's aliasing, < 56 bytes). */
const MODULE_NAME_RE = /^[A-Za-z0-9_-]{1,55}$/;
const KNOWN_STATES: ReadonlySet<string> = new Set(Object.values(STATE_WORDS));


/** Taint letters by bit (kernel/panic.c taint_flags), the ones a module can carry. */
const MODULE_TAINTS: Record<number, string> = { 0: 'P', 1: 'F', 10: 'C', 12: 'O', 13: 'E', 15: 'K', 16: 'X', 17: 'T' };

/** enum mod_mem_type order (v6.4+): which mem[] entries are init memory. */
const MOD_MEM_NAMES = ['text', 'data', 'rodata', 'ro_after_init', 'init_text', 'init_data', 'init_rodata'];

export interface ModuleRange {
  readonly kind: string;
  readonly base: bigint;
  readonly size: number;
}

export interface ModuleInfo {
  /** struct module address. */
  readonly address: bigint;
  readonly name: string;
  /** 'Live', 'Loading', 'Unloading', 'Unformed' or the raw number. */
  readonly state: string;
  /** Core base as /proc/modules prints it (core_layout.base / mem[MOD_TEXT].base). */
  readonly base: bigint;
  /** Size as /proc/modules prints it (init + core). */
  readonly size: number;
  /** Every memory region of the module (for address ownership). */
  readonly ranges: readonly ModuleRange[];
  /** refcnt - MODULE_REF_BASE, undefined without CONFIG_MODULE_UNLOAD. */
  readonly refcount: number | undefined;
  /** Taint letters, e.g. 'OE'. */
  readonly taints: string;
  /** struct module_kobject address (mkobj). */
  readonly kobject: bigint;
  /** mkobj.mod points back at this module (a consistency check). */
  readonly kobjectConsistent: boolean;
}

/** Decodes one struct module value. */
export function decodeModule(m: ObjValue): ModuleInfo {
  const ranges: ModuleRange[] = [];
  let base = 0n;
  let size = 0;
  if (m.has('mem')) {
    const n = Math.min(m.length('mem'), 16);
    for (let i = 0; i < n; i++) {
      const b = m.ptr(`mem[${i}].base`);
      const s = m.num(`mem[${i}].size`);
      if (i === 0) base = b;
      size += s;
      if (b !== 0n && s > 0) ranges.push({ kind: MOD_MEM_NAMES[i] ?? `mem${i}`, base: b, size: s });
    }
  } else {
    for (const layout of ['core_layout', 'init_layout', 'data_layout']) {
      if (!m.has(layout)) continue;
      const b = m.ptr(`${layout}.base`);
      const s = m.num(`${layout}.size`);
      if (layout === 'core_layout') base = b;
      size += s;
      if (b !== 0n && s > 0) ranges.push({ kind: layout.replace('_layout', ''), base: b, size: s });
    }
  }
  const stateName = m.enumName('state');
  const state = stateName !== undefined ? (STATE_WORDS[stateName] ?? stateName) : String(m.int('state'));
  let taints = '';
  if (m.has('taints')) {
    const t = BigInt.asUintN(64, m.int('taints'));
    for (const [bit, letter] of Object.entries(MODULE_TAINTS)) if ((t >> BigInt(bit)) & 1n) taints += letter;
  }
  return {
    address: m.address,
    name: m.str('name'),
    state,
    base,
    size,
    ranges,
    refcount: m.has('refcnt') ? m.num('refcnt.counter') - 1 : undefined,
    taints,
    kobject: m.addrOf('mkobj'),
    kobjectConsistent: m.ptr('mkobj.mod') === m.address,
  };
}

/**
 * The `modules` list in list order (newest first, like lsmod).
 * @param kernel needs symbol `modules` (struct list_head)
 */
export function* listModules(kernel: Kernel, anomalies: AnomalySink): Generator<ModuleInfo> {
  const head = kernel.symbol('modules');
  for (const ref of listForEachEntry(kernel.typed, head, 'module', 'list', { anomalies, limit: 4096 })) {
    try {
      const m = decodeModule(ref.read());
      // Module names are C identifiers (MODULE_NAME_LEN 56) and the state one of the enum's: anything else
      // is a corrupt or forged struct module, shown as read but named.
      if (!MODULE_NAME_RE.test(m.name)) anomalies.add({ kind: 'invalid', where: 'module.name', address: ref.address, detail: `not a module name: ${JSON.stringify(m.name.slice(0, 60))}` });
      if (!KNOWN_STATES.has(m.state)) anomalies.add({ kind: 'invalid', where: 'module.state', address: ref.address, detail: `unknown module state ${m.state}` });
      // A live struct module sits in module memory, its mkobj points back at it and its memory lies in the module area.
      if (!m.kobjectConsistent) anomalies.add({ kind: 'broken-link', where: 'module.mkobj.mod', address: ref.address, detail: 'the module kobject does not point back at this module' });
      const outside = m.ranges.find((r) => !inModuleArea(r.base, r.size));
      if (outside) anomalies.add({ kind: 'invalid', where: `module.${outside.kind}`, address: ref.address, detail: `memory 0x${outside.base.toString(16)}+${outside.size} outside the module area` });
      yield m;
    } catch (e) {
      anomalies.add({ kind: 'fault', where: 'module', address: ref.address, detail: (e as Error).message });
    }
  }
}

export interface SysfsModule {
  /** kobject name (/sys/module/<name>). */
  readonly name: string;
  readonly kobject: bigint;
  /** module_kobject.mod: NULL for built-in modules that only have parameters. */
  readonly module: bigint;
}

/**
 * The sysfs view: every kobject in `module_kset`'s list, with the struct
 * module its module_kobject points at.
 * @param kernel needs symbol `module_kset` (struct kset *)
 */
export function* sysfsModules(kernel: Kernel, anomalies: AnomalySink): Generator<SysfsModule> {
  const { typed, space } = kernel;
  const kset = space.readPointer(kernel.symbol('module_kset'));
  if (kset === 0n) return;
  const listHead = typed.obj('kset', kset).addrOf('list');
  const kobjOff = typed.db.offsetOf('module_kobject', 'kobj');
  const entryOff = typed.db.offsetOf('kobject', 'entry');
  for (const node of listForEach(typed, listHead, { anomalies, limit: 16384, where: 'module_kset.list' })) {
    const kobj = node - BigInt(entryOff);
    try {
      const k = typed.obj('kobject', kobj).read();
      const name = k.cstr('name', 64) ?? '';
      const mk = typed.obj('module_kobject', kobj - BigInt(kobjOff)).read();
      yield { name, kobject: kobj, module: mk.ptr('mod') };
    } catch (e) {
      anomalies.add({ kind: 'fault', where: 'module_kobject', address: kobj, detail: (e as Error).message });
    }
  }
}

/** x86-64 module area bounds (MODULES_VADDR..MODULES_END); the start is raised to the kernel image end. */
const MODULES_VADDR_MIN = 0xffff_ffff_a000_0000n;
const MODULES_END = 0xffff_ffff_ff00_0000n;
/** Most bytes of module memory carving reads (hostile page tables could map the whole area). */
const MAX_CARVE_BYTES = 256 << 20;

/** True when [base, base+size) lies inside the x86_64 module mapping area. */
function inModuleArea(base: bigint, size: number): boolean {
  return base >= MODULES_VADDR_MIN && base + BigInt(size) <= MODULES_END;
}

/** The module mapping area to carve: from the end of the kernel image to MODULES_END. */
export function moduleArea(kernel: Kernel): { start: bigint; end: bigint } {
  const end = kernel.symbols.tryAddress('_end');
  let start = MODULES_VADDR_MIN;
  if (end !== undefined && end > start) start = (end + 0x1f_ffffn) & ~0x1f_ffffn;
  return { start, end: MODULES_END };
}

/**
 * Scans buffer `b` (guest bytes of `va`..) for struct module candidates: an
 * 8-aligned position whose mkobj.mod points back at it, with a printable
 * NUL-terminated name and a valid state.
 */
export function carveModulesInBuffer(kernel: Kernel, va: bigint, b: Uint8Array): ModuleInfo[] {
  const { typed } = kernel;
  const type = typed.typeId('module');
  const size = typed.db.sizeOf(type);
  const modOff = typed.db.offsetOf('module', 'mkobj.mod');
  const nameOff = typed.db.offsetOf('module', 'name');
  const stateOff = typed.db.offsetOf('module', 'state');
  const nameLen = typed.db.field('module', 'name').size;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: ModuleInfo[] = [];
  // Compare the back-pointer as two 32-bit halves: BigInt reads per position would dominate.
  const vaLo = Number(va & 0xffff_ffffn);
  const vaHi = Number((va >> 32n) & 0xffff_ffffn);
  for (let o = 0; o + size <= b.length; o += 8) {
    const lo = vaLo + o;
    if (dv.getUint32(o + modOff, true) !== lo % 0x1_0000_0000 || dv.getUint32(o + modOff + 4, true) !== (vaHi + Math.floor(lo / 0x1_0000_0000)) % 0x1_0000_0000) continue;
    if (dv.getUint32(o + stateOff, true) > 3) continue;
    let n = 0;
    while (n < nameLen && b[o + nameOff + n] !== 0) {
      const c = b[o + nameOff + n]!;
      if (c < 0x21 || c > 0x7e) break;
      n++;
    }
    if (n === 0 || n >= nameLen || b[o + nameOff + n] !== 0) continue;
    out.push(decodeModule(new Value(typed, type, va + BigInt(o), b.subarray(o, o + size))));
  }
  return out;
}

/** Struct module candidates carved from the mapped pages of the module area. */
export function carveModules(kernel: Kernel, anomalies: AnomalySink): ModuleInfo[] {
  const { start, end } = moduleArea(kernel);
  // Merge adjacent mappings into runs so a struct crossing a page boundary is read whole.
  const runs: { va: bigint; len: number }[] = [];
  let total = 0;
  for (const m of kernel.space.mappings({ start, end, limit: 1 << 20 })) {
    const last = runs[runs.length - 1];
    if (last && last.va + BigInt(last.len) === m.va) last.len += m.size;
    else runs.push({ va: m.va, len: m.size });
    total += m.size;
    if (total > MAX_CARVE_BYTES) {
      anomalies.add({ kind: 'limit', where: 'module area carving', address: m.va, detail: `more than ${MAX_CARVE_BYTES} bytes mapped` });
      break;
    }
  }
  const out: ModuleInfo[] = [];
  for (const r of runs) {
    const b = new Uint8Array(r.len);
    const failures = kernel.space.readv([{ va: gva(r.va), len: r.len, dst: b }]);
    for (const f of failures) anomalies.add({ kind: 'fault', where: 'module area carving', address: f.va, detail: f.reason });
    out.push(...carveModulesInBuffer(kernel, r.va, b));
  }
  return out;
}

export interface ModuleView {
  readonly name: string;
  readonly address: bigint;
  readonly inList: boolean;
  readonly inSysfs: boolean;
  readonly carved: boolean;
  readonly info: ModuleInfo | undefined;
}

/** Cross-view of the three sources, keyed by struct module address. */
export function crossViewModules(kernel: Kernel, anomalies: AnomalySink, opts: { carve?: boolean } = {}): ModuleView[] {
  const byAddr = new Map<bigint, { name: string; inList: boolean; inSysfs: boolean; carved: boolean; info: ModuleInfo | undefined }>();
  const get = (address: bigint, name: string) => {
    let v = byAddr.get(address);
    if (!v) byAddr.set(address, (v = { name, inList: false, inSysfs: false, carved: false, info: undefined }));
    return v;
  };
  for (const m of listModules(kernel, anomalies)) {
    const v = get(m.address, m.name);
    v.inList = true;
    v.info = m;
  }
  for (const s of sysfsModules(kernel, anomalies)) {
    if (s.module === 0n) continue; // built-in: parameters only
    const v = get(s.module, s.name);
    v.inSysfs = true;
    if (!v.info) {
      try {
        v.info = decodeModule(kernel.typed.obj('module', s.module).read());
        v.name = v.info.name;
      } catch (e) {
        anomalies.add({ kind: 'fault', where: 'module_kobject.mod', address: s.module, detail: (e as Error).message });
      }
    }
  }
  if (opts.carve !== false) {
    for (const m of carveModules(kernel, anomalies)) {
      const v = get(m.address, m.name);
      v.carved = true;
      v.info ??= m;
    }
  }
  return [...byAddr.entries()].map(([address, v]) => ({ address, ...v }));
}

/** Finds the module owning an address among `mods` (region containment). */
export function moduleOwning(mods: readonly ModuleInfo[], va: bigint): ModuleInfo | undefined {
  for (const m of mods) for (const r of m.ranges) if (va >= r.base && va < r.base + BigInt(r.size)) return m;
  return undefined;
}

/** Every module any view knows (list, sysfs, carving), for address ownership. */
export function allKnownModules(kernel: Kernel, anomalies: AnomalySink): ModuleInfo[] {
  return crossViewModules(kernel, anomalies).flatMap((v) => (v.info ? [v.info] : []));
}

export interface ModuleSymbol {
  readonly name: string;
  readonly address: bigint;
  readonly type: string;
  readonly size: bigint;
}

/** Most symbols read from one module's kallsyms (hostile num_symtab). */
const MAX_MODULE_SYMBOLS = 200_000;
const ELF64_SYM_SIZE = 24;

/**
 * A module's own kallsyms (mod->kallsyms: symtab, num_symtab, strtab,
 * typetab), the symbols /proc/kallsyms shows with `[module]`; empty names are
 * skipped as the kernel does.
 */
export function moduleSymbols(kernel: Kernel, moduleAddress: bigint, anomalies: AnomalySink): ModuleSymbol[] {
  const { typed, space } = kernel;
  const m = typed.obj('module', moduleAddress).read();
  const ks = m.obj('kallsyms')?.read();
  if (!ks) return [];
  const num = ks.num('num_symtab');
  if (num < 0 || num > MAX_MODULE_SYMBOLS) {
    anomalies.add({ kind: 'invalid', where: 'mod_kallsyms.num_symtab', address: ks.address, detail: String(num) });
    return [];
  }
  const symtab = ks.ptr('symtab');
  const strtab = ks.ptr('strtab');
  const typetab = ks.has('typetab') ? ks.ptr('typetab') : 0n;
  const syms = new Uint8Array(num * ELF64_SYM_SIZE);
  const types = new Uint8Array(num);
  const ops = [{ va: gva(symtab), len: syms.length, dst: syms }];
  if (typetab !== 0n) ops.push({ va: gva(typetab), len: num, dst: types });
  for (const f of space.readv(ops)) anomalies.add({ kind: 'fault', where: 'mod_kallsyms', address: f.va, detail: f.reason });
  const dv = new DataView(syms.buffer);
  // The string table has no recorded size: read it up to the largest name offset + a bound.
  let maxName = 0;
  for (let i = 0; i < num; i++) maxName = Math.max(maxName, dv.getUint32(i * ELF64_SYM_SIZE, true));
  const strLen = Math.min(maxName + 512, 16 << 20);
  const strs = new Uint8Array(strLen);
  for (const f of space.readv([{ va: gva(strtab), len: strLen, dst: strs }])) {
    anomalies.add({ kind: 'fault', where: 'mod_kallsyms.strtab', address: f.va, detail: f.reason });
  }
  const out: ModuleSymbol[] = [];
  for (let i = 0; i < num; i++) {
    const o = i * ELF64_SYM_SIZE;
    const nameOff = dv.getUint32(o, true);
    if (nameOff >= strLen) continue;
    let e = nameOff;
    while (e < strLen && e - nameOff < 512 && strs[e] !== 0) e++;
    if (e === nameOff) continue;
    const name = Buffer.from(strs.buffer, strs.byteOffset + nameOff, e - nameOff).toString('utf8');
    const t = types[i] ? String.fromCharCode(types[i]!) : '?';
    out.push({ name, address: dv.getBigUint64(o + 8, true), type: t, size: dv.getBigUint64(o + 16, true) });
  }
  return out;
}

/**
 * A resolver from address to `module:symbol+off` over the given modules'
 * kallsyms (built lazily per module, cached for this resolver's life).
 */
export function moduleSymbolResolver(kernel: Kernel, mods: readonly ModuleInfo[], anomalies: AnomalySink): (va: bigint) => string | undefined {
  const cache = new Map<bigint, ModuleSymbol[]>();
  return (va) => {
    const m = moduleOwning(mods, va);
    if (!m) return undefined;
    let syms = cache.get(m.address);
    if (!syms) {
      try {
        syms = moduleSymbols(kernel, m.address, anomalies);
      } catch (e) {
        anomalies.add({ kind: 'fault', where: 'module.kallsyms', address: m.address, detail: (e as Error).message });
        syms = [];
      }
      cache.set(m.address, syms);
    }
    let best: ModuleSymbol | undefined;
    for (const s of syms) if (s.address <= va && (!best || s.address > best.address) && /[tTwW]/.test(s.type)) best = s;
    if (!best) return `[${m.name}]+0x${(va - m.base).toString(16)}`;
    const off = va - best.address;
    return `${best.name}${off ? `+0x${off.toString(16)}` : ''} [${m.name}]`;
  };
}

/** Names of the modules using this one (mod->source_list of struct module_use), as /proc/modules lists them. */
export function moduleUsers(kernel: Kernel, moduleAddress: bigint, anomalies: AnomalySink): string[] {
  const { typed } = kernel;
  if (!typed.has('module', 'source_list')) return [];
  const head = typed.obj('module', moduleAddress).addrOf('source_list');
  const out: string[] = [];
  for (const use of listForEachEntry(typed, head, 'module_use', 'source_list', { anomalies, limit: 4096 })) {
    try {
      const src = use.read().obj('source')?.read();
      if (src) out.push(src.str('name'));
    } catch (e) {
      anomalies.add({ kind: 'fault', where: 'module_use.source', address: use.address, detail: (e as Error).message });
    }
  }
  return out;
}
