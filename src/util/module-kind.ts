// Decides how Node would load a program file: as CommonJS or as an ES module.

import { existsSync, readFileSync } from 'node:fs';
import { Module } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';

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

/**
 * The file Node runs for a worker's (or a program's) path, as its main-module resolution finds it: the path
 * itself, else with .js, .json or .node added, or a folder's package main or index; false when there is none
 * (Node then throws MODULE_NOT_FOUND, "Cannot find module '<path>'", whatever the extension).
 */
export function findMainPath(path: string): string | false {
  return (Module as unknown as { _findPath(request: string, paths: null, isMain: boolean): string | false })._findPath(resolve(path), null, true);
}

/** Throws the error Node throws for a main module it cannot find. */
export function throwMainNotFound(path: string): never {
  (Module as unknown as { _load(request: string, parent: null, isMain: boolean): unknown })._load(path, null, true);
  throw new Error(`Cannot find module '${path}'`);
}
