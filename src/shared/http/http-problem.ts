import { DomainError, ProblemCode } from '../domain/domain-error';

/**
 * A refusal raised by the HTTP layer itself (guards) that must carry response
 * headers, such as WWW-Authenticate on a 401. Domain code never uses it.
 */
export class HttpProblem extends DomainError {
  constructor(
    code: ProblemCode,
    message: string,
    readonly headers: Record<string, string> = {},
    details?: Record<string, unknown>,
  ) {
    super(code, message, details);
  }
}
