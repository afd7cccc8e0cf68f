/** How the study's phases stop: the abort signal checked between passes, sleeps it cuts short, a QEMU that went away. */
import { guestAlive, type LabGuest } from '../../lab/index.js';

export class StudyAborted extends Error {
  constructor() {
    super('study interrupted');
  }
}

export const check = (signal: AbortSignal): void => {
  if (signal.aborted) throw new StudyAborted();
};

export const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, ms));
    signal.addEventListener('abort', done, { once: true });
  });

/** Why the guest's QEMU cannot be studied any more, or undefined while it runs. */
export function qemuGone(guest: LabGuest): string | undefined {
  return guestAlive(guest) ? undefined : `QEMU of guest '${guest.name}' (pid ${guest.pid}) is gone`;
}
