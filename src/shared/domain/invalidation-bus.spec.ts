import { LocalInvalidationBus, parseInvalidation } from './invalidation-bus';

describe('LocalInvalidationBus', () => {
  it('delivers a message to the handlers of its kind only, before publish resolves', () => {
    const bus = new LocalInvalidationBus();
    const seen: string[] = [];
    bus.subscribe('api_key', (id) => seen.push(`key:${id}`));
    bus.subscribe('api_key', (id) => seen.push(`key2:${id}`));
    bus.subscribe('tenant_plan', (id) => seen.push(`plan:${id}`));
    void bus.publish({ kind: 'api_key', id: 'k1' });
    expect(seen).toEqual(['key:k1', 'key2:k1']);
  });
});

describe('parseInvalidation (messages from other replicas)', () => {
  it.each([
    ['{"kind":"api_key","id":"k1","origin":"o"}', { kind: 'api_key', id: 'k1', origin: 'o' }],
    ['{"kind":"tenant_catalog","id":"t1","origin":"o"}', { kind: 'tenant_catalog', id: 't1', origin: 'o' }],
    ['{"kind":"tenant_plan","id":"t1","origin":"o"}', { kind: 'tenant_plan', id: 't1', origin: 'o' }],
    ['{"kind":"everything","id":"k1","origin":"o"}', null],
    ['{"kind":"api_key","id":"","origin":"o"}', null],
    ['{"kind":"api_key","id":"k1"}', null],
    ['{"kind":"api_key","id":1,"origin":"o"}', null],
    ['not json', null],
    ['null', null],
  ])('%s', (raw, expected) => {
    expect(parseInvalidation(raw)).toEqual(expected);
  });
});
