import { isISO8601, registerDecorator } from 'class-validator';

/**
 * An ISO 8601 date and time that JavaScript's Date can also read. Some forms
 * `@IsISO8601` accepts (week dates such as 2026-W01, the basic format
 * 20260101T000000Z, expanded years such as +9999-01-01) make an Invalid Date,
 * which reached PostgreSQL and came back as a 500.
 */
export function IsIsoDateTime(options: { strictSeparator?: boolean } = { strictSeparator: true }): PropertyDecorator {
  return (object: object, propertyName: string | symbol) =>
    registerDecorator({
      name: 'isIsoDateTime',
      target: object.constructor,
      propertyName: String(propertyName),
      options: { message: `${String(propertyName)} must be an ISO 8601 date and time such as 2026-01-31T12:00:00Z` },
      validator: {
        validate(value: unknown): boolean {
          return typeof value === 'string' && isISO8601(value, { strict: true, strictSeparator: options.strictSeparator ?? false }) && !Number.isNaN(Date.parse(value));
        },
      },
    });
}
