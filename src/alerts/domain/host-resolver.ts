/** Port: every address a host name resolves to (the system resolver in production; a fake in tests). */
export abstract class HostResolver {
  abstract resolve(hostname: string): Promise<{ address: string; family: 4 | 6 }[]>;
}
