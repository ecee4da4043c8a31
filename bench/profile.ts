/**
 * Self time per function from a V8 .cpuprofile (what `node --cpu-prof` writes).
 *
 *   node -r ts-node/register/transpile-only bench/profile.ts bench/results/profiles/<file>.cpuprofile [N]
 */
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  location: string;
  selfMs: number;
  percent: number;
}

const ROOT = resolve(__dirname, '..');

/** Functions by self time (summed over every node of the same function), idle and GC included as V8 names them. */
export function topSelfTime(file: string, n = 10, opts: { includeIdle?: boolean } = {}): SelfTime[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, { name: string; location: string; us: number }>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node) continue;
    const cf = node.callFrame;
    const name = cf.functionName || '(anonymous)';
    if (!opts.includeIdle && (name === '(idle)' || name === '(program)')) continue;
    total += dt;
    const url = cf.url.replace(/^file:\/\//, '');
    const location = url ? `${url.startsWith('/') ? relative(ROOT, url) : url}:${cf.lineNumber + 1}` : '';
    const key = `${name}@${location}`;
    const entry = selfUs.get(key) ?? { name, location, us: 0 };
    entry.us += dt;
    selfUs.set(key, entry);
  }
  return [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map((e) => ({ name: e.name, location: e.location, selfMs: e.us / 1000, percent: total ? (100 * e.us) / total : 0 }));
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: bench/profile.ts <file.cpuprofile> [N]\n');
    process.exit(2);
  }
  for (const f of topSelfTime(file, Number(process.argv[3] ?? 20))) {
    process.stdout.write(`${f.percent.toFixed(1).padStart(5)} %  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}  ${f.location}\n`);
  }
}
