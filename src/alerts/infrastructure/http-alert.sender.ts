import { Injectable } from '@nestjs/common';
import { request as httpRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, LookupFunction } from 'node:net';
import { AppConfig } from '../../config/app-config';
import { AlertSender } from '../domain/alerts';
import { hostProblem, normalizeHost, resolvedAddressesProblem } from '../application/webhook-target';
import { HostResolver } from '../domain/host-resolver';

/** An address a host name was checked to resolve to. */
export interface PinnedAddress {
  address: string;
  family: 4 | 6;
}

/**
 * POSTs an alert with node:http(s); redirects are not followed (a redirect is
 * not a delivery: its status is the attempt's result).
 *
 * In production (F8) the target must be public: the host is checked again
 * here (URLs saved before the configuration check existed, and names, whose
 * addresses are only known now), a name is resolved once, refused when any of
 * its addresses is not public, and the connection is pinned to the addresses
 * that were checked (a `lookup` that answers them; Node's happy eyeballs picks
 * among them), so a DNS answer changed between the check and the connection
 * (rebinding) is never used. Host header, TLS SNI and certificate check keep
 * the name. Refusals say why, naming the tenant's own host at most (never a
 * resolved address, the signature or the secret).
 *
 * (Node 20's global fetch cannot be given a lookup without the undici package,
 * hence node:http.)
 */
@Injectable()
export class HttpAlertSender extends AlertSender {
  constructor(
    private readonly config: AppConfig,
    private readonly resolver: HostResolver,
  ) {
    super();
  }

  async send(url: string, body: string, signature: string, timeoutMs: number): Promise<number> {
    const target = new URL(url);
    const signal = AbortSignal.timeout(timeoutMs);
    const pinned = this.config.production ? await untilAborted(this.publicAddresses(target), signal) : null;
    return post(target, body, { 'tollgate-signature': signature }, signal, pinned);
  }

  /**
   * The addresses to connect to, every one checked public; throws `refused: …`
   * otherwise. Null for an IP literal: checked here, and net connects to it without a lookup.
   */
  private async publicAddresses(target: URL): Promise<PinnedAddress[] | null> {
    if (target.protocol !== 'https:') throw refused('the scheme is not https');
    const problem = hostProblem(target.hostname);
    if (problem) throw refused(problem);
    const host = normalizeHost(target.hostname);
    if (isIP(host)) return null;
    const addresses = await this.resolver.resolve(host);
    const resolvedProblem = resolvedAddressesProblem(addresses.map((a) => a.address));
    if (resolvedProblem) throw refused(resolvedProblem);
    return addresses;
  }
}

/**
 * One POST to `target`; resolves with the status once the answer's body is read
 * (or abandoned). With `pinned`, the socket connects to one of those addresses
 * whatever the name resolves to now.
 */
export function post(target: URL, body: string, headers: OutgoingHttpHeaders, signal: AbortSignal, pinned: readonly PinnedAddress[] | null): Promise<number> {
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<number>((resolve, reject) => {
    const req = request(
      {
        protocol: target.protocol,
        hostname: target.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: target.port || undefined,
        path: `${target.pathname}${target.search}`,
        method: 'POST',
        headers: {
          host: target.host,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'Tollgate-Alerts/1',
          ...headers,
        },
        // A fresh connection per alert: a pooled socket would skip the pinned lookup.
        agent: false,
        signal,
        ...(pinned ? { lookup: pinnedLookup(pinned) } : {}),
      },
      (res: IncomingMessage) => {
        const done = () => resolve(res.statusCode ?? 0);
        res.once('end', done);
        res.once('error', done);
        res.once('close', done);
        res.resume();
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/** A `lookup` for net/tls that answers the checked addresses for the one name it is asked about. */
function pinnedLookup(pinned: readonly PinnedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, pinned.map(({ address, family }) => ({ address, family })));
    else callback(null, pinned[0].address, pinned[0].family);
  };
}

function refused(problem: string): Error {
  return new Error(`refused: ${problem}`);
}

/** `promise`, or the signal's reason when it aborts first (a DNS lookup cannot be cancelled, only abandoned). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
