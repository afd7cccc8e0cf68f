/**
 * The frames of the lab's exec channel (see role_exec in
 * scenario/vmi-helper.c for the guest side and the frame types):
 * 'V' 'X' type len(u32 LE) payload crc32(u32 LE over type, len, payload),
 * every payload starting with a u32 id. The decoder resynchronises byte by
 * byte after a bad frame, so stray bytes from an earlier session cost only a
 * reported error, never a wedged stream.
 */

export const FRAME_MAX_PAYLOAD = 128 * 1024;
const HEADER = 7;
const TRAILER = 4;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE, reflected), as zlib computes it. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

export interface Frame {
  type: string;
  id: number;
  body: Buffer;
}

export function encodeFrame(type: string, id: number, body: Uint8Array = Buffer.alloc(0)): Buffer {
  if (type.length !== 1) throw new RangeError(`frame type '${type}' must be one character`);
  if (body.length + 4 > FRAME_MAX_PAYLOAD) throw new RangeError(`frame body of ${body.length} bytes exceeds ${FRAME_MAX_PAYLOAD - 4}`);
  const f = Buffer.alloc(HEADER + 4 + body.length + TRAILER);
  f.write('VX', 0, 'latin1');
  f[2] = type.charCodeAt(0);
  f.writeUInt32LE(4 + body.length, 3);
  f.writeUInt32LE(id >>> 0, 7);
  f.set(body, 11);
  f.writeUInt32LE(crc32(f.subarray(2, 11 + body.length)), 11 + body.length);
  return f;
}

/** A frame whose body is little-endian u32s. */
export function encodeU32Frame(type: string, id: number, ...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32LE(v >>> 0, i * 4));
  return encodeFrame(type, id, b);
}

/** Incremental decoder: push bytes, get whole frames; `errors` counts what was skipped and why. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  readonly errors: string[] = [];

  push(chunk: Uint8Array): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: Frame[] = [];
    let pos = 0;
    let skipped = 0;
    const b = this.buf;
    while (pos < b.length) {
      if (b[pos] !== 0x56 /* V */ || (pos + 1 < b.length && b[pos + 1] !== 0x58) /* X */) {
        pos++;
        skipped++;
        continue;
      }
      if (b.length - pos < HEADER) break;
      const len = b.readUInt32LE(pos + 3);
      if (len < 4 || len > FRAME_MAX_PAYLOAD) {
        this.errors.push(`bad frame length ${len}`);
        pos++;
        continue;
      }
      if (b.length - pos < HEADER + len + TRAILER) break;
      const crc = b.readUInt32LE(pos + HEADER + len);
      if (crc !== crc32(b.subarray(pos + 2, pos + HEADER + len))) {
        this.errors.push(`checksum mismatch on a frame of ${len} bytes`);
        pos++;
        continue;
      }
      out.push({
        type: String.fromCharCode(b[pos + 2]!),
        id: b.readUInt32LE(pos + HEADER),
        body: Buffer.from(b.subarray(pos + HEADER + 4, pos + HEADER + len)),
      });
      pos += HEADER + len + TRAILER;
    }
    if (skipped) this.errors.push(`${skipped} stray bytes skipped`);
    this.buf = pos >= b.length ? Buffer.alloc(0) : Buffer.from(b.subarray(pos));
    return out;
  }

  /** Bytes held for an incomplete frame. */
  get pending(): number {
    return this.buf.length;
  }
}
