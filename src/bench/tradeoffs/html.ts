/**
 * report.html of the trade-off study: one self-contained page (no scripts, no
 * external files) with inline SVG plots, the written summary, the test bed
 * and the raw tables. Every text from the study is escaped.
 */
import type { StudyResult, TechniqueResult, TestBed } from './study.js';
import type { StudySummary } from './summary.js';

export const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const W = 720;
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31'];

interface Bar {
  readonly label: string;
  readonly value: number;
}

/** Horizontal bars, optionally on a log scale (values ≤ 0 or not finite are drawn as 'n/a'). */
export function barChart(title: string, unit: string, bars: readonly Bar[], log = false): string {
  const rowH = 22;
  const left = 260;
  const h = 40 + bars.length * rowH + 30;
  const finite = bars.map((b) => b.value).filter((v) => Number.isFinite(v) && (!log || v > 0));
  const max = finite.length ? Math.max(...finite) : 1;
  const min = log && finite.length ? Math.min(...finite) : 0;
  const lo = log ? Math.floor(Math.log10(min || 1e-3)) : 0;
  const hi = log ? Math.ceil(Math.log10(max || 1)) + (max === min ? 1 : 0) : max || 1;
  const plotW = W - left - 60;
  const x = (v: number) => (log ? ((Math.log10(v) - lo) / Math.max(1e-9, hi - lo)) * plotW : (v / hi) * plotW);
  const parts: string[] = [`<text x="10" y="20" font-weight="bold">${esc(title)}</text>`];
  bars.forEach((b, i) => {
    const y = 36 + i * rowH;
    parts.push(`<text x="${left - 6}" y="${y + 14}" text-anchor="end" font-size="12">${esc(b.label)}</text>`);
    const ok = Number.isFinite(b.value) && (!log || b.value > 0);
    if (ok) {
      const w = Math.max(1, x(b.value));
      parts.push(`<rect x="${left}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLORS[i % COLORS.length]}" data-label="${esc(b.label)}" data-value="${b.value}"/>`);
      parts.push(`<text x="${left + w + 4}" y="${y + 14}" font-size="11">${esc(+b.value.toPrecision(3))}</text>`);
    } else parts.push(`<text x="${left + 4}" y="${y + 14}" font-size="11" fill="#888">n/a</text>`);
  });
  const axisY = 36 + bars.length * rowH + 4;
  parts.push(`<line x1="${left}" y1="${axisY}" x2="${left + plotW}" y2="${axisY}" stroke="#444"/>`);
  if (log) for (let e = lo; e <= hi; e++) parts.push(`<text x="${left + x(10 ** e)}" y="${axisY + 14}" font-size="10" text-anchor="middle">1e${e}</text>`);
  parts.push(`<text x="${left + plotW}" y="${axisY + 26}" font-size="11" text-anchor="end">${esc(unit)}${log ? ' (log scale)' : ''}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif">${parts.join('')}</svg>`;
}

interface Series {
  readonly label: string;
  readonly points: readonly { readonly x: number; readonly y: number }[];
}

/** Lines on a log-x plot (x = passes per second achieved), y linear. */
export function lineChart(title: string, xUnit: string, yUnit: string, series: readonly Series[]): string {
  const h = 300 + Math.ceil(series.length / 3) * 16;
  const [l, r, t, b] = [60, 20, 30, 60];
  const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && p.x > 0);
  const xs = pts.map((p) => Math.log10(p.x));
  const ys = pts.map((p) => p.y);
  const x0 = xs.length ? Math.floor(Math.min(...xs)) : -1;
  const x1 = xs.length ? Math.max(x0 + 1, Math.ceil(Math.max(...xs))) : 2;
  const y0 = Math.min(0, ...ys);
  const y1 = Math.max(1, ...ys);
  const pw = W - l - r;
  const ph = 300 - t - b;
  const px = (v: number) => l + ((Math.log10(v) - x0) / (x1 - x0)) * pw;
  const py = (v: number) => t + ph - ((v - y0) / (y1 - y0)) * ph;
  const parts: string[] = [`<text x="10" y="18" font-weight="bold">${esc(title)}</text>`];
  parts.push(`<line x1="${l}" y1="${py(0)}" x2="${l + pw}" y2="${py(0)}" stroke="#aaa"/><line x1="${l}" y1="${t}" x2="${l}" y2="${t + ph}" stroke="#444"/>`);
  for (let e = x0; e <= x1; e++) parts.push(`<text x="${px(10 ** e)}" y="${t + ph + 14}" font-size="10" text-anchor="middle">1e${e}</text>`);
  parts.push(`<text x="${l + pw}" y="${t + ph + 28}" font-size="11" text-anchor="end">${esc(xUnit)} (log scale)</text>`);
  parts.push(`<text x="${l - 4}" y="${t + 4}" font-size="10" text-anchor="end">${esc(+y1.toPrecision(3))}</text><text x="${l - 4}" y="${t + ph}" font-size="10" text-anchor="end">${esc(+y0.toPrecision(3))}</text>`);
  parts.push(`<text x="12" y="${t + ph / 2}" font-size="11" transform="rotate(-90 12 ${t + ph / 2})" text-anchor="middle">${esc(yUnit)}</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const p = s.points.filter((q) => Number.isFinite(q.x) && Number.isFinite(q.y) && q.x > 0).sort((a, b2) => a.x - b2.x);
    if (p.length) parts.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${p.map((q) => `${px(q.x).toFixed(1)},${py(q.y).toFixed(1)}`).join(' ')}"/>`);
    for (const q of p) parts.push(`<circle cx="${px(q.x).toFixed(1)}" cy="${py(q.y).toFixed(1)}" r="2.5" fill="${c}" data-series="${esc(s.label)}" data-x="${q.x}" data-y="${q.y}"/>`);
    const lx = 10 + (i % 3) * 240;
    const ly = 300 + Math.floor(i / 3) * 16;
    parts.push(`<rect x="${lx}" y="${ly - 8}" width="10" height="10" fill="${c}"/><text x="${lx + 14}" y="${ly + 1}" font-size="11">${esc(s.label)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif">${parts.join('')}</svg>`;
}

/** Grouped bars: anomalies per pass by kind, one group per mode. */
function anomalyChart(summary: StudySummary): string {
  const bars: Bar[] = [];
  for (const m of summary.modes) {
    bars.push({ label: `${m.mode} (${m.technique}): all`, value: m.anomaliesPerPass });
    for (const [k, v] of Object.entries(m.perPass)) bars.push({ label: `${m.mode}: ${k}`, value: v });
  }
  return barChart('Anomalies per pass under churn: live / paused / snapshot / optimistic', 'anomalies per pass', bars);
}

function table(columns: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cell = (v: unknown) => `<td>${esc(typeof v === 'number' ? (Number.isFinite(v) ? +v.toPrecision(4) : '') : v ?? '')}</td>`;
  return `<table><thead><tr>${columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table>`;
}

/** The plots of the report, in order: the test counts one <svg> per entry. */
export function plots(r: StudyResult, summary: StudySummary): { id: string; svg: string }[] {
  const ts = r.techniques;
  const out = [
    { id: 'frequency', svg: barChart('Maximum monitoring frequency (pslist+lsmod+sockstat, idle guest)', 'passes per second', ts.map((t) => ({ label: t.label, value: t.frequency[0]?.passesPerSec ?? NaN })), true) },
  ];
  const kinds = [...new Set(ts.flatMap((t) => t.impact.map((i) => i.kind)))];
  for (const kind of kinds) {
    const series: Series[] = ts
      .filter((t) => t.impact.some((i) => i.kind === kind && i.rate !== 'off'))
      .map((t) => ({ label: t.label, points: t.impact.filter((i) => i.kind === kind && i.rate !== 'off').map((i) => ({ x: i.achievedHz, y: i.slowdownPct })) }));
    out.push({ id: `slowdown-${kind}`, svg: lineChart(`Guest slowdown vs monitoring frequency: ${kind} bench`, 'passes per second reached', 'slowdown %', series) });
  }
  out.push({ id: 'host-cpu', svg: barChart('Host CPU per pass (vmsight + extra QEMU CPU)', 'CPU ms per pass', ts.map((t) => ({ label: t.label, value: (t.frequency[0]?.hostCpuMsPerPass ?? NaN) + Math.max(0, t.frequency[0]?.qemuExtraCpuMsPerPass ?? NaN) }))) });
  out.push({ id: 'anomalies', svg: anomalyChart(summary) });
  return out;
}

function techniqueRows(ts: readonly TechniqueResult[]): string {
  return table(
    ['technique', 'status', 'attach ms', 'passes/s (light)', 'p50 ms', 'p99 ms', 'passes/s (heavy)', 'our CPU ms/pass', 'QEMU extra CPU ms/pass', 'RSS peak MiB', 'anomalies/pass (churn)', 'our CPU ms/pass (churn)'],
    ts.map((t) => {
      const f = t.frequency[0];
      const h = t.frequency[1];
      return [t.label, t.skipped ? `skipped: ${t.skipped}` : t.ended ? `ended: ${t.ended}` : 'ok', t.attachMs, f?.passesPerSec, f?.latencyMs.p50, f?.latencyMs.p99, h?.passesPerSec, f?.hostCpuMsPerPass, f?.qemuExtraCpuMsPerPass, f?.rssPeakMiB, t.consistency?.anomaliesPerPass, t.consistency?.hostCpuMsPerPass];
    }),
  );
}

function impactRows(ts: readonly TechniqueResult[]): string {
  return table(
    ['technique', 'bench', 'rate', 'reached Hz', 'throughput per host s', 'per guest s', 'unit', 'spread (sd)', 'slowdown %', '95% CI %', 'noise floor %', 'resolved', 'runs', 'errors'],
    ts.flatMap((t) =>
      t.impact.map((i) => [t.label, i.kind, i.rate, i.achievedHz, i.mean, i.guestClockMean, i.unit, i.sd, i.slowdownPct, i.ci95Pct && Number.isFinite(i.ci95Pct[0]) ? `${i.ci95Pct[0]} … ${i.ci95Pct[1]}${i.rate === 'off' ? ' (control)' : ''}` : '', i.noiseFloorPct, i.rate === 'off' ? '' : i.resolved ? 'yes' : 'no', i.runs.length, i.errors.join('; ')]),
    ),
  );
}

export function renderHtml(r: StudyResult, summary: StudySummary, bed: TestBed, meta: { date: string; mode: string; durationS: number }): string {
  const emulated = bed.emulated ? ' <strong>The guest runs emulated (TCG): absolute guest figures are those of an emulated CPU, not of hardware virtualization.</strong>' : '';
  const p = plots(r, summary);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vmsight trade-off study</title>
<style>body{font-family:sans-serif;max-width:1000px;margin:1em auto;padding:0 1em}table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}figure{margin:1em 0}</style>
</head><body>
<h1>VMI trade-off study (VEE 2015), measured by vmsight</h1>
<p>${esc(meta.mode)} run of ${esc(meta.date)}, ${esc(meta.durationS.toFixed(0))} s.${emulated}</p>
<h2>Summary</h2>
<ul>${summary.findings.map((f) => `<li>${esc(f)}</li>`).join('')}</ul>
<h2>Test bed</h2>
${table(['item', 'value'], [
  ['CPU', bed.cpuModel],
  ['cores', bed.cores],
  ['host memory GiB', bed.hostMemGiB],
  ['host kernel', bed.hostKernel],
  ['QEMU', bed.qemu],
  ['accelerator', `${bed.accelerator}${bed.emulated ? ' (emulated)' : ''}`],
  ['guest kernel', bed.guestKernel],
  ['guest RAM MiB', bed.guestMemMiB],
  ['guest vCPUs', bed.guestSmp],
  ['QEMU idle CPU %', r.qemuIdleCpuPct],
  ['node', bed.node],
])}
<h2>Plots</h2>
${p.map((x) => `<figure id="${esc(x.id)}">${x.svg}</figure>`).join('\n')}
<h2>Consistency: what pausing removes (extrinsic) and what it cannot (intrinsic), per pass</h2>
${table(['anomaly kind', 'intrinsic', 'extrinsic'], summary.split.map((s) => [s.kind, s.intrinsic, s.extrinsic]))}
<h2>Techniques</h2>
${techniqueRows(r.techniques)}
<h2>Guest impact</h2>
<p>Throughput is the guest's work per host second: the guest's own clock stops while QEMU is paused, so its own figure (per guest s) hides what pausing costs. Each round runs every cell once in a random order, with a second unmonitored run as a control; a slowdown is paired with its round's unmonitored run, and is resolved only when its 95% interval excludes 0 and it exceeds the noise floor (the control's slowdown plus its interval).</p>
${impactRows(r.techniques)}
<h2>In-guest benches, monitoring off</h2>
${table(['bench', 'throughput', 'unit', 'sd', 'runs', 'exec overhead s', 'errors'], r.baseline.map((b) => [b.kind, b.mean, b.unit, b.sd, b.runs.length, b.overheadS, b.errors.join('; ')]))}
</body></html>
`;
}
