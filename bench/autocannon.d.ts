// Minimal typing for the parts of autocannon the bench uses (no @types package is installed).
declare module 'autocannon' {
  namespace autocannon {
    interface Options {
      url: string;
      method?: string;
      headers?: Record<string, string>;
      body?: string;
      connections?: number;
      duration?: number;
      pipelining?: number;
      timeout?: number;
      verifyBody?: (body: string) => boolean;
      /** Per-request overrides; `setupRequest` may return a new request (e.g. another body) each time. */
      requests?: { method?: string; path?: string; headers?: Record<string, string>; body?: string; setupRequest?: (req: any, context: any) => any }[];
    }
    interface Histogram {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      p50: number;
      p90: number;
      p99: number;
      p99_9?: number;
      [k: string]: number | undefined;
    }
    interface Result {
      requests: Histogram & { total: number; sent: number };
      latency: Histogram;
      throughput: Histogram & { total: number };
      errors: number;
      timeouts: number;
      mismatches: number;
      non2xx: number;
      resets: number;
      duration: number;
      '1xx': number;
      '2xx': number;
      '3xx': number;
      '4xx': number;
      '5xx': number;
      statusCodeStats?: Record<string, { count: number }>;
    }
  }
  /** Returns the run's event emitter ('response' carries (client, statusCode, resBytes, responseTimeMs)). */
  function autocannon(opts: autocannon.Options, cb: (err: Error | null, result: autocannon.Result) => void): import('node:events').EventEmitter;
  export = autocannon;
}
