import { Injectable } from '@nestjs/common';
import { AlertSender } from '../domain/alerts';

/** POSTs an alert with Node's fetch; redirects are not followed (a redirect is not a delivery). */
@Injectable()
export class FetchAlertSender extends AlertSender {
  async send(url: string, body: string, signature: string, timeoutMs: number): Promise<number> {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'tollgate-signature': signature, 'user-agent': 'Tollgate-Alerts/1' },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.arrayBuffer().catch(() => undefined);
    return res.status;
  }
}
