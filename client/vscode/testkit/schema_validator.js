'use strict';
// A JSON Schema validator for the keywords our published schemas use (draft 2020-12
// subset): $ref (local), type, enum, const, anyOf, oneOf, properties, required,
// additionalProperties, items, minimum, maximum. An unknown keyword is an error, so
// a schema that starts using one fails the tests instead of passing unchecked.
// (The Python side validates the same messages again with the `jsonschema` package.)

// `discriminator` (OpenAPI's, which msgspec writes for a tagged union) only names the tag field;
// the `oneOf` it sits beside does the checking.
const ANNOTATIONS = new Set(['$schema', '$defs', 'title', 'description', 'default', 'discriminator']);
const KEYWORDS = new Set(['$ref', 'type', 'enum', 'const', 'anyOf', 'oneOf', 'properties', 'required',
  'additionalProperties', 'items', 'minimum', 'maximum']);

function typeOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value; // string, boolean, object
}

function deepEqual(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Errors (strings with a JSON pointer) of `value` against `schema`; [] when valid. */
function validate(root, schema, value, pointer = '') {
  const errors = [];
  for (const key of Object.keys(schema)) {
    if (!ANNOTATIONS.has(key) && !KEYWORDS.has(key)) errors.push(`${pointer}: unsupported keyword ${key}`);
  }
  if (schema.$ref) {
    const match = /^#\/\$defs\/(.+)$/.exec(schema.$ref);
    const target = match && root.$defs && root.$defs[match[1]];
    if (!target) return [`${pointer}: unresolvable $ref ${schema.$ref}`];
    errors.push(...validate(root, target, value, pointer));
  }
  if (schema.type !== undefined) {
    const allowed = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = typeOf(value);
    if (!allowed.includes(actual) && !(actual === 'integer' && allowed.includes('number'))) {
      return [...errors, `${pointer}: expected ${allowed.join('|')}, got ${actual}`];
    }
  }
  if (schema.enum && !schema.enum.some((item) => deepEqual(item, value))) {
    errors.push(`${pointer}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  }
  if ('const' in schema && !deepEqual(schema.const, value)) {
    errors.push(`${pointer}: expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${pointer}: below ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${pointer}: above ${schema.maximum}`);
  }
  if (schema.anyOf) {
    const results = schema.anyOf.map((sub) => validate(root, sub, value, pointer));
    if (!results.some((r) => r.length === 0)) {
      errors.push(`${pointer}: matches none of anyOf (${results.map((r) => r[0]).join('; ')})`);
    }
  }
  if (schema.oneOf) {
    const results = schema.oneOf.map((sub) => validate(root, sub, value, pointer));
    const matches = results.filter((r) => r.length === 0).length;
    if (matches !== 1) {
      errors.push(`${pointer}: matches ${matches} of oneOf (${results.map((r) => r[0]).join('; ')})`);
    }
  }
  if (typeOf(value) === 'object') {
    const properties = schema.properties || {};
    for (const name of schema.required || []) {
      if (!(name in value)) errors.push(`${pointer}: missing required ${name}`);
    }
    for (const [name, item] of Object.entries(value)) {
      const at = `${pointer}/${name}`;
      if (properties[name]) errors.push(...validate(root, properties[name], item, at));
      else if (schema.additionalProperties === false) errors.push(`${at}: not allowed`);
      else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
        errors.push(...validate(root, schema.additionalProperties, item, at));
      }
    }
  }
  if (typeOf(value) === 'array' && schema.items) {
    value.forEach((item, n) => errors.push(...validate(root, schema.items, item, `${pointer}/${n}`)));
  }
  return errors;
}

module.exports = { validate };
