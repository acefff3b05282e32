// Turn a hyperc process's core module into a component of world
// hyperc:process/component (src/wasm/wit/hyperc.wit: Hyperware's process-v1
// plus the WASI clocks and random source):
//
//   node componentize.mjs IN.core.wasm OUT.wasm
//
// The core module's imports are checked first: a component that imported
// anything else would be refused by a Hyperware node at install time, so it
// is refused here, naming the import.
import { componentEmbed, componentNew } from '@bytecodealliance/jco-transpile/wasm-tools';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const ALLOWED = new Set([
  'hyperware:process/standard@1.0.0',
  'wasi:clocks/wall-clock@0.2.0',
  'wasi:clocks/monotonic-clock@0.2.0',
  'wasi:random/random@0.2.0',
  'wasi:io/poll@0.2.0',
]);

// The WIT of the world, as one source: the first file keeps its package
// header, the others become nested packages.
export function worldSource() {
  const read = (f) => fs.readFileSync(path.join(here, 'wit', f), 'utf8');
  const nest = (t) => t.replace(/^package ([^;{]+);([\s\S]*)$/m,
    (_, p, rest) => `package ${p} {${rest}\n}`);
  return [read('hyperc.wit'), nest(read('hyperware.wit')), read('wasi.wit')].join('\n');
}

export async function componentize(core) {
  const mod = new WebAssembly.Module(core);
  const bad = WebAssembly.Module.imports(mod).filter((i) => !ALLOWED.has(i.module));
  if (bad.length) {
    const list = bad.map((i) => `${i.module} ${i.name}`).join(', ');
    throw new Error(`the module imports ${list}: a component may import only ` +
      `${[...ALLOWED].join(', ')} (docs/wasm.md says which C library functions ` +
      `a process can use)`);
  }
  const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
  for (const need of ['init', 'cabi_realloc', 'memory'])
    if (!exports.includes(need))
      throw new Error(`the module exports no ${need} (not linked with hyperc's guest runtime?)`);
  const embedded = await componentEmbed({
    binary: core, witSource: worldSource(), world: 'hyperc:process/component',
  });
  return componentNew(embedded);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) {
    console.error('usage: node componentize.mjs IN.core.wasm OUT.wasm');
    process.exit(2);
  }
  try {
    const comp = await componentize(fs.readFileSync(input));
    fs.writeFileSync(output + '.tmp', comp);
    fs.renameSync(output + '.tmp', output);
  } catch (e) {
    console.error(`componentize: ${input}: ${e.message ?? e}`);
    process.exit(1);
  }
}
