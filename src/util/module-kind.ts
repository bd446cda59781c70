// Decides how Node would load a program file: as CommonJS or as an ES module.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';

export type ModuleKind = 'commonjs' | 'module';

export function moduleKindOf(path: string): ModuleKind {
  const extension = extname(path);
  if (extension === '.cjs' || extension === '.cts') return 'commonjs';
  if (extension === '.mjs' || extension === '.mts') return 'module';
  let dir = dirname(path);
  for (let depth = 0; depth < 64; depth += 1) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        const type = (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: unknown }).type;
        return type === 'module' ? 'module' : 'commonjs';
      } catch {
        return 'commonjs';
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return 'commonjs';
}

export function isTypeScript(path: string): boolean {
  return /\.(ts|mts|cts|tsx)$/.test(path);
}
