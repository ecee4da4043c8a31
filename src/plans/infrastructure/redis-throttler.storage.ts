import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import type { ThrottlerStorageRecord } from '@nestjs/throttler/dist/throttler-storage-record.interface';
import type Redis from 'ioredis';
import { hitsOf, type LimitWindow, type MultiWindowLimiter, type MultiWindowResult } from './multi-window-limiter';

/** The name the script is defined under on the ioredis client (EVAL once per connection, EVALSHA after). */
const COMMAND = 'tollgateHitWindows';

/**
 * All the windows of one request in ONE Redis round trip. Hand-written because
 * @nest-lab/throttler-storage-redis has no multi-window call: its `increment`
 * runs one EVAL per window, so the sequential guard paid 2–3 round trips per
 * agent request. This script is that library's script (1.2.0,
 * ThrottlerStorageRedisService.getScriptSrc) inside a loop, line for line for a weight of 1, on
 * the same keys (`{<key>:<throttlerName>}:hits` and `…:blocked`), so counters
 * carry over from single-window calls (and between replicas of different
 * versions during a rolling deploy):
 *   - INCR the hits key; when it has no TTL yet (new window), PEXPIRE it to
 *     the window's ttl: fixed window, totalHits counts every hit, refused
 *     ones included;
 *   - if the block key exists, the request is blocked for its PTTL; else if
 *     totalHits > limit, SET the block key for blockDuration and block;
 *   - a block key without a TTL (PTTL <= 0) is dropped and the window
 *     restarts at 1 hit;
 *   - times are returned in ms and rounded up to seconds here, as the library does.
 * New: windows are walked in order and the walk stops at the first blocked
 * window (the later windows are not counted), exactly like awaiting
 * `increment` per window and throwing on the first block.
 * New: a window's weight (`hits`, the messages of a JSON-RPC batch): INCRBY
 * instead of INCR, which is the library's `increment` called that many times
 * in a row on the window, compressed into one step:
 *   - every hit is counted (refused ones too, as the library counts them);
 *   - blocked when the window already is, or when totalHits > limit (the
 *     request is refused whole: its hits do not fit);
 *   - a block key without a TTL restarts the window with the first hit only;
 *     the others are counted after it, so a weight above the limit (and > 1)
 *     blocks the restarted window at once, as the library's next increment
 *     would (and, when not blocked, reports the next increment's
 *     timeToBlockExpire, 0, not the restarting one's -1).
 * With weight 1 every line does what the library's does (tested against it in
 * test/reliability/redis-limit-script.e2e-spec.ts; weights against the
 * library called N times in test/e2e/agent-limits-redis.e2e-spec.ts).
 *
 * The keys of one request hash to different slots (their `{…}` tags differ),
 * so this works on a standalone Redis (RedisConnection), not Redis Cluster.
 */
const SCRIPT = `
local out = { -1 }
for i = 1, #KEYS / 2 do
  local hitKey = KEYS[2 * i - 1]
  local blockKey = KEYS[2 * i]
  local ttl = tonumber(ARGV[4 * i - 3])
  local limit = tonumber(ARGV[4 * i - 2])
  local blockDuration = tonumber(ARGV[4 * i - 1])
  local hits = tonumber(ARGV[4 * i])

  local totalHits = redis.call('INCRBY', hitKey, hits)
  local timeToExpire = redis.call('PTTL', hitKey)
  if timeToExpire <= 0 then
    redis.call('PEXPIRE', hitKey, ttl)
    timeToExpire = ttl
  end

  local isBlocked = redis.call('GET', blockKey)
  local timeToBlockExpire = 0
  if isBlocked then
    timeToBlockExpire = redis.call('PTTL', blockKey)
  elseif totalHits > limit then
    redis.call('SET', blockKey, 1, 'PX', blockDuration)
    isBlocked = '1'
    timeToBlockExpire = blockDuration
  end

  if isBlocked and timeToBlockExpire <= 0 then
    redis.call('DEL', blockKey)
    redis.call('SET', hitKey, hits, 'PX', ttl)
    totalHits = hits
    timeToExpire = ttl
    isBlocked = false
    if hits > 1 and hits > limit then
      redis.call('SET', blockKey, 1, 'PX', blockDuration)
      isBlocked = '1'
      timeToBlockExpire = blockDuration
    elseif hits > 1 then
      timeToBlockExpire = 0
    end
  end

  local n = #out
  out[n + 1] = totalHits
  out[n + 2] = timeToExpire
  out[n + 3] = isBlocked and 1 or 0
  out[n + 4] = timeToBlockExpire
  if isBlocked then
    out[1] = i - 1
    return out
  end
end
return out
`
  .replace(/^\s+/gm, '')
  .trim();

type ScriptedRedis = Redis & { [COMMAND](numKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown> };

/**
 * The library's Redis storage (single-window `increment`, used by the
 * anonymous limiter and the brute-force brake) plus `hitAll` for the per-key
 * agent windows.
 */
export class RedisThrottlerStorage extends ThrottlerStorageRedisService implements MultiWindowLimiter {
  private readonly client: ScriptedRedis;

  constructor(redis: Redis) {
    super(redis);
    // defineCommand: ioredis sends EVAL (with the body) on a connection's first call and
    // EVALSHA afterwards, still one command per call; only after a SCRIPT FLUSH on a live
    // connection does a call take a second round trip (NOSCRIPT, then EVAL).
    redis.defineCommand(COMMAND, { lua: SCRIPT });
    this.client = redis as ScriptedRedis;
  }

  async hitAll(windows: readonly LimitWindow[]): Promise<MultiWindowResult> {
    if (windows.length === 0) return { blockedIndex: -1, records: [] };
    const keys: string[] = [];
    const args: number[] = [];
    for (const w of windows) {
      keys.push(`{${w.key}:${w.name}}:hits`, `{${w.key}:${w.name}}:blocked`);
      args.push(w.ttlMs, w.limit, w.blockDurationMs, hitsOf(w));
    }
    const reply = await this.client[COMMAND](keys.length, ...keys, ...args);
    return parseReply(reply, windows.length);
  }
}

/** `{ blockedIndex, then per evaluated window: totalHits, timeToExpire ms, isBlocked 0|1, timeToBlockExpire ms }`. */
function parseReply(reply: unknown, windowCount: number): MultiWindowResult {
  if (!Array.isArray(reply) || reply.some((v) => typeof v !== 'number')) {
    throw new TypeError(`Expected an array of integers from the rate-limit script, got ${JSON.stringify(reply)}`);
  }
  const [blockedIndex] = reply as number[];
  const evaluated = (reply.length - 1) / 4;
  const expected = blockedIndex === -1 ? windowCount : blockedIndex + 1;
  if (evaluated !== expected || blockedIndex < -1 || blockedIndex >= windowCount) {
    throw new TypeError(`Unexpected rate-limit script reply for ${windowCount} window(s): ${JSON.stringify(reply)}`);
  }
  const records: ThrottlerStorageRecord[] = [];
  for (let i = 1; i < reply.length; i += 4) {
    records.push({
      totalHits: reply[i],
      timeToExpire: Math.ceil(reply[i + 1] / 1000),
      isBlocked: reply[i + 2] === 1,
      timeToBlockExpire: Math.ceil(reply[i + 3] / 1000),
    });
  }
  return { blockedIndex, records };
}
