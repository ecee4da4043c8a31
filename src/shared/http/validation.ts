import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { ValidateIf } from 'class-validator';
import { DomainError, FieldError, ValidationFailedError } from '../domain/domain-error';
import { hasLoneSurrogate } from '../domain/text';

/** Deepest JSON nesting a body or query may have; far beyond any DTO, far below the stack limit. */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` nests objects/arrays more than `max` levels deep (iterative: a hostile body cannot overflow it). */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return true;
    for (const child of Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * The path of the first string (value or member name) holding a lone UTF-16
 * surrogate ("\ud800" is valid JSON but not Unicode text), or null. Such text
 * cannot be stored as it is: jsonb refuses it (a 500), text columns turn it
 * into U+FFFD. `value` is known not to nest deeper than MAX_JSON_DEPTH.
 */
export function illFormedTextPath(value: unknown, path = ''): string | null {
  if (typeof value === 'string') return hasLoneSurrogate(value) ? path || '(value)' : null;
  if (value === null || typeof value !== 'object') return null;
  for (const [key, child] of Object.entries(value)) {
    const at = Array.isArray(value) ? `${path}[${key}]` : path ? `${path}.${key}` : key;
    if (hasLoneSurrogate(key)) return at;
    const found = illFormedTextPath(child, at);
    if (found !== null) return found;
  }
  return null;
}

/**
 * ValidationPipe walks bodies recursively (stripProtoKeys, class-transformer,
 * class-validator): a body nested a few thousand levels deep (well under the
 * 1 MiB limit) overflowed the stack into a 500. Refuse it first (fuzz finding).
 */
class DepthBoundedValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    // Custom decorators (@CurrentAgent(), …) hand over server-built objects, not client JSON.
    if (metadata.type !== 'custom' && nestedDeeperThan(value, MAX_JSON_DEPTH)) {
      throw new DomainError('malformed_request', `The ${metadata.type === 'body' ? 'body' : 'request'} is nested more than ${MAX_JSON_DEPTH} levels deep.`);
    }
    const illFormed = metadata.type === 'custom' ? null : illFormedTextPath(value);
    if (illFormed !== null) {
      throw new ValidationFailedError([{ field: illFormed, message: 'must be Unicode text: it holds a lone UTF-16 surrogate escape (\\uD800–\\uDFFF without its pair)' }]);
    }
    return super.transform(value, metadata);
  }
}

/**
 * For optional body fields without a meaning for null: only an absent field
 * skips validation. `@IsOptional()` also skips null, which then reached
 * services as if it were the field's type (`{"name": null}` was a 500, and
 * `{"enabled": null}` disabled a key).
 */
export function IsOmittable(): PropertyDecorator {
  return ValidateIf((_object: object, value: unknown) => value !== undefined);
}

/** Flattens class-validator's tree into `field.path[0]: message` entries. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors) {
    const path = parent ? (/^\d+$/.test(e.property) ? `${parent}[${e.property}]` : `${parent}.${e.property}`) : e.property;
    for (const message of Object.values(e.constraints ?? {})) out.push({ field: path, message });
    if (e.children?.length) out.push(...flattenValidationErrors(e.children, path));
  }
  return out;
}

/** Bodies and queries: unknown fields refused, types converted, every error listed (422 validation_failed). */
export function createValidationPipe(): ValidationPipe {
  return new DepthBoundedValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    stopAtFirstError: false,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => new ValidationFailedError(flattenValidationErrors(errors)),
  });
}
