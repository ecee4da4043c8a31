'use strict';
// Creates or drops a throwaway database next to the one in DATABASE_URL, with the
// `pg` package from the repository's node_modules (no psql needed).
//
// Usage: node db.js create|drop <name>      (prints the new database's URL on create)

const path = require('node:path');

const repoRoot = path.resolve(__dirname, '..', '..');
const { Client } = require(require.resolve('pg', { paths: [repoRoot] }));

const [action, name] = process.argv.slice(2);
if (!['create', 'drop'].includes(action) || !/^[a-z0-9_]+$/.test(name || '') || !process.env.DATABASE_URL) {
  console.error('usage: DATABASE_URL=... node db.js create|drop <name matching [a-z0-9_]+>');
  process.exit(2);
}

(async () => {
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    if (action === 'create') {
      await client.query(`CREATE DATABASE "${name}"`);
      const url = new URL(process.env.DATABASE_URL);
      url.pathname = `/${name}`;
      console.log(url.toString());
    } else {
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    }
  } finally {
    await client.end();
  }
})().catch((err) => {
  console.error(`db.js ${action} ${name}: ${err.message}`);
  process.exit(1);
});
