// What a component imports and exports, as jco reads it:
//
//   node inspect.mjs FILE.wasm...   ->  {"imports": [...], "exports": [...]} a line each
//
// The component is decoded by jco's wasm-tools (its WIT world) and
// transpiled, which compiles each of its core modules: a file that is not a
// valid component fails here with jco's error and exit status 1.
import { componentWit } from '@bytecodealliance/jco-transpile/wasm-tools';
import { transpileBytes } from '@bytecodealliance/jco-transpile';
import fs from 'node:fs';

// Several files: one line each, in order; the first that fails stops it.
for (const file of process.argv.slice(2)) {
  try {
    const bytes = fs.readFileSync(file);
    const wit = await componentWit(bytes);
    const r = await transpileBytes(bytes, { name: 'c', instantiation: { tag: 'sync' }, noTypescript: true });
    for (const [name, data] of Object.entries(r.files))
      if (name.endsWith('.wasm'))
        new WebAssembly.Module(data); // compiles: valid core code
    const world = /world [^{]*\{([\s\S]*?)\n\}/.exec(wit)[1];
    const imports = [...world.matchAll(/^\s*import ([^;]+);/gm)].map((m) => m[1].trim());
    const exports = [...world.matchAll(/^\s*export ([^;]+);/gm)].map((m) => m[1].trim());
    console.log(JSON.stringify({ imports, exports }));
  } catch (e) {
    console.error(`inspect: ${file}: ${e.message ?? e}`);
    process.exit(1);
  }
}
