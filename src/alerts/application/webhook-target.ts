import { BlockList, isIP } from 'node:net';
// In application/, not domain/: it parses addresses with node:net (domain code imports only node:crypto, STYLE.md).

/**
 * Where a tenant's alert webhook may point in production (F8: the server must not
 * be made to POST to its own network). Pure rules, no I/O: `node:net` is used only
 * for `isIP` and `BlockList` (in-memory prefix matching), so the ranges below are
 * data, not regular expressions.
 */

/** The range an IP address belongs to; only `public` may receive alerts in production. */
export type AddressRange =
  | 'public'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'unique-local'
  | 'link-local'
  | 'shared'
  | 'multicast'
  | 'documentation'
  | 'reserved'
  | 'invalid';

type Rule = readonly [network: string, prefix: number, range: Exclude<AddressRange, 'public' | 'invalid'>];

/** IPv4 special-purpose ranges (IANA registry) that are not a public unicast destination. */
const IPV4_RULES: readonly Rule[] = [
  ['0.0.0.0', 8, 'unspecified'], // "this network"
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared'], // CGNAT (RFC 6598); 100.100.100.200 is Alibaba's metadata service
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'], // 169.254.169.254: cloud metadata services
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'], // IETF protocol assignments
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved'], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'], // benchmarking
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'], // future use, and 255.255.255.255 (broadcast)
];

/**
 * IPv6 prefixes that carry an IPv4 address in their last 32 bits and reach it:
 * IPv4-mapped (a dual-stack socket connects to the IPv4 address) and the NAT64
 * well-known prefix (a NAT64 gateway forwards to it). Each IPv4 rule applies
 * inside them; what they wrap decides.
 */
const IPV4_WRAPPERS = ['::ffff:', '64:ff9b::'] as const;

const IPV6_RULES: readonly Rule[] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['::', 96, 'reserved'], // IPv4-compatible (deprecated, RFC 4291): never a public endpoint, whatever it wraps
  ['64:ff9b:1::', 48, 'reserved'], // local-use NAT64 (RFC 8215)
  ['100::', 64, 'reserved'], // discard-only
  ['2001::', 23, 'reserved'], // IETF protocol assignments (Teredo 2001::/32, benchmarking, ORCHID…)
  ['2001:db8::', 32, 'documentation'],
  ['2002::', 16, 'reserved'], // 6to4 (deprecated, RFC 7526): wraps an IPv4 address
  ['3fff::', 20, 'documentation'], // RFC 9637
  ['fc00::', 7, 'unique-local'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'private'], // site-local (deprecated)
  ['ff00::', 8, 'multicast'],
  ...IPV4_WRAPPERS.flatMap((wrapper) => IPV4_RULES.map(([network, prefix, range]): Rule => [`${wrapper}${network}`, 96 + prefix, range])),
];

/**
 * IPv6 destinations that may be public: global unicast (2000::/3; everything
 * else IANA has not allocated for public use) and the IPv4 wrappers above
 * (whose wrapped address was checked by the rules).
 */
const IPV6_PUBLIC = blockList([['2000::', 3], ...IPV4_WRAPPERS.map((w): [string, number] => [`${w}0.0.0.0`, 96])], 'ipv6');

const V4 = compile(IPV4_RULES, 'ipv4');
const V6 = compile(IPV6_RULES, 'ipv6');

function blockList(subnets: readonly (readonly [string, number])[], type: 'ipv4' | 'ipv6'): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of subnets) list.addSubnet(network, prefix, type);
  return list;
}

/**
 * One BlockList per range, tried in the order the ranges first appear in `rules`:
 * the only overlap is `::` and `::1` inside `::/96`, listed before it.
 */
function compile(rules: readonly Rule[], type: 'ipv4' | 'ipv6'): [AddressRange, BlockList][] {
  const ranges = [...new Set(rules.map(([, , range]) => range))];
  return ranges.map((range) => [range, blockList(rules.filter(([, , r]) => r === range).map(([n, p]) => [n, p] as const), type)]);
}

/**
 * The range `address` belongs to. Accepts an IPv4 or IPv6 address as written
 * in a URL (brackets allowed) or returned by DNS (a `%zone` is ignored: it does
 * not change the range); anything else is `invalid`.
 */
export function addressRange(address: string): AddressRange {
  const ip = address.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  const family = isIP(ip);
  if (family === 4) return V4.find(([, list]) => list.check(ip, 'ipv4'))?.[0] ?? 'public';
  if (family === 6) {
    const range = V6.find(([, list]) => list.check(ip, 'ipv6'))?.[0];
    if (range) return range;
    return IPV6_PUBLIC.check(ip, 'ipv6') ? 'public' : 'reserved';
  }
  return 'invalid';
}

export function isPublicAddress(address: string): boolean {
  return addressRange(address) === 'public';
}

/**
 * Name suffixes that never name a public host: RFC 6761 `localhost`, ICANN's
 * private-use `internal` (`metadata.google.internal`), mDNS `local`, RFC 8375
 * `home.arpa`, and the common `localdomain`.
 */
const NON_PUBLIC_SUFFIXES = ['localhost', 'internal', 'local', 'localdomain', 'home.arpa'] as const;

/** A URL's host name without brackets, case or trailing dots: the form every rule compares. */
export function normalizeHost(hostname: string): string {
  return hostname
    .replace(/^\[(.*)\]$/, '$1')
    .toLowerCase()
    .replace(/\.+$/, '');
}

/**
 * Why `hostname` (a URL's host: an IP literal or a name) is not a public
 * webhook host, or null when nothing in the name itself forbids it. A name
 * still has to resolve to public addresses only, which is checked at send
 * time ({@link resolvedAddressesProblem}).
 */
export function hostProblem(hostname: string): string | null {
  const host = normalizeHost(hostname);
  if (isIP(host)) {
    const range = addressRange(host);
    return range === 'public' ? null : `${host} is ${RANGE_NAMES[range]}`;
  }
  if (host === '') return 'the host is empty';
  const suffix = NON_PUBLIC_SUFFIXES.find((s) => host === s || host.endsWith(`.${s}`));
  if (suffix) return `${host} is not a public host name (.${suffix})`;
  // A single label is completed by the resolver's search domains: an internal name (`metadata`).
  if (!host.includes('.')) return `${host} is not a fully qualified host name`;
  return null;
}

/** Why a host resolving to `addresses` may not receive alerts, or null when every one of them is public. */
export function resolvedAddressesProblem(addresses: readonly string[]): string | null {
  if (addresses.length === 0) return 'the host has no address';
  return addresses.every(isPublicAddress) ? null : 'the host resolves to a private address';
}

const RANGE_NAMES: Record<AddressRange, string> = {
  public: 'a public address',
  unspecified: 'the unspecified address',
  loopback: 'a loopback address',
  private: 'a private address',
  'unique-local': 'a unique-local address',
  'link-local': 'a link-local address',
  shared: 'a shared (CGNAT) address',
  multicast: 'a multicast address',
  documentation: 'a documentation address',
  reserved: 'a reserved address',
  invalid: 'not a valid address',
};
