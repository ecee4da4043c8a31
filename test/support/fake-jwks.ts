import { createHmac, generateKeyPairSync, KeyObject, randomBytes } from 'node:crypto';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sign as jwtSign, Algorithm } from 'jsonwebtoken';

export const JWKS_PATH = '/.well-known/jwks.json';

export type KeyName = 'rsa' | 'ec' | 'attacker-rsa' | 'attacker-ec';

interface Pair {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface SignOptions {
  /** RS256 / ES256 sign with a real key; HS256 with `key` as the shared secret; `none` is unsigned. */
  alg: 'RS256' | 'ES256' | 'HS256' | 'none';
  /** `kid` header; defaults to the kid of the published key used. Pass `null` to omit it. */
  kid?: string | null;
  /**
   * Which key signs: a name ('rsa', 'ec' are published; 'attacker-*' are not),
   * a private KeyObject, or (HS256) the secret as string / Buffer.
   * Defaults to the published key of `alg`.
   */
  key?: KeyName | KeyObject | string | Buffer;
}

export interface FakeJwks {
  /** `http://127.0.0.1:<port>/.well-known/jwks.json` */
  jwksUri: string;
  /** kids of the published keys. */
  kids: { rsa: string; ec: string };
  /** Public keys as PEM (e.g. for the HS256-with-public-key confusion attack). */
  publicPem: { rsa: string; ec: string };
  /** How many times the JWKS document was fetched. */
  requests(): number;
  sign(claims: Record<string, unknown>, opts: SignOptions): string;
  close(): Promise<void>;
}

function pair(alg: 'RS256' | 'ES256'): Pair {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid: `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`, alg, privateKey, publicKey };
}

function b64url(v: unknown): string {
  return Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
}

/**
 * A real HTTP JWKS endpoint on 127.0.0.1 publishing one RS256 and one ES256
 * key, plus an attacker RSA and EC pair that are never published.
 */
export async function startFakeJwks(): Promise<FakeJwks> {
  const keys: Record<KeyName, Pair> = {
    rsa: pair('RS256'),
    ec: pair('ES256'),
    'attacker-rsa': pair('RS256'),
    'attacker-ec': pair('ES256'),
  };
  const published = [keys.rsa, keys.ec];
  const document = JSON.stringify({
    keys: published.map((k) => ({ ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, alg: k.alg, use: 'sig' })),
  });

  let count = 0;
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === JWKS_PATH) {
      count++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(document);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not found"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  function sign(claims: Record<string, unknown>, opts: SignOptions): string {
    const now = Math.floor(Date.now() / 1000);
    // A claim given as undefined is left out (a token without `exp`, say).
    const payload = Object.fromEntries(Object.entries({ iat: now, exp: now + 600, ...claims }).filter(([, v]) => v !== undefined));
    if (opts.alg === 'none' || opts.alg === 'HS256') {
      const header: Record<string, unknown> = { alg: opts.alg, typ: 'JWT' };
      if (opts.kid !== null) header.kid = opts.kid ?? keys.rsa.kid;
      const input = `${b64url(header)}.${b64url(payload)}`;
      if (opts.alg === 'none') return `${input}.`;
      const secret = opts.key ?? publicPem.rsa;
      if (secret instanceof KeyObject || (typeof secret === 'string' && secret in keys)) {
        throw new Error('HS256 needs the secret as string or Buffer');
      }
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    }
    const named = typeof opts.key === 'string' ? keys[opts.key as KeyName] : undefined;
    if (typeof opts.key === 'string' && !named) throw new Error(`unknown key ${opts.key}`);
    const signer = named ?? (opts.alg === 'RS256' ? keys.rsa : keys.ec);
    const privateKey = opts.key instanceof KeyObject ? opts.key : signer.privateKey;
    const kid = opts.kid === null ? undefined : (opts.kid ?? (named?.kid ?? signer.kid));
    return jwtSign(payload, privateKey, {
      algorithm: opts.alg as Algorithm,
      ...(kid !== undefined ? { keyid: kid } : {}),
    });
  }

  const publicPem = {
    rsa: keys.rsa.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    ec: keys.ec.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };

  return {
    jwksUri: `http://127.0.0.1:${port}${JWKS_PATH}`,
    kids: { rsa: keys.rsa.kid, ec: keys.ec.kid },
    publicPem,
    requests: () => count,
    sign,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections?.();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
