// `dsm plot TRACE -o FIG.svg|png`: DSM64's access-pattern figure (thesis
// Figures 6.1–6.4) from a `dsm run --trace` file: time across, page up, one
// colour per node, reads and writes as different marks. The chart is a
// vega-lite specification rendered headless to SVG by vega; PNG goes through
// resvg with a bundled DejaVu font, so no browser and no system fonts are needed.

import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { plotPointCountMax, plotTraceBytesMax } from '../constants.js';
import { assert, DsmError } from '../errors.js';

export interface PlotOptions {
  width?: number;
  height?: number;
  title?: string;
  /** Only pages in [first, last]. */
  pageRange?: [number, number];
}

export interface PlotResult {
  /** Accesses drawn (after sampling). */
  points: number;
  /** Accesses in the trace (before sampling). */
  accesses: number;
  nodes: number;
  format: 'svg' | 'png';
}

interface Access { seconds: number; page: number; node: string; nodeId: number; kind: 'read' | 'write' }

const formats = { '.svg': 'svg', '.png': 'png' } as const;

function traceError(path: string, what: string): DsmError {
  return new DsmError('DSM_ERR_TRACE', `${path}: ${what}; give a file written by \`dsm run --trace FILE\``);
}

/** Reads the fault events of a trace: each is one access of one node to one page. */
export function readAccesses(path: string): { accesses: Access[]; protocol: string; nodeCount: number } {
  let text: string;
  try {
    if (statSync(path).size > plotTraceBytesMax) {
      throw new DsmError('DSM_ERR_TRACE', `${path}: larger than ${plotTraceBytesMax} bytes (plotTraceBytesMax); trace a shorter run or fewer threads`);
    }
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof DsmError) throw error;
    throw traceError(path, `cannot be read (${(error as Error).message})`);
  }
  let trace: unknown;
  try {
    trace = JSON.parse(text);
  } catch (error) {
    throw traceError(path, `is not JSON (${(error as Error).message})`);
  }
  const events = (trace as { traceEvents?: unknown })?.traceEvents;
  if (!Array.isArray(events)) throw traceError(path, 'has no traceEvents array');
  const dsm = (trace as { otherData?: { dsm?: { protocol?: unknown; nodeCount?: unknown } } }).otherData?.dsm;
  const accesses: Access[] = [];
  for (const event of events as Array<Record<string, unknown>>) {
    if (event?.cat !== 'fault') continue;
    const page = (event.args as { page?: unknown } | undefined)?.page;
    if (typeof event.ts !== 'number' || typeof page !== 'number' || typeof event.pid !== 'number') {
      throw traceError(path, `has a fault event without a numeric ts, pid and args.page: ${JSON.stringify(event).slice(0, 120)}`);
    }
    accesses.push({ seconds: event.ts / 1e6, page, node: `node ${event.pid}`, nodeId: event.pid, kind: event.name === 'write fault' ? 'write' : 'read' });
  }
  const nodeCount = typeof dsm?.nodeCount === 'number' ? dsm.nodeCount : new Set(accesses.map((a) => a.node)).size;
  return { accesses, protocol: typeof dsm?.protocol === 'string' ? dsm.protocol : 'dsm', nodeCount };
}

/** Every k-th access, so that at most plotPointCountMax remain (in time order). */
function sample(accesses: Access[]): Access[] {
  if (accesses.length <= plotPointCountMax) return accesses;
  const stride = accesses.length / plotPointCountMax;
  const kept: Access[] = [];
  for (let index = 0; index < plotPointCountMax; index++) kept.push(accesses[Math.floor(index * stride)]!);
  return kept;
}

/**
 * Mark area in px² for a figure of pointCount marks: large enough to tell a
 * read's circle from a write's triangle when there are few, small enough that
 * a dense run does not become one blot.
 */
export function pointSize(pointCount: number): number {
  if (pointCount <= 300) return 60;
  if (pointCount <= 3_000) return 30;
  if (pointCount <= 15_000) return 16;
  return 9;
}

export function accessPatternSpec(accesses: Access[], meta: { title: string; subtitle: string; width: number; height: number; timeUnit: 's' | 'ms'; colourScheme: 'category10' | 'tableau20' }): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: meta.title, subtitle: meta.subtitle, anchor: 'start' },
    width: meta.width,
    height: meta.height,
    background: 'white',
    data: { values: accesses.map((access) => ({ ...access, time: meta.timeUnit === 'ms' ? access.seconds * 1000 : access.seconds })) },
    // Reads are hollow circles and writes filled triangles, so the two stay apart even where colours overlap.
    mark: { type: 'point', size: pointSize(accesses.length), strokeWidth: 1.2 },
    encoding: {
      x: { field: 'time', type: 'quantitative', title: `time since the run started (${meta.timeUnit})` },
      y: { field: 'page', type: 'quantitative', title: 'page (global page number)', scale: { zero: false }, axis: { format: 'd', tickMinStep: 1 } },
      // stroke and fill on one field, shape and fillOpacity on another: vega-lite merges each pair into one legend.
      stroke: { field: 'node', type: 'nominal', title: 'node', scale: { scheme: meta.colourScheme }, sort: { field: 'nodeId' } },
      fill: { field: 'node', type: 'nominal', title: 'node', scale: { scheme: meta.colourScheme }, sort: { field: 'nodeId' } },
      shape: {
        field: 'kind', type: 'nominal', title: 'access', sort: ['read', 'write'], scale: { domain: ['read', 'write'], range: ['circle', 'triangle-up'] },
      },
      fillOpacity: { field: 'kind', type: 'nominal', legend: null, sort: ['read', 'write'], scale: { domain: ['read', 'write'], range: [0, 0.85] } },
    },
    config: { font: 'DejaVu Sans', view: { stroke: '#ccc' }, legend: { symbolSize: 80 } },
  };
}

/**
 * vega-lite draws every legend symbol filled and has no per-entry style, so the
 * compiled Vega legend for the access kind is given the marks' own look (a
 * hollow circle for a read, a filled triangle for a write), and the node
 * legend comes first.
 */
function legendsAsMarks(spec: vega.Spec): vega.Spec {
  const legends = spec.legends ?? [];
  const kindLegend = legends.find((legend) => legend.shape !== undefined);
  assert(kindLegend !== undefined, 'the compiled figure has a legend for the access kind');
  kindLegend.encode = {
    symbols: {
      update: {
        fill: { value: '#555' }, stroke: { value: '#555' }, strokeWidth: { value: 1.2 }, opacity: { value: 1 },
        fillOpacity: { signal: "datum.value === 'read' ? 0 : 0.85" },
      },
    },
  };
  return { ...spec, legends: [...legends.filter((legend) => legend !== kindLegend), kindLegend] };
}

function fontFiles(): string[] {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('dejavu-fonts-ttf/package.json'));
  return ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((file) => join(root, 'ttf', file));
}

export async function plotTrace(tracePath: string, outPath: string, options: PlotOptions = {}): Promise<PlotResult> {
  const format = formats[extname(outPath).toLowerCase() as keyof typeof formats];
  if (format === undefined) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `dsm plot: cannot write '${outPath}': the figure's name must end in ${Object.keys(formats).join(' or ')}`);
  }
  const read = readAccesses(tracePath);
  let accesses = read.accesses;
  if (options.pageRange !== undefined) {
    const [first, last] = options.pageRange;
    accesses = accesses.filter((access) => access.page >= first && access.page <= last);
  }
  if (accesses.length === 0) {
    const where = options.pageRange === undefined ? '' : ` on pages ${options.pageRange[0]}–${options.pageRange[1]}`;
    // A one-node run's memory is all local: its trace records no faults.
    throw new DsmError('DSM_ERR_TRACE', `${tracePath}: holds no page faults${where} to draw; trace a run on more than one node (dsm run --nodes 2 or more)${where === '' ? '' : ', or widen the page range'}`);
  }
  accesses.sort((a, b) => a.seconds - b.seconds);
  const drawn = sample(accesses);
  const nodeCount = new Set(accesses.map((a) => a.node)).size;
  const reads = accesses.filter((access) => access.kind === 'read').length;
  const subtitle = `${accesses.length} faults (${reads} read, ${accesses.length - reads} write)`
    + (drawn.length < accesses.length ? `; sampled evenly: ${drawn.length} of them drawn` : '');
  const spec = accessPatternSpec(drawn, {
    title: options.title ?? `dsm access pattern — ${read.protocol}, ${read.nodeCount} node${read.nodeCount === 1 ? '' : 's'}`,
    subtitle, width: options.width ?? 900, height: options.height ?? 480,
    // A run shorter than a second reads better in milliseconds than in 0.004 s steps.
    timeUnit: accesses[accesses.length - 1]!.seconds < 1 ? 'ms' : 's',
    // Ten clearly different colours while they suffice, twenty (in light/dark pairs) for up to 20 nodes.
    colourScheme: nodeCount <= 10 ? 'category10' : 'tableau20',
  });
  const view = new vega.View(vega.parse(legendsAsMarks(compile(spec).spec)), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  try {
    if (format === 'svg') writeFileSync(outPath, svg);
    else writeFileSync(outPath, new Resvg(svg, { font: { fontFiles: fontFiles(), loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans' } }).render().asPng());
  } catch (error) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `dsm plot: cannot write '${outPath}' (${(error as Error).message}); choose a writable path`);
  }
  return { points: drawn.length, accesses: accesses.length, nodes: nodeCount, format };
}
