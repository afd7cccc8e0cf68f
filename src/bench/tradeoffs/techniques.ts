/**
 * The techniques of the trade-off study (VEE'15 taxonomy), each as the source
 * parameters that force it, and the consistency mode it stands for: reads of
 * the running guest (live), reads while it is paused (paused), a copy taken
 * per pass (snapshot), or live reads validated afterwards (optimistic).
 */
export type ConsistencyMode = 'live' | 'paused' | 'snapshot' | 'optimistic';

export interface StudyTechnique {
  /** Stable key in tradeoffs.json. */
  readonly id: string;
  readonly label: string;
  /** Taxonomy class. */
  readonly class: string;
  /** Query parameters added to the lab source (`lab:NAME?…`). */
  readonly params: string;
  readonly mode: ConsistencyMode;
  /** Passes validate (the optimistic consistent mode). */
  readonly validate?: boolean;
}

export const STUDY_TECHNIQUES: readonly StudyTechnique[] = [
  { id: 'live-map-mmap', label: 'live map (mmap)', class: 'live-map', params: 'technique=live-map', mode: 'live' },
  { id: 'live-map-pread', label: 'live map (pread)', class: 'live-map', params: 'technique=live-map&pread=1', mode: 'live' },
  { id: 'live-read-readv', label: 'live read (process_vm_readv)', class: 'live-read', params: 'technique=live-read&method=process_vm_readv', mode: 'live' },
  { id: 'live-read-procmem', label: 'live read (/proc/PID/mem)', class: 'live-read', params: 'technique=live-read&method=proc-mem', mode: 'live' },
  { id: 'halting-mmap', label: 'guest-halting (mmap)', class: 'guest-halting', params: 'technique=live-map&halting=1', mode: 'paused' },
  { id: 'halting-readv', label: 'guest-halting (process_vm_readv)', class: 'guest-halting', params: 'technique=live-read&halting=1', mode: 'paused' },
  { id: 'halt-snapshot-pmemsave', label: 'halt snapshot (pmemsave)', class: 'halt-snapshot', params: 'technique=halt-snapshot&method=pmemsave', mode: 'snapshot' },
  { id: 'halt-snapshot-dump', label: 'halt snapshot (dump-guest-memory)', class: 'halt-snapshot', params: 'technique=halt-snapshot&method=dump', mode: 'snapshot' },
  { id: 'live-snapshot-background', label: 'live snapshot (background)', class: 'live-snapshot', params: 'technique=live-snapshot&mode=background', mode: 'snapshot' },
  { id: 'live-snapshot-precopy', label: 'live snapshot (pre-copy)', class: 'live-snapshot', params: 'technique=live-snapshot&mode=precopy', mode: 'snapshot' },
  { id: 'debugger-stub', label: 'debugger stub (gdbstub)', class: 'debugger-stub', params: 'technique=debugger-stub', mode: 'live' },
  { id: 'monitor-read', label: 'monitor reads (QMP xp)', class: 'monitor-read', params: 'technique=monitor-read', mode: 'live' },
  { id: 'optimistic-mmap', label: 'optimistic: live map + validation', class: 'live-map', params: 'technique=live-map', mode: 'optimistic', validate: true },
];

/** The lab source that forces `t`, snapshot files kept under `tmpDir` (removed by the study on any exit). */
export function techniqueSpec(source: string, t: StudyTechnique, tmpDir: string): string {
  const dir = t.mode === 'snapshot' ? `&dir=${tmpDir}` : '';
  return `${source}${source.includes('?') ? '&' : '?'}${t.params}${dir}`;
}

/** Techniques picked by id (comma list) or all. UsageError text when an id is unknown. */
export function pickTechniques(list: string | undefined): StudyTechnique[] {
  if (!list || list === 'all') return [...STUDY_TECHNIQUES];
  const ids = list.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ids.filter((id) => !STUDY_TECHNIQUES.some((t) => t.id === id));
  if (bad.length) throw new Error(`unknown technique ${bad.join(', ')} (have: ${STUDY_TECHNIQUES.map((t) => t.id).join(', ')})`);
  return STUDY_TECHNIQUES.filter((t) => ids.includes(t.id));
}
