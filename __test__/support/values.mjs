// fast-check arbitraries for values JSON.stringify has rules about.
import fc from 'fast-check'

/** Strings of any UTF-16 code units: astral pairs, lone surrogates, controls, quotes. */
export const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 16 }).map((a) => String.fromCharCode(...a)),
  fc.constantFrom('', '"', '\\', '\u2028\u2029', '\ud800', '\udfff', '\ud83d\ude00', '<|endoftext|>', '\u0000\u001f\u007f'),
)

/** Numbers including every formatting edge JSON.stringify has. */
export const anyNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 1e21, 1e-7, 5e-7, 1e-6, 123456789012345680000, 0.1 + 0.2, Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON, 2 ** 53, -(2 ** 31)),
)

/** Keys, with integer-like ones (which come first in property order). */
export const anyKey = fc.oneof(
  anyString,
  fc.nat({ max: 4294967295 }).map(String),
  fc.constantFrom('0', '1', '10', '01', '-0', '-1', '4294967294', '4294967295', '1e3', 'toJSON', '__proto__', 'constructor'),
)

const leaf = fc.oneof(
  { weight: 3, arbitrary: anyString },
  { weight: 3, arbitrary: anyNumber },
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.constant(() => 1),
  fc.constant(Symbol('s')),
  anyNumber.map((n) => new Number(n)),
  anyString.map((s) => new String(s)),
  fc.boolean().map((b) => new Boolean(b)),
  fc.integer({ min: -8.64e15, max: 8.64e15 }).map((t) => new Date(t)),
  fc.constant(new Date(NaN)),
  fc.constant(new Map([[1, 2]])),
  fc.constant(new Set([1])),
)

/** Nested values: objects, arrays (sparse too), toJSON holders, class instances. */
export const anyValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object'), tie('special')),
  array: fc.array(tie('value'), { maxLength: 6 }),
  object: fc.array(fc.tuple(anyKey, tie('value')), { maxLength: 6 }).map((entries) => {
    const o = {}
    for (const [k, v] of entries) {
      Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
    }
    return o
  }),
  special: fc.oneof(
    // Sparse arrays: holes become null.
    fc.tuple(fc.array(tie('value'), { maxLength: 4 }), fc.nat({ max: 6 })).map(([a, n]) => {
      const arr = [...a]
      arr.length = a.length + n
      return arr
    }),
    // toJSON receives the key it is serialized under.
    fc.constant({ toJSON: (/** @type {string} */ k) => `key:${k}` }),
    tie('value').map((v) => ({ toJSON: () => v })),
    // A toJSON result that has its own toJSON is not asked again.
    fc.constant({ toJSON: () => ({ toJSON: () => 'inner', x: 1 }) }),
    // Null-prototype objects and class instances with prototype members.
    tie('object').map((o) => Object.assign(Object.create(null), o)),
    tie('object').map((o) => Object.assign(new (class Thing { get proto() { return 1 } })(), o)),
    // Non-enumerable and symbol-keyed properties are left out.
    tie('value').map((v) => Object.defineProperty({ [Symbol('k')]: 1, shown: v }, 'hidden', { value: 1, enumerable: false })),
  ),
})).value

/** pretty option values and the JSON.stringify third argument each one means. */
export const anyIndent = fc.constantFrom(
  [undefined, undefined],
  [false, undefined],
  [true, 2],
  [0, 0],
  [1, 1],
  [2, 2],
  [4, 4],
  [10, 10],
  [11, 11],
)
