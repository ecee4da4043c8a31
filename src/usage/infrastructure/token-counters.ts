import { estimateTokens, TokenCounter } from '../domain/usage';

/** The default (U1): request + response bytes divided by 4. */
export class BytesTokenCounter extends TokenCounter {
  count(requestJson: string, responseJson: string): number {
    return estimateTokens(Buffer.byteLength(requestJson), Buffer.byteLength(responseJson));
  }
}

/** TOKEN_COUNTER=o200k: a real BPE tokenizer (gpt-tokenizer, the o200k_base encoding of current OpenAI models). */
export class O200kTokenCounter extends TokenCounter {
  // Loaded on first use: the encoding tables are a few MB and most deployments keep the byte estimate.
  private countTokens: ((text: string) => number) | null = null;

  count(requestJson: string, responseJson: string): number {
    this.countTokens ??= (require('gpt-tokenizer/cjs/encoding/o200k_base') as { countTokens(text: string): number }).countTokens;
    return this.countTokens(requestJson) + this.countTokens(responseJson);
  }
}
