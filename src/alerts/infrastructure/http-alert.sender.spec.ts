import { createServer as createHttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo, createServer as createTcpServer, isIP, Server } from 'node:net';
import type { AppConfig } from '../../config/app-config';
import { HostResolver } from '../domain/host-resolver';
import { HttpAlertSender, post } from './http-alert.sender';

const SIGNATURE = 't=1700000000,v1=5ec2e7a1c0ffee5ec2e7a1c0ffee5ec2e7a1c0ffee5ec2e7a1c0ffee5ec2e7a1';
const BODY = JSON.stringify({ id: 'd-1', type: 'quota.threshold', data: {} });

/** A loopback listener: counts connections; as HTTP, records requests and answers with `respond`. */
class Listener {
  connections = 0;
  bytes = Buffer.alloc(0);
  requests: { method?: string; url?: string; headers: IncomingMessage['headers']; body: string }[] = [];
  private server: Server | null = null;

  /** Raw TCP: keeps the first bytes (a TLS ClientHello names the server in plain text), then hangs up. */
  async tcp(): Promise<this> {
    this.server = createTcpServer((socket) => {
      socket.once('data', (chunk) => {
        this.bytes = Buffer.concat([this.bytes, chunk]);
        socket.destroy();
      });
    });
    return this.listen();
  }

  async http(respond: (res: ServerResponse) => void = (res) => res.writeHead(204).end()): Promise<this> {
    this.server = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        this.requests.push({ method: req.method, url: req.url, headers: req.headers, body });
        respond(res);
      });
    });
    return this.listen();
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private async listen(): Promise<this> {
    this.server!.on('connection', () => this.connections++);
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    return this;
  }
}

class FakeResolver extends HostResolver {
  calls: string[] = [];
  constructor(private readonly answers: Record<string, string[]>) {
    super();
  }
  async resolve(hostname: string) {
    this.calls.push(hostname);
    return (this.answers[hostname] ?? []).map((address) => ({ address, family: isIP(address) as 4 | 6 }));
  }
}

const production = { production: true } as AppConfig;
const development = { production: false } as AppConfig;
/** Gives a connection that was (wrongly) opened time to reach the listener. */
const settle = () => new Promise((r) => setTimeout(r, 100));

describe('HttpAlertSender (F8: where alerts may be sent)', () => {
  let listener: Listener;
  let other: Listener | null = null;
  afterEach(async () => {
    await listener?.close();
    await other?.close();
    other = null;
  });

  describe('in production', () => {
    it('refuses a name that resolves to 127.0.0.1, without connecting', async () => {
      listener = await new Listener().tcp();
      const resolver = new FakeResolver({ 'hooks.example.com': ['127.0.0.1'] });
      const sent = new HttpAlertSender(production, resolver).send(`https://hooks.example.com:${listener.port}/hook`, BODY, SIGNATURE, 2_000);
      await expect(sent).rejects.toThrow(/^refused: the host resolves to a private address$/);
      await settle();
      expect(resolver.calls).toEqual(['hooks.example.com']);
      expect(listener.connections).toBe(0);
    });

    it('refuses a name when any of its addresses is private (one public A record does not launder a private AAAA)', async () => {
      listener = await new Listener().tcp();
      const resolver = new FakeResolver({ 'hooks.example.com': ['93.184.215.14', '::ffff:127.0.0.1'] });
      await expect(new HttpAlertSender(production, resolver).send(`https://hooks.example.com:${listener.port}/`, BODY, SIGNATURE, 2_000)).rejects.toThrow(
        'refused: the host resolves to a private address',
      );
      await settle();
      expect(listener.connections).toBe(0);
    });

    it.each([
      ['https://[::ffff:127.0.0.1]:PORT/', 'refused: ::ffff:7f00:1 is a loopback address'],
      ['https://[::]:PORT/', 'refused: :: is the unspecified address'],
      ['https://127.0.0.1:PORT/', 'refused: 127.0.0.1 is a loopback address'],
      ['https://[64:ff9b::7f00:1]:PORT/', 'refused: 64:ff9b::7f00:1 is a loopback address'],
      ['https://localhost:PORT/', 'refused: localhost is not a public host name (.localhost)'],
      ['https://metadata.google.internal:PORT/computeMetadata/v1/', 'refused: metadata.google.internal is not a public host name (.internal)'],
      ['http://hooks.example.com:PORT/', 'refused: the scheme is not https'],
    ])('refuses %s (a URL stored before this check) without resolving or connecting', async (url, message) => {
      listener = await new Listener().tcp();
      const resolver = new FakeResolver({ 'hooks.example.com': ['93.184.215.14'], localhost: ['127.0.0.1'], 'metadata.google.internal': ['169.254.169.254'] });
      const sent = new HttpAlertSender(production, resolver).send(url.replace('PORT', String(listener.port)), BODY, SIGNATURE, 2_000);
      await expect(sent).rejects.toThrow(message);
      await sent.catch((e: Error) => expect(e.message).not.toContain(SIGNATURE.slice(5)));
      await settle();
      expect(resolver.calls).toEqual([]);
      expect(listener.connections).toBe(0);
    });

    it('reports a name that does not resolve', async () => {
      const resolver = new FakeResolver({});
      await expect(new HttpAlertSender(production, resolver).send('https://nowhere.example.com/', BODY, SIGNATURE, 2_000)).rejects.toThrow('refused: the host has no address');
    });
  });

  describe('the pinned connection', () => {
    it('goes to the checked address while the request still names the host (Host header)', async () => {
      listener = await new Listener().http();
      // rebind.example.com does not resolve here: reaching the listener proves no second lookup happened.
      const status = await post(new URL(`http://rebind.example.com:${listener.port}/hook?x=1`), BODY, { 'tollgate-signature': SIGNATURE }, AbortSignal.timeout(2_000), [{ address: '127.0.0.1', family: 4 }]);
      expect(status).toBe(204);
      expect(listener.requests).toEqual([
        expect.objectContaining({ method: 'POST', url: '/hook?x=1', body: BODY, headers: expect.objectContaining({ host: `rebind.example.com:${listener.port}`, 'tollgate-signature': SIGNATURE }) }),
      ]);
    });

    it('tries the other checked addresses when the first one refuses (happy eyeballs among checked addresses only)', async () => {
      listener = await new Listener().http(); // 127.0.0.1 only: ::1 refuses
      const pinned = [
        { address: '::1', family: 6 as const },
        { address: '127.0.0.1', family: 4 as const },
      ];
      expect(await post(new URL(`http://rebind.example.com:${listener.port}/`), BODY, {}, AbortSignal.timeout(2_000), pinned)).toBe(204);
      expect(listener.requests).toHaveLength(1);
    });

    it('keeps the host name for TLS (SNI, certificate check) over the pinned address', async () => {
      listener = await new Listener().tcp();
      const sent = post(new URL(`https://rebind.example.com:${listener.port}/`), BODY, {}, AbortSignal.timeout(2_000), [{ address: '127.0.0.1', family: 4 }]);
      await expect(sent).rejects.toThrow();
      expect(listener.connections).toBe(1);
      expect(listener.bytes.includes(Buffer.from('rebind.example.com'))).toBe(true);
    });
  });

  describe('outside production (tests, npm start)', () => {
    it('delivers to a loopback listener, signed, without consulting the resolver', async () => {
      listener = await new Listener().http();
      const resolver = new FakeResolver({});
      const status = await new HttpAlertSender(development, resolver).send(`http://127.0.0.1:${listener.port}/hooks/tollgate`, BODY, SIGNATURE, 2_000);
      expect(status).toBe(204);
      expect(resolver.calls).toEqual([]);
      expect(listener.requests).toEqual([
        expect.objectContaining({
          method: 'POST',
          url: '/hooks/tollgate',
          body: BODY,
          headers: expect.objectContaining({ 'content-type': 'application/json', 'tollgate-signature': SIGNATURE, 'user-agent': 'Tollgate-Alerts/1' }),
        }),
      ]);
    });

    it('does not follow a redirect (a redirect is not a delivery)', async () => {
      other = await new Listener().http();
      listener = await new Listener().http((res) => res.writeHead(302, { location: `http://127.0.0.1:${other!.port}/elsewhere` }).end());
      const status = await new HttpAlertSender(development, new FakeResolver({})).send(`http://127.0.0.1:${listener.port}/`, BODY, SIGNATURE, 2_000);
      expect(status).toBe(302);
      await settle();
      expect(other.connections).toBe(0);
    });

    it('gives up after the timeout', async () => {
      listener = await new Listener().http(() => undefined); // never answers
      const started = Date.now();
      await expect(new HttpAlertSender(development, new FakeResolver({})).send(`http://127.0.0.1:${listener.port}/`, BODY, SIGNATURE, 200)).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(2_000);
    });
  });
});
