import { Client } from 'pg';

/** Drops the run's database (kept when KEEP_TEST_DB=true, for debugging). */
export default async function globalTeardown(): Promise<void> {
  const admin = process.env.TEST_DATABASE_ADMIN_URL;
  const name = process.env.TEST_DATABASE_NAME;
  if (!admin || !name || process.env.KEEP_TEST_DB === 'true') return;
  const client = new Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}
