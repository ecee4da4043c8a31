import { registerDecorator, ValidationOptions } from 'class-validator';

/** A plain JSON object (not an array, not null) whose serialized size and depth stay bounded. */
export function IsBoundedJsonObject(maxBytes: number, maxDepth = 5, options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isBoundedJsonObject',
      target: object.constructor,
      propertyName,
      options: {
        message: `${propertyName} must be a JSON object of at most ${maxBytes} bytes and ${maxDepth} levels`,
        ...options,
      },
      validator: {
        validate(value: unknown): boolean {
          if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
          if (depth(value) > maxDepth) return false;
          return Buffer.byteLength(JSON.stringify(value), 'utf8') <= maxBytes;
        },
      },
    });
}

function depth(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let max = 0;
  for (const v of Object.values(value as Record<string, unknown>)) max = Math.max(max, depth(v));
  return 1 + max;
}
