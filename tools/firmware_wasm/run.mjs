// Run MicroPython code under the official WebAssembly port (pinned in package.json), with the
// firmware files and the edge fakes (machine, bluetooth) in /lib.
//
//   node tools/firmware_wasm/run.mjs --lib DIR [--lib DIR ...] [--file SRC:DEST ...]
//        [--heap-mb N] [--drive [--stdin]] [--realtime [--speed X] [--t0-ms T --offset-ms O
//        --scale K]] SCRIPT.py
//
// The script's stdout goes to our stdout byte for byte (binary safe), its stderr to stderr.
// With --drive, after the script runs, the global drive_chunk() is called until it returns a
// negative number; it returns the device time in ms reached, and with --realtime we wait for
// the wall clock (times X) to catch up before the next chunk: device time d is due at wall
// time T + (O + d * K) / X (epoch ms; T defaults to the start, so two feet can share one T) (output is flushed after every chunk).
// Exit status: 0 ok, 1 Python exception (message on stderr), 2 harness error.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const modPath = path.join(root, "node_modules", "@micropython",
  "micropython-webassembly-pyscript", "micropython.mjs");

const args = process.argv.slice(2);
const libs = [], files = [];
let heapMb = 16, drive = false, realtime = false, speed = 1, script = null;
let t0Ms = null, offsetMs = 0, scale = 1, useStdin = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--lib") libs.push(args[++i]);
  else if (a === "--file") files.push(args[++i]);
  else if (a === "--heap-mb") heapMb = parseInt(args[++i], 10);
  else if (a === "--drive") drive = true;
  else if (a === "--realtime") realtime = true;
  else if (a === "--speed") speed = parseFloat(args[++i]);
  else if (a === "--t0-ms") t0Ms = parseFloat(args[++i]);
  else if (a === "--offset-ms") offsetMs = parseFloat(args[++i]);
  else if (a === "--scale") scale = parseFloat(args[++i]);
  else if (a === "--stdin") useStdin = true;
  else script = a;
}

let outChunks = [], outLen = 0;
function flushOut() {
  if (outLen) {
    const buf = Buffer.alloc(outLen);
    let o = 0;
    for (const c of outChunks) { buf.set(c, o); o += c.length; }
    outChunks = []; outLen = 0;
    fs.writeSync(1, buf);
  }
}
const pending = [];
function stdout(bytes) {
  pending.push(bytes[0]);
  if (pending.length >= 65536) { outChunks.push(Uint8Array.from(pending)); outLen += pending.length; pending.length = 0; }
}
function flushAll() {
  if (pending.length) { outChunks.push(Uint8Array.from(pending)); outLen += pending.length; pending.length = 0; }
  flushOut();
}
const errBytes = [];
function stderr(bytes) { errBytes.push(bytes[0]); if (bytes[0] === 10) flushErr(); }
function flushErr() { if (errBytes.length) { fs.writeSync(2, Buffer.from(errBytes)); errBytes.length = 0; } }

function copyTree(FS, src, dest) {
  for (const name of fs.readdirSync(src)) {
    const p = path.join(src, name);
    if (fs.statSync(p).isDirectory()) continue;
    if (!/\.(py|mpy)$/.test(name)) continue;
    FS.writeFile(dest + "/" + name, fs.readFileSync(p));
  }
}

async function main() {
  if (!script) { console.error("run.mjs: no script given"); return 2; }
  if (!fs.existsSync(modPath)) {
    console.error("run.mjs: MicroPython WebAssembly port missing: run `npm ci` (make setup)");
    return 2;
  }
  const { loadMicroPython } = await import(modPath);
  const mp = await loadMicroPython({ heapsize: heapMb * 1024 * 1024, linebuffer: false, stdout, stderr });
  try { mp.FS.mkdir("/lib"); } catch (e) { /* exists */ }
  for (const d of libs) copyTree(mp.FS, d, "/lib");
  for (const spec of files) {
    const i = spec.lastIndexOf(":");
    mp.FS.writeFile(spec.slice(i + 1), fs.readFileSync(spec.slice(0, i)));
  }
  try {
    mp.runPython(fs.readFileSync(script, "utf8"));
    if (drive) {
      const driveChunk = mp.globals.get("drive_chunk");
      // --stdin: bytes arriving on our stdin go to the script's feed_serial(hex) between chunks
      // (the host's commands to the device's serial port).
      let inBytes = [];
      if (useStdin) process.stdin.on("data", (chunk) => { for (const b of chunk) inBytes.push(b); });
      const t0 = t0Ms === null ? Date.now() : t0Ms;
      for (;;) {
        if (inBytes.length) {
          mp.globals.get("feed_serial")(Buffer.from(inBytes).toString("hex"));
          inBytes = [];
        }
        const deviceMs = driveChunk();
        flushAll();
        if (deviceMs < 0) break;
        if (realtime) {
          const wait = t0 + (offsetMs + deviceMs * scale) / speed - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      }
    }
  } catch (e) {
    flushAll();
    flushErr();
    // Only the message: an uncaught JS error would print the whole minified module.
    process.stderr.write(`${e && e.type ? e.type + ": " : ""}${e && e.message ? e.message : e}\n`);
    return 1;
  }
  flushAll();
  flushErr();
  return 0;
}

main().then((rc) => process.exit(rc), (e) => {
  process.stderr.write(`run.mjs: ${e && e.message ? e.message : e}\n`);
  process.exit(2);
});
