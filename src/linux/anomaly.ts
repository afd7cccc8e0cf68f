/**
 * Anomalies: what a bounded walk met in (hostile or changing) guest memory.
 * Walkers never throw for these mid-walk; they yield what they reached and
 * record an anomaly. The counts travel with every plugin result: they are the
 * consistency data of the trade-off study and the evidence of tampering.
 */

export type AnomalyKind =
  | 'cycle' // a list/tree led back to a node already visited
  | 'broken-link' // next->prev (or parent link) does not point back
  | 'fault' // a pointer led to unreadable memory
  | 'bad-pointer' // a pointer outside the kernel's address ranges (not canonical, user half, etc.)
  | 'limit' // the walk hit its bound before the end
  | 'invalid' // a value out of its possible range (absurd length, bad magic)
  | 'truncated'; // a string or array was cut at its bound

export interface Anomaly {
  readonly kind: AnomalyKind;
  /** What was being walked, e.g. 'task_struct.tasks', 'mm_struct.mm_mt'. */
  readonly where: string;
  /** Guest-virtual address involved, when there is one. */
  readonly address?: bigint;
  readonly detail?: string;
}

/** Collects anomalies with a cap, so a hostile guest cannot make us hoard millions of them. */
export class AnomalySink {
  readonly items: Anomaly[] = [];
  readonly counts: Partial<Record<AnomalyKind, number>> = {};
  dropped = 0;
  /**
   * Back-links that disagreed on the first read and agreed on a re-read
   * microseconds later (walk/list.ts): a live guest's update caught half-done,
   * healed — not anomalies, counted to show how often the live view tore.
   */
  settled = 0;

  constructor(private readonly cap = 1000) {}

  add(a: Anomaly): void {
    this.counts[a.kind] = (this.counts[a.kind] ?? 0) + 1;
    if (this.items.length < this.cap) this.items.push(a);
    else this.dropped++;
  }

  get total(): number {
    return this.items.length + this.dropped;
  }
}
