'use strict';
// Compares two output directories of `conformance server -o <dir>` (checks.json per
// scenario): the fixture server directly vs the same server through Tollgate.
// Prints a Markdown table and exits 1 if a scenario does worse through Tollgate
// than directly and is not listed in expected-differences.txt.
//
// Scenario status: FAIL = at least one FAILURE check; PASS = no FAILURE and at
// least one SUCCESS; n/a = only INFO/WARNING checks (nothing was asserted).
// "Worse" means PASS -> n/a/FAIL or n/a -> FAIL.
//
// Usage: node compare.js <direct-dir> <tollgate-dir> [expected-differences.txt]

const fs = require('node:fs');
const path = require('node:path');

const [directDir, tollgateDir, expectedFile = path.join(__dirname, 'expected-differences.txt')] = process.argv.slice(2);
if (!directDir || !tollgateDir) {
  console.error('usage: node compare.js <direct-dir> <tollgate-dir> [expected-differences.txt]');
  process.exit(2);
}

const RANK = { PASS: 2, 'n/a': 1, FAIL: 0, missing: 0 };

function readResults(dir) {
  const out = new Map();
  for (const entry of fs.readdirSync(dir)) {
    const file = path.join(dir, entry, 'checks.json');
    if (!fs.existsSync(file)) continue;
    const scenario = entry.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
    let checks;
    try {
      checks = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      checks = [{ status: 'FAILURE' }];
    }
    const count = (s) => checks.filter((c) => c.status === s).length;
    const ok = count('SUCCESS');
    const fail = count('FAILURE');
    const warn = count('WARNING');
    const status = fail > 0 ? 'FAIL' : ok > 0 ? 'PASS' : 'n/a';
    const failures = checks.filter((c) => c.status === 'FAILURE').map((c) => c.errorMessage || c.description || c.id);
    out.set(scenario, { status, ok, fail, warn, failures });
  }
  return out;
}

function readExpected(file) {
  const out = new Map();
  if (!fs.existsSync(file)) return out;
  for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [scenario, ...reason] = line.split(/\s+/);
    out.set(scenario, reason.join(' '));
  }
  return out;
}

const direct = readResults(directDir);
const tollgate = readResults(tollgateDir);
const expected = readExpected(expectedFile);
const fmt = (r) => (r ? `${r.status} (${r.ok}/${r.fail}${r.warn ? `, ${r.warn}w` : ''})` : 'missing');

const rows = [];
const unexpected = [];
const observed = new Set();
for (const scenario of new Set([...direct.keys(), ...tollgate.keys()])) {
  const d = direct.get(scenario);
  const t = tollgate.get(scenario);
  const worse = RANK[d ? d.status : 'missing'] > RANK[t ? t.status : 'missing'];
  let note = '';
  if (worse && expected.has(scenario)) {
    observed.add(scenario);
    note = `expected: ${expected.get(scenario)}`;
  } else if (worse) {
    unexpected.push(scenario);
    note = `UNEXPECTED: ${(t && t.failures[0]) || 'no passing check through Tollgate'}`.slice(0, 160);
  }
  rows.push(`| ${scenario} | ${fmt(d)} | ${fmt(t)} | ${note.replace(/\|/g, '\\|').replace(/\s+/g, ' ')} |`);
}

console.log('Status (SUCCESS/FAILURE checks, w = warnings)\n');
console.log('| scenario | direct | through Tollgate | note |');
console.log('|---|---|---|---|');
for (const row of rows) console.log(row);

const count = (m, s) => [...m.values()].filter((r) => r.status === s).length;
console.log(`\ndirect: ${count(direct, 'PASS')} PASS, ${count(direct, 'FAIL')} FAIL, ${count(direct, 'n/a')} n/a`);
console.log(`through Tollgate: ${count(tollgate, 'PASS')} PASS, ${count(tollgate, 'FAIL')} FAIL, ${count(tollgate, 'n/a')} n/a`);
// Listed entries whose scenario passed directly and did not get worse: Tollgate caught up.
const stale = [...expected.keys()].filter((s) => !observed.has(s) && direct.get(s)?.status === 'PASS');
if (stale.length) console.log(`\nnote: listed in expected-differences.txt but not different in this run: ${stale.join(', ')}`);
if (unexpected.length) {
  console.log(`\nUNEXPECTED DIFFERENCES (worse through Tollgate, not in expected-differences.txt): ${unexpected.join(', ')}`);
  process.exit(1);
}
console.log('\nOK: every scenario that passes directly passes through Tollgate, or is a listed expected difference.');
