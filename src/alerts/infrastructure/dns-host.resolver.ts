import { Injectable } from '@nestjs/common';
import { lookup } from 'node:dns/promises';
import { HostResolver } from '../domain/host-resolver';

/**
 * The system resolver (getaddrinfo: /etc/hosts, search domains, A and AAAA),
 * the one a plain connection would use: every address, in its order.
 */
@Injectable()
export class DnsHostResolver extends HostResolver {
  async resolve(hostname: string): Promise<{ address: string; family: 4 | 6 }[]> {
    const addresses = await lookup(hostname, { all: true, verbatim: true });
    return addresses.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
  }
}
