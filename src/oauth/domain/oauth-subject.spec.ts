import { oauthSubjectKeyId } from './oauth-subject';

const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('oauthSubjectKeyId', () => {
  it('is a version-8 UUID (fits the uuid key_id columns, never a v4 key id)', () => {
    expect(oauthSubjectKeyId('https://as.example.com', 'alice')).toMatch(UUID_V8);
  });

  it('is deterministic per issuer and subject', () => {
    expect(oauthSubjectKeyId('https://as.example.com', 'alice')).toBe(oauthSubjectKeyId('https://as.example.com', 'alice'));
    expect(oauthSubjectKeyId('https://as.example.com', 'alice')).not.toBe(oauthSubjectKeyId('https://as.example.com', 'bob'));
    expect(oauthSubjectKeyId('https://as.example.com', 'alice')).not.toBe(oauthSubjectKeyId('https://other.example.com', 'alice'));
  });

  it('does not confuse issuer/subject boundaries', () => {
    expect(oauthSubjectKeyId('https://a', 'b/c')).not.toBe(oauthSubjectKeyId('https://a/b', 'c'));
  });
});
