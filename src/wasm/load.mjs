// Load a hyperc component under Node.js: jco transpiles it (once per
// component: the output is cached by the component's sha256) into JS glue
// that implements the canonical ABI on the host side, and instantiates it
// synchronously, so that every import is a plain JS function that may block
// (the wasm host's receive waits on its socket) and `init` is a plain call.
import { transpileBytes } from '@bytecodealliance/jco-transpile';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export function cacheDir() {
  return process.env.HYPERC_WASM_CACHE || path.join(os.tmpdir(), 'hyperc-wasm-cache');
}

// The transpiled form of `bytes` in the cache (made if missing): its folder.
// Written to a temporary folder and renamed, so hosts starting at once never
// see half of it.
export async function transpiled(bytes, dir = cacheDir()) {
  const hash = crypto.createHash('sha256').update(bytes).digest('hex');
  const out = path.join(dir, hash);
  if (fs.existsSync(path.join(out, 'proc.js')))
    return out;
  const r = await transpileBytes(bytes, {
    name: 'proc', instantiation: { tag: 'sync' }, noTypescript: true,
  });
  fs.mkdirSync(dir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(dir, `.${hash}-`));
  for (const [name, data] of Object.entries(r.files)) {
    if (name.endsWith('.d.ts'))
      continue;
    fs.mkdirSync(path.dirname(path.join(tmp, name)), { recursive: true });
    fs.writeFileSync(path.join(tmp, name), data);
  }
  try {
    fs.renameSync(tmp, out);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true }); // another host won
    if (!fs.existsSync(path.join(out, 'proc.js')))
      throw e;
  }
  return out;
}

// Instantiate the component at `file` with `imports` (an object keyed by
// interface name without version: 'hyperware:process/standard', ...):
// its exports ({ init }).  Throws with a sentence when the file is not a
// component of the expected world.
export async function loadComponent(file, imports) {
  const bytes = fs.readFileSync(file);
  const dir = await transpiled(bytes);
  const glue = await import(pathToFileURL(path.join(dir, 'proc.js')).href);
  return glue.instantiate(
    (name) => new WebAssembly.Module(fs.readFileSync(path.join(dir, name))),
    imports);
}
