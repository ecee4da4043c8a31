import { ValidationFailedError } from '../../shared/domain/domain-error';

/**
 * SSRF guard for tenant-registered upstreams: only http(s), no credentials in
 * the URL, and a host on the operator's allow-list (UPSTREAM_ALLOWED_HOSTS:
 * exact names, or `*.example.com` for subdomains). Everything else, including
 * cloud metadata addresses, is refused.
 */
export class UpstreamUrlPolicy {
  private readonly exact: Set<string>;
  private readonly suffixes: string[];

  constructor(allowedHosts: string[]) {
    const normalized = allowedHosts.map((h) => h.trim().toLowerCase()).filter(Boolean);
    this.exact = new Set(normalized.filter((h) => !h.startsWith('*.')));
    this.suffixes = normalized.filter((h) => h.startsWith('*.')).map((h) => h.slice(1));
  }

  /** The normalized URL, or a validation error naming the field `url`. */
  check(raw: string): string {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw invalid('must be an absolute http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('must use http or https');
    if (url.username || url.password) throw invalid('must not contain credentials; use headers');
    const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
    if (!this.allows(host)) {
      throw invalid(`host "${host}" is not in UPSTREAM_ALLOWED_HOSTS`);
    }
    url.hash = '';
    return url.toString();
  }

  allows(host: string): boolean {
    return this.exact.has(host) || this.suffixes.some((s) => host.endsWith(s) && host.length > s.length);
  }
}

function invalid(message: string): ValidationFailedError {
  return new ValidationFailedError([{ field: 'url', message }]);
}
