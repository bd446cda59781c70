// The native addons' constants come from the TypeScript sources, so the two sides cannot drift:
// this module reads src/constants.ts (limits, protections, page state bits) and src/errors.ts
// (error codes, exit codes) and renders native/generated/dsm_constants.h. scripts/build-native.mjs
// writes the header before compiling; test/unit/native-constants.test.ts fails when the committed
// header differs from what this renders, or when a rendered value differs from the module's value.
//
// It runs on `npm install` of a fresh clone, before TypeScript is compiled, with node alone: the
// sources are read as text. A constant the addons use must be `export const name = <expression>;`
// on one line, the expression arithmetic over numbers and earlier constants.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const headerPath = join(root, 'native', 'generated', 'dsm_constants.h');

/**
 * What the addons use from src/constants.ts: the TypeScript name, the C++ type, and the C++ name
 * when it is not `k` + the name capitalized.
 */
export const nativeConstants = [
  { name: 'pageBytes', type: 'size_t' },
  { name: 'pageShift', type: 'int' },
  { name: 'faultSlotCount', type: 'uint32_t' },
  { name: 'dirtyRingCapacity', type: 'uint64_t' },
  { name: 'touchRingCapacity', type: 'uint64_t' },
  { name: 'diffPwriteRunsMax', type: 'size_t' },
  { name: 'diffPwriteCountMax', type: 'uint8_t' },
  { name: 'twinPoolSlotCount', type: 'uint32_t' },
  { name: 'twinPoolPretouchCount', type: 'uint32_t' },
  { name: 'mallocMmapThresholdBytes', type: 'int' },
  { name: 'mallocTrimThresholdBytes', type: 'int' },
  { name: 'prefaultQueueRunCountMax', type: 'size_t' },
  { name: 'prefaultChunkPages', type: 'uint64_t' },
  { name: 'writeAheadPageCountMax', type: 'uint32_t' },
  { name: 'pagePackGainDivisor', type: 'size_t' },
  { name: 'pagePackProbeBytes', type: 'size_t' },
  { name: 'writeAheadRunPagesMin', type: 'uint32_t' },
  { name: 'dirtyAheadTag', type: 'uint32_t' },
  { name: 'dirtyAheadZeroTag', type: 'uint32_t' },
  { name: 'parkSpinCount', type: 'uint32_t' },
  { name: 'parkYieldUs', type: 'uint32_t' },
  { name: 'parkSpinUsMax', type: 'int64_t' },
  { name: 'parkYieldContendedUs', type: 'int64_t' },
  { name: 'managerPollFreshUs', type: 'int64_t' },
  { name: 'protNone', type: 'uint8_t' },
  { name: 'protRead', type: 'uint8_t' },
  { name: 'protReadWrite', type: 'uint8_t' },
  { name: 'pageStateProtMask', type: 'uint8_t', cpp: 'kProtMask' },
  { name: 'pageStateFastWrite', type: 'uint8_t', cpp: 'kFastWrite' },
  { name: 'pageStateHasTwin', type: 'uint8_t', cpp: 'kHasTwin' },
  { name: 'pageStateTwinless', type: 'uint8_t', cpp: 'kTwinless' },
  { name: 'pageStateTouchAhead', type: 'uint8_t', cpp: 'kTouchAhead' },
  { name: 'pageStateTouchWake', type: 'uint8_t', cpp: 'kTouchWake' },
  { name: 'pageStateBusy', type: 'uint8_t', cpp: 'kBusy' },
  { name: 'faultFlagWrite', type: 'uint32_t' },
  { name: 'faultFlagOffsetShift', type: 'uint32_t' },
  { name: 'signalGraceMs', type: 'int64_t' },
  { name: 'watchdogChildCountMax', type: 'int', cpp: 'kChildCountMax' },
  { name: 'watchdogActivityCountMax', type: 'int', cpp: 'kActivityCountMax' },
  { name: 'watchdogActivityNameBytes', type: 'int', cpp: 'kActivityNameBytes' },
  { name: 'watchdogPollMs', type: 'long', cpp: 'kPollMs' },
  { name: 'watchdogOversleepExcusedMs', type: 'int64_t', cpp: 'kOversleepExcusedMs' },
];

/** The values each C++ type holds (int and long as on Linux x64/arm64: 32 and 64 bits). */
const typeRanges = {
  uint8_t: [0, 0xff], int: [-(2 ** 31), 2 ** 31 - 1], uint32_t: [0, 2 ** 32 - 1],
  int64_t: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], long: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64_t: [0, Number.MAX_SAFE_INTEGER], size_t: [0, Number.MAX_SAFE_INTEGER],
};

export function cppName(entry) {
  return entry.cpp ?? `k${entry.name[0].toUpperCase()}${entry.name.slice(1)}`;
}

/** Every `export const name = expression;` of a source file whose expression evaluates, in order. */
export function readConstants(source) {
  const values = new Map();
  for (const match of source.matchAll(/^export const (\w+) = ([^;\n]+);/gm)) {
    const [, name, expression] = match;
    if (!/^[\w\s+\-*/%()<>&|^~.]+$/.test(expression)) continue;  // not arithmetic (e.g. an object)
    try {
      const value = new Function(...values.keys(), `return (${expression});`)(...values.values());
      if (typeof value === 'number' && Number.isFinite(value)) values.set(name, value);
    } catch {
      // an expression over something that is not a constant: not for the addons
    }
  }
  return values;
}

/** The error codes (keys of errorCodes) and exit codes (exitCode* constants) of src/errors.ts. */
export function readErrors(source) {
  const table = /export const errorCodes = \{([\s\S]*?)\n\} as const;/.exec(source);
  if (table === null) throw new Error('src/errors.ts: no errorCodes table');
  const codes = [...table[1].matchAll(/^\s+(DSM_ERR_[A-Z0-9_]+):/gm)].map((m) => m[1]);
  const exits = [...readConstants(source)].filter(([name]) => name.startsWith('exitCode'));
  return { codes, exits };
}

export function renderHeader(constantsSource, errorsSource) {
  const values = readConstants(constantsSource);
  const { codes, exits } = readErrors(errorsSource);
  const lines = [
    '// Generated by scripts/native-constants.mjs from src/constants.ts and src/errors.ts: do not edit.',
    '// `npm run build:native` rewrites it; test/unit/native-constants.test.ts checks it is current.',
    '#pragma once',
    '',
    '#include <cstddef>',
    '#include <cstdint>',
    '',
    'namespace dsm_constants {',
    '',
  ];
  for (const entry of nativeConstants) {
    const value = values.get(entry.name);
    if (value === undefined || !Number.isInteger(value)) {
      throw new Error(`src/constants.ts: ${entry.name} is not an integer constant the generator can read`);
    }
    const [low, high] = typeRanges[entry.type];
    if (value < low || value > high) throw new Error(`src/constants.ts: ${entry.name} = ${value} does not fit the addon's ${entry.type}`);
    const text = entry.name.startsWith('pageState') ? `0x${value.toString(16).padStart(2, '0')}` : String(value);
    lines.push(`constexpr ${entry.type} ${cppName(entry)} = ${text};  // ${entry.name}`);
  }
  lines.push('');
  for (const [name, value] of exits) lines.push(`constexpr int k${name[0].toUpperCase()}${name.slice(1)} = ${value};  // ${name}`);
  lines.push('', '}  // namespace dsm_constants', '');
  lines.push('// Error codes (errorCodes in src/errors.ts), as string literals so they join other literals.');
  for (const code of codes) lines.push(`#define ${code} "${code}"`);
  lines.push('');
  return lines.join('\n');
}

export function renderFromSources(base = root) {
  return renderHeader(readFileSync(join(base, 'src', 'constants.ts'), 'utf8'), readFileSync(join(base, 'src', 'errors.ts'), 'utf8'));
}

/** Writes the header when its text changed (an unchanged header keeps its time, so make rebuilds nothing). */
export function writeHeader() {
  const text = renderFromSources();
  let current = null;
  try { current = readFileSync(headerPath, 'utf8'); } catch { /* first build */ }
  if (current === text) return false;
  mkdirSync(dirname(headerPath), { recursive: true });
  writeFileSync(headerPath, text);
  return true;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(writeHeader() ? `dsm: wrote ${headerPath}` : `dsm: ${headerPath} is current`);
}
