import { addressRange, hostProblem, isPublicAddress, normalizeHost, resolvedAddressesProblem } from './webhook-target';

describe('webhook targets: address ranges (F8)', () => {
  it.each([
    // IPv4
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['100.64.0.1', 'shared'],
    ['100.100.100.200', 'shared'], // Alibaba Cloud metadata
    ['100.127.255.255', 'shared'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'], // AWS / GCP / Azure metadata
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', 'reserved'],
    ['192.168.1.1', 'private'],
    ['198.18.0.1', 'reserved'],
    ['198.19.255.255', 'reserved'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.9', 'documentation'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    // IPv6
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456:789a::1', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'private'],
    ['ff02::1', 'multicast'],
    ['ff05::1:3', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['2001::1', 'reserved'], // Teredo
    ['2002:7f00:1::1', 'reserved'], // 6to4 wrapping 127.0.0.1
    ['100::1', 'reserved'],
    ['64:ff9b:1::1', 'reserved'],
    ['5f00::1', 'reserved'], // outside 2000::/3
    ['4000::1', 'reserved'],
    // IPv4-mapped: what it wraps decides
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:100.100.100.200', 'shared'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:224.0.0.1', 'multicast'],
    ['::ffff:192.0.2.1', 'documentation'],
    // IPv4-compatible (deprecated): never public
    ['::127.0.0.1', 'reserved'],
    ['::7f00:1', 'reserved'],
    ['::8.8.8.8', 'reserved'],
    // NAT64 well-known prefix: what it wraps decides
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['64:ff9b::192.168.0.1', 'private'],
    ['64:ff9b::100.64.0.1', 'shared'],
    // public
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['93.184.215.14', 'public'],
    ['100.63.255.255', 'public'], // just below CGNAT
    ['100.128.0.0', 'public'], // just above
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['169.253.255.255', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['2a00:1450:4001:81b::200e', 'public'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::8.8.8.8', 'public'],
    // not an address
    ['example.com', 'invalid'],
    ['', 'invalid'],
    ['1.2.3', 'invalid'],
  ])('%s is %s', (address, range) => {
    expect(addressRange(address)).toBe(range);
    expect(isPublicAddress(address)).toBe(range === 'public');
  });
});

describe('webhook targets: host names (F8)', () => {
  it.each([
    ['localhost', 'localhost is not a public host name (.localhost)'],
    ['LocalHost.', 'localhost is not a public host name (.localhost)'],
    ['app.localhost', 'app.localhost is not a public host name (.localhost)'],
    ['metadata.google.internal', 'metadata.google.internal is not a public host name (.internal)'],
    ['metadata.google.internal.', 'metadata.google.internal is not a public host name (.internal)'],
    ['db.prod.internal', 'db.prod.internal is not a public host name (.internal)'],
    ['printer.local', 'printer.local is not a public host name (.local)'],
    ['nas.home.arpa', 'nas.home.arpa is not a public host name (.home.arpa)'],
    ['box.localdomain', 'box.localdomain is not a public host name (.localdomain)'],
    ['metadata', 'metadata is not a fully qualified host name'],
    ['[::ffff:7f00:1]', '::ffff:7f00:1 is a loopback address'],
    ['[::]', ':: is the unspecified address'],
    ['100.100.100.200', '100.100.100.200 is a shared (CGNAT) address'],
    ['169.254.169.254', '169.254.169.254 is a link-local address'],
    ['[64:ff9b::a9fe:a9fe]', '64:ff9b::a9fe:a9fe is a link-local address'],
  ])('%s is refused: %s', (host, problem) => {
    expect(hostProblem(host)).toBe(problem);
  });

  it.each(['hooks.example.com', 'hooks.example.com.', 'HOOKS.Example.COM', 'internal.example.com', 'localhost.example.com', '8.8.8.8', '[2606:4700:4700::1111]', '[::ffff:808:808]'])(
    '%s may be a webhook host',
    (host) => {
      expect(hostProblem(host)).toBeNull();
    },
  );

  it('normalizes brackets, case and trailing dots', () => {
    expect(normalizeHost('[::1]')).toBe('::1');
    expect(normalizeHost('Example.COM..')).toBe('example.com');
  });

  it('refuses a name when any address it resolves to is not public', () => {
    expect(resolvedAddressesProblem(['93.184.215.14'])).toBeNull();
    expect(resolvedAddressesProblem(['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'])).toBeNull();
    expect(resolvedAddressesProblem(['93.184.215.14', '127.0.0.1'])).toBe('the host resolves to a private address');
    expect(resolvedAddressesProblem(['::ffff:169.254.169.254'])).toBe('the host resolves to a private address');
    expect(resolvedAddressesProblem(['fe80::1%2'])).toBe('the host resolves to a private address');
    expect(resolvedAddressesProblem([])).toBe('the host has no address');
  });
});
