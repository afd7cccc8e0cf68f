/**
 * Parses the HMP `xp /Ngx ADDR` answer: lines `ADDR: 0xWORD 0xWORD`, two
 * 64-bit little-endian words per line, or `ADDR: Cannot access memory`.
 */
export class XpError extends Error {}

const LINE = /^([0-9a-f]{1,16}):((?:\s+0x[0-9a-f]{1,16})+)\s*$/i;

/** Writes the `words` 8-byte words starting at `addr` into `dst`; throws XpError when QEMU could not read them. */
export function parseXp(text: string, addr: number, words: number, dst: Uint8Array): void {
  const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  let got = 0;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    if (/Cannot access memory/i.test(line)) {
      throw new XpError(`monitor cannot access guest-physical 0x${line.split(':')[0]}`);
    }
    const m = LINE.exec(line);
    if (!m) throw new XpError(`unexpected xp output: ${JSON.stringify(line.slice(0, 60))}`);
    const lineAddr = Number.parseInt(m[1]!, 16);
    if (lineAddr !== addr + got * 8) throw new XpError(`xp output out of order at 0x${m[1]}`);
    for (const w of m[2]!.trim().split(/\s+/)) {
      if (got >= words) throw new XpError('xp printed more words than asked');
      dv.setBigUint64(got * 8, BigInt(w), true);
      got++;
    }
  }
  if (got !== words) throw new XpError(`xp printed ${got} of ${words} words`);
}
