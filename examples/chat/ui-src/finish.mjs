// After tsc: do what Vite's build would do with caller-utils.js (replace
// import.meta.env.BASE_URL with the process's base path), then record the
// SHA-256 of every input and output in built-from.sha256, so that a test
// (tests/blackbox/test_chat.py) finds a UI not rebuilt after its sources
// changed.  Check by hand with: sha256sum -c built-from.sha256
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

const BASE = '/chat:chat:hyperc.os';
const OUT = '../pkg/ui/js';

const cu = `${OUT}/caller-utils.js`;
const js = readFileSync(cu, 'utf8');
const parts = js.split('import.meta.env.BASE_URL');
if (parts.length !== 2) {
  console.error(`${cu}: expected import.meta.env.BASE_URL once, found ${parts.length - 1}`);
  process.exit(1);
}
writeFileSync(cu, parts.join(JSON.stringify(BASE)));

const files = [
  'package.json', 'package-lock.json', 'tsconfig.json', 'finish.mjs',
  ...readdirSync('src').sort().map((f) => `src/${f}`),
  ...readdirSync(OUT).sort().map((f) => `${OUT}/${f}`),
];
const lines = files.map((f) =>
  `${createHash('sha256').update(readFileSync(f)).digest('hex')}  ${f}\n`);
writeFileSync('built-from.sha256', lines.join(''));
