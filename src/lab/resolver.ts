/**
 * Lab guests as named sources: hands the memory layer a resolver for lab guest names, so `vmsight pslist
 * k61` and `attachKernel('lab:k61')` find the guest's QMP sockets, RAM file, pid and gdbstub without the
 * memory layer importing the lab.
 */
import { setGuestResolver, type NamedGuest } from '../memory/open.js';
import { findGuest } from './guests.js';

export function labGuestEndpoints(name: string): NamedGuest | undefined {
  const g = findGuest(name);
  if (!g) return undefined;
  return { qmpSocket: g.qmpSocket, qmpSockets: g.qmpSockets, shmPath: g.shmPath, pid: g.pid, ...(g.gdbPort ? { gdbPort: g.gdbPort } : {}) };
}

/** Makes openSource resolve guest names to lab guests. */
export function useLabGuests(): void {
  setGuestResolver(labGuestEndpoints);
}
