// Load a hyperc component under Node.js (the wasm host, src/wasm/host.mjs,
// and the tests): jco transpiles it once per component into JS glue that
// implements the canonical ABI on the host side, kept in a cache keyed by
// the component's sha256 (cacheRoot below), and instantiates it
// synchronously, so that
// every import is a plain JS function that may block (the host's receive
// waits on its socket) and `init` is a plain call.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The cache's layout version (a folder level of its own): bumped whenever
// the transpile options change, so that an old entry is never used with a
// loader that expects another shape.
const CACHE_FORMAT = 2;

// Could not load: the message is a sentence for the node's log.
export class LoadError extends Error {}

function jcoVersion() {
    try {
        const entry = fileURLToPath(import.meta.resolve('@bytecodealliance/jco-transpile'));
        let dir = path.dirname(entry);
        for (; dir !== path.dirname(dir); dir = path.dirname(dir)) {
            const pkg = path.join(dir, 'package.json');
            if (fs.existsSync(pkg))
                return JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
        }
    } catch {
        // fall through
    }
    return 'unknown';
}

// Transpile `bytes` into `dir`: the JS module as component.mjs (the cache
// has no package.json to make .js a module), the core modules beside it,
// and meta.json with the component's imports and exports.
async function transpileInto(bytes, dir) {
    const { transpileBytes } = await import('@bytecodealliance/jco-transpile');
    let out;
    try {
        out = await transpileBytes(bytes, {
            name: 'component',
            instantiation: 'sync',      // instantiate() returns the exports
            base64Cutoff: 0,            // every core module a file of its own
            emitTypescriptDeclarations: false,
        });
    } catch (e) {
        throw new LoadError(`jco could not transpile it: ${e.message}`);
    }
    for (const [name, data] of Object.entries(out.files)) {
        const base = path.basename(name);
        if (base === 'component.js')
            fs.writeFileSync(path.join(dir, 'component.mjs'), quietDebugLog(data));
        else
            fs.writeFileSync(path.join(dir, base), data);
    }
    fs.writeFileSync(path.join(dir, 'meta.json'),
        JSON.stringify({ imports: out.imports, exports: out.exports }));
}

// jco's glue asks process.env for JCO_DEBUG at each of its debug-log calls,
// several per import call, and an environment lookup is slow in Node: a
// third of a message's time in a component that answers at once.  Read it
// once, when the glue loads (the same behaviour, unless JCO_DEBUG changes
// while the process runs).  Glue of another shape is left as it is.
function quietDebugLog(data) {
    const text = Buffer.from(data).toString('utf8');
    const check = 'if (!globalThis?.process?.env?.JCO_DEBUG) { return; }';
    const at = text.indexOf(check);
    if (at < 0 || text.indexOf(check, at + 1) >= 0)
        return data;
    const once = 'const _hypercJcoDebug = Boolean(globalThis?.process?.env?.JCO_DEBUG);\n';
    return text.replace('const _debugLog = ', `${once}  const _debugLog = `)
        .replace(check, 'if (!_hypercJcoDebug) { return; }');
}

// A directory of the cache: made mode 0700 when missing, and refused (a
// LoadError saying why) unless it is a directory, not a symbolic link,
// this user's, and neither group nor others may write it.  What the cache
// holds is code that hosts and workers load and run (jco's glue,
// translated components).
export function privateDir(dir) {
    let st;
    try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        st = fs.lstatSync(dir);
    } catch (e) {
        throw new LoadError(`cannot make the wasm cache ${dir}: ${e.message}`);
    }
    if (st.isSymbolicLink())
        throw new LoadError(`the wasm cache ${dir} is a symbolic link: it holds code the node runs; ` +
            'set HYPERC_WASM_CACHE to a directory of this user\'s');
    if (!st.isDirectory())
        throw new LoadError(`the wasm cache ${dir} is not a directory`);
    if (st.uid !== process.getuid() || (st.mode & 0o022) !== 0)
        throw new LoadError(`the wasm cache ${dir} is not this user's alone (owner uid ${st.uid}, ` +
            `mode ${(st.mode & 0o777).toString(8)}): it holds code the node runs; give it to this ` +
            'user with mode 0700, or set HYPERC_WASM_CACHE to another directory');
    return dir;
}

// The cache's root: $HYPERC_WASM_CACHE, else $XDG_CACHE_HOME/hyperc/wasm,
// else ~/.cache/hyperc/wasm (else <tmpdir>/hyperc-wasm-cache-<uid>), a
// private directory (privateDir).
export function cacheRoot() {
    let root = process.env.HYPERC_WASM_CACHE;
    if (!root) {
        const xdg = process.env.XDG_CACHE_HOME;
        const home = process.env.HOME;
        if (xdg && path.isAbsolute(xdg))
            root = path.join(xdg, 'hyperc', 'wasm');
        else if (home && path.isAbsolute(home))
            root = path.join(home, '.cache', 'hyperc', 'wasm');
        else
            root = path.join(os.tmpdir(), `hyperc-wasm-cache-${process.getuid()}`);
    }
    return privateDir(path.resolve(root));
}

// The directory holding the transpiled component: from the cache, or made
// now.  A new entry is built in a temporary directory and renamed into
// place, so hosts starting together never see half of one; the first
// rename wins and the others use its entry.
export async function transpiled(bytes) {
    const sha = crypto.createHash('sha256').update(bytes).digest('hex');
    let root, dir, tmp;
    try {
        root = privateDir(path.join(cacheRoot(), `v${CACHE_FORMAT}-jco-${jcoVersion()}`));
        dir = path.join(root, sha);
        if (fs.existsSync(path.join(dir, 'meta.json')))
            return dir;
        tmp = fs.mkdtempSync(path.join(root, `.${sha.slice(0, 16)}-`));
    } catch (e) {
        // No cache: transpile into a directory of our own for this run.
        process.stderr.write(`hyperc wasm: no cache (${e.message}); transpiling for this run only\n`);
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperc-wasm-'));
        process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
        await transpileInto(bytes, tmp);
        return tmp;
    }
    try {
        await transpileInto(bytes, tmp);
        fs.renameSync(tmp, dir);
    } catch (e) {
        fs.rmSync(tmp, { recursive: true, force: true });
        if (e instanceof LoadError)
            throw e;
        if (!fs.existsSync(path.join(dir, 'meta.json')))
            throw new LoadError(`cannot write the transpiled component to ${root}: ${e.message}`);
        // another host put it there first
    }
    return dir;
}

// Load the component at `binary` and instantiate it with `imports` (keyed
// by interface, without and with the version): its exports.  `provided`
// (interface names without version -> anything) says which imports the
// caller serves: a component importing anything else is refused; `trace`
// gets the timings; `instantiateCore(module, importObject)`, when given,
// instantiates jco's core modules (the wasm host's hand imports go in
// there).  Throws LoadError with a sentence when the file is not
// a component this host can run.
export async function loadComponent(binary, imports,
    { provided = imports, trace = () => {}, instantiateCore } = {}) {
    let bytes;
    try {
        bytes = fs.readFileSync(binary);
    } catch (e) {
        throw new LoadError(e.code === 'ENOENT' ? `no file at ${binary}`
            : `cannot read ${binary}: ${e.message}`);
    }
    // \0asm, then the version: 1 0 0 0 for a core module, N 0 1 0 for a
    // component.
    if (bytes.length < 8 || bytes.readUInt32LE(0) !== 0x6d736100)
        throw new LoadError(`${binary} is not a WebAssembly file`);
    if (bytes.readUInt16LE(6) !== 1)
        throw new LoadError(`${binary} is a core WebAssembly module, not a component`);

    let t = performance.now();
    const dir = await transpiled(bytes);
    trace(`transpiled (or found in the cache) in ${(performance.now() - t).toFixed(1)} ms: ${dir}`);

    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
    for (const name of meta.imports) {
        if (!(name.replace(/@.*$/, '') in provided))
            throw new LoadError(`the component imports ${name}, which this host does not provide`);
    }
    if (!meta.exports.some(([name, kind]) => name === 'init' && kind === 'function'))
        throw new LoadError('the component exports no init function (world process-v1)');

    t = performance.now();
    let exports;
    try {
        const mod = await import(pathToFileURL(path.join(dir, 'component.mjs')).href);
        exports = mod.instantiate(
            name => new WebAssembly.Module(fs.readFileSync(path.join(dir, path.basename(name)))),
            imports, ...(instantiateCore ? [instantiateCore] : []));
    } catch (e) {
        throw new LoadError(`cannot instantiate ${binary}: ${e.message}`);
    }
    if (exports === null || typeof exports !== 'object' || typeof exports.then === 'function')
        throw new LoadError(`${binary} did not instantiate synchronously`);
    if (typeof exports.init !== 'function')
        throw new LoadError(`${binary} has no init function`);
    trace(`instantiated in ${(performance.now() - t).toFixed(1)} ms`);
    return exports;
}

