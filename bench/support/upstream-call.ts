/**
 * The upstream leg alone (issue 7, hot-path item d), in this process: CPU µs
 * and wall time per tools/call `echo`, at a fixed concurrency, for
 * - the SDK Client (StreamableHTTPClientTransport) against an SSE upstream
 *   (server-everything) and a JSON upstream (the many-tools server, which sets
 *   enableJsonResponse);
 * - Tollgate's SdkUpstreamConnector against both (after the SDK's handshake it
 *   sends tools/call itself over a keep-alive agent and reads the JSON answer,
 *   or the SSE answer event by event).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Upstream } from '../../src/mcp/domain/upstream';
import { SdkUpstreamConnector } from '../../src/mcp/infrastructure/sdk-upstream.connector';

export interface LegTiming {
  label: string;
  calls: number;
  concurrency: number;
  cpuUsPerCall: number;
  callsPerSec: number;
}

const ARGS = { message: 'tollgate-bench' };

async function drive(label: string, call: () => Promise<unknown>, calls: number, concurrency: number): Promise<LegTiming> {
  for (let i = 0; i < 200; i++) await call(); // warm-up
  let left = calls;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) await call();
    }),
  );
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { label, calls, concurrency, cpuUsPerCall: Math.round((cpu.user + cpu.system) / calls), callsPerSec: Math.round(calls / wallS) };
}

export async function measureUpstreamLeg(sseUrl: string, jsonUrl: string, calls = 4000, concurrency = 10): Promise<LegTiming[]> {
  const out: LegTiming[] = [];
  for (const [kind, url] of [['SSE (server-everything)', sseUrl], ['JSON (many-tools, enableJsonResponse)', jsonUrl]] as const) {
    const client = new Client({ name: 'tollgate-bench', version: '0.1.0' }, { capabilities: {} });
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    out.push(await drive(`SDK Client → ${kind}`, () => client.request({ method: 'tools/call', params: { name: 'echo', arguments: ARGS } }, CallToolResultSchema), calls, concurrency));
    await client.close();
    const connector = new SdkUpstreamConnector();
    const upstream = { id: `bench-${kind}`, name: 'bench', url, headers: {}, timeoutMs: 10_000, updatedAt: new Date(), tools: [] } as unknown as Upstream;
    out.push(await drive(`SdkUpstreamConnector → ${kind}`, () => connector.callTool(upstream, 'echo', ARGS), calls, concurrency));
    await connector.onModuleDestroy();
  }
  return out;
}
