// One codec for every piece of world state. A piece's shape is declared once, as a value built from
// these combinators; its TypeScript type is inferred from the shape (`Infer`), and clone, the plain
// JSON form (checkpoints, `state --json`, the state hash) and the way back are all derived from it.
// A field added to a shape is therefore cloned, checkpointed, hashed and printed everywhere.
//
// The plain form spells every field in the order the shape declares it (never the order an object
// happened to be built in), 64-bit values as hex strings, byte arrays as base64: two worlds have the
// same plain form only if every field is equal.

export interface Shape<T, P = unknown> {
  clone(v: T): T;
  toPlain(v: T): P;
  fromPlain(p: P): T;
  /** an object field whose value is null is left out of the plain form (a field added later keeps old hashes) */
  readonly omitNull?: boolean;
  /** kept out of the plain form altogether (guest memory: checkpoints store its pages as binary) */
  readonly noPlain?: boolean;
}

export type Infer<S> = S extends Shape<infer T, any> ? T : never; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The plain (JSON) form of a shape's values. */
export type PlainOf<S> = S extends Shape<any, infer P> ? P : never; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The plain type of a shape kept out of the plain form. */
export type NoPlain = { readonly __noPlain: true } | undefined;

const same = <T>(v: T): T => v;

/** A number, boolean or string (a string union with `str<'a' | 'b'>()`), copied as is. */
export const num: Shape<number, number> = { clone: same, toPlain: same, fromPlain: (p) => p };
export const bool: Shape<boolean, boolean> = { clone: same, toPlain: same, fromPlain: (p) => p };
export const str = <T extends string = string>(): Shape<T, T> => ({ clone: same, toPlain: same, fromPlain: (p) => p });

const hex = (v: bigint) => '0x' + v.toString(16);

/** A 64-bit value: exact as a bigint, a hex string in plain form. */
export const big: Shape<bigint, string> = { clone: same, toPlain: hex, fromPlain: (p) => BigInt(p) };

/**
 * A page frame number shown as the address of its page (pfn << 12). The pfn is a number: a pfn of a
 * 64-bit address is below 2^52, so exact (the plain form is the same as when it was a bigint).
 */
export const pfnAddr: Shape<number, string> = { clone: same, toPlain: (v) => hex(BigInt(v) << 12n), fromPlain: (p) => Number(BigInt(p) >> 12n) };

/**
 * A field derived from another field of the same object: a second form of that value kept beside it
 * for speed (a 64-bit value as a double to compare in numbers, see `exactNum`). obj() computes it from
 * the source field whenever it builds the object (clone, fromPlain), and it is never in the plain
 * form, so it cannot change a checkpoint or a state hash; whoever builds the object otherwise (a rule)
 * computes it with the same function.
 */
export interface Derived<T> extends Shape<T, NoPlain> {
  readonly from: string;
  readonly derive: (x: never) => T;
}

export function derived<S, T>(from: string, derive: (x: S) => T): Derived<T> {
  const none = (): T => {
    throw new Error(`derived field (from ${from}): built by obj() only`);
  };
  return { from, derive: derive as (x: never) => T, clone: none, toPlain: () => undefined, fromPlain: none, noPlain: true };
}

/**
 * A 64-bit value as a double for comparisons: exact in [0, 2^53), +Infinity at or above 2^53 and
 * -Infinity below 0 (so every address in [0, 2^53) compares with it as with the value itself).
 * Comparing a bigint with another is a builtin call on Node 20; two doubles, one instruction.
 */
export function exactNum(x: bigint): number {
  return x < 0n ? -Infinity : x < 9007199254740992n ? Number(x) : Infinity;
}

/** Bytes, base64 in plain form. */
export const bytes: Shape<Uint8Array, string> = {
  clone: (v) => new Uint8Array(v),
  toPlain: (v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'),
  fromPlain: (p) => new Uint8Array(Buffer.from(p, 'base64')),
};

/** JSON data kept as is (a plain object of strings, numbers and booleans). */
export const json = <T>(): Shape<T, T> => ({ clone: (v) => JSON.parse(JSON.stringify(v)) as T, toPlain: same, fromPlain: (p) => p });

export function arr<T, P>(s: Shape<T, P>): Shape<T[], P[]> {
  return { clone: (v) => v.map((x) => s.clone(x)), toPlain: (v) => v.map((x) => s.toPlain(x)), fromPlain: (p) => p.map((x) => s.fromPlain(x)) };
}

export function nullable<T, P>(s: Shape<T, P>, omitNull = false): Shape<T | null, P | null> {
  return {
    clone: (v) => (v === null ? null : s.clone(v)),
    toPlain: (v) => (v === null ? null : s.toPlain(v)),
    fromPlain: (p) => (p === null || p === undefined ? null : s.fromPlain(p)),
    omitNull,
  };
}

type Fields = Record<string, Shape<any, any> | null>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Key<F, K> = K extends '__proto__' ? never : K;
export type ObjOf<F extends Fields> = { -readonly [K in keyof F as Key<F, K>]: Infer<F[K]> };
export type PlainObjOf<F extends Fields> = { -readonly [K in keyof F as PlainOf<F[K]> extends NoPlain ? never : Key<F, K>]: PlainOf<F[K]> };

export interface ObjShape<F extends Fields> extends Shape<ObjOf<F>, PlainObjOf<F>> {
  readonly fields: F;
}

/**
 * An object with exactly these fields, in this order. Declare them as `obj({ __proto__: null, a: num,
 * ... })`: a null-prototype literal is a dictionary in V8, while an ordinary literal with the same
 * keys as the state objects would share their hidden class, and its shape-valued fields would
 * generalize that class's field types (a BigInt field no longer known to hold a BigInt): the
 * simulator's hot paths ran 40% slower that way.
 */
export function obj<F extends Fields>(fields: F): ObjShape<F> {
  if (Object.getPrototypeOf(fields) !== null) throw new Error('obj(): declare the fields with __proto__: null (see codec.ts)');
  const keys = Object.keys(fields);
  const shapes = keys.map((k) => fields[k]!);
  const n = keys.length;
  // clone and fromPlain build each object as one object literal (a function made once per shape), not
  // as {} plus keys: V8 then gives the copies the hidden class of the literals the rules create, so
  // code that ran on the rules' objects is not deoptimised by a world decoded from a checkpoint
  // (a derived field is computed from its source field's new value, held in a local)
  const isDerived = (x: unknown): x is Derived<unknown> => typeof (x as Derived<unknown>).derive === 'function';
  shapes.forEach((x, i) => {
    if (isDerived(x) && !(keys.indexOf(x.from) >= 0 && keys.indexOf(x.from) < i && !isDerived(shapes[keys.indexOf(x.from)])))
      throw new Error(`obj(): derived field ${keys[i]} needs its source field ${x.from} before it`);
  });
  const literal = (each: string) =>
    new Function(
      's',
      'v',
      keys.map((k, i) => (isDerived(shapes[i]) ? '' : `const a${i} = ${each.replace('$S', () => `s[${i}]`).replace('$V', () => `v[${JSON.stringify(k)}]`)};`)).join(' ') +
        ` return {${keys.map((k, i) => `${JSON.stringify(k)}: ${isDerived(shapes[i]) ? `s[${i}].derive(a${keys.indexOf((shapes[i] as Derived<unknown>).from)})` : `a${i}`}`).join(', ')}};`,
    ) as (
      s: readonly Shape<unknown, unknown>[],
      v: Record<string, unknown>,
    ) => Record<string, unknown>;
  const cloneLit = literal('$S.clone($V)');
  const fromPlainLit = literal('$S.fromPlain($V ?? null)');
  return {
    fields,
    clone(v) {
      return cloneLit(shapes, v as Record<string, unknown>) as ObjOf<F>;
    },
    toPlain(v) {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const x = (v as Record<string, unknown>)[keys[i]!];
        if ((x === null && shapes[i]!.omitNull) || shapes[i]!.noPlain) continue;
        o[keys[i]!] = shapes[i]!.toPlain(x);
      }
      return o as PlainObjOf<F>;
    },
    fromPlain(p) {
      return fromPlainLit(shapes, p as Record<string, unknown>) as ObjOf<F>;
    },
  };
}

type Keyed<KN extends string, KP> = { [k in KN]: KP };

/**
 * A Map in insertion order (the order of the events that inserted into it), in plain form a list of
 * objects: the key as field `keyName`, then the value's fields.
 */
export function mapList<KN extends string, K, KP, V, VP extends object>(keyName: KN, key: Shape<K, KP>, val: Shape<V, VP>): Shape<Map<K, V>, (Keyed<KN, KP> & VP)[]> {
  return {
    clone(m) {
      const out = new Map<K, V>();
      for (const [k, v] of m) out.set(k, val.clone(v));
      return out;
    },
    toPlain(m) {
      const out: (Keyed<KN, KP> & VP)[] = [];
      for (const [k, v] of m) out.push({ [keyName]: key.toPlain(k), ...val.toPlain(v) } as Keyed<KN, KP> & VP);
      return out;
    },
    fromPlain(p) {
      const out = new Map<K, V>();
      for (const e of p) out.set(key.fromPlain(e[keyName]), val.fromPlain(e));
      return out;
    },
  };
}

/** A Map of scalars in insertion order, in plain form a list of {keyName: key, valName: value}. */
export function mapPairs<KN extends string, VN extends string, K, KP, V, VP>(keyName: KN, key: Shape<K, KP>, valName: VN, val: Shape<V, VP>): Shape<Map<K, V>, (Keyed<KN, KP> & Keyed<VN, VP>)[]> {
  return {
    clone: (m) => new Map(m),
    toPlain(m) {
      const out: (Keyed<KN, KP> & Keyed<VN, VP>)[] = [];
      for (const [k, v] of m) out.push({ [keyName]: key.toPlain(k), [valName]: val.toPlain(v) } as Keyed<KN, KP> & Keyed<VN, VP>);
      return out;
    },
    fromPlain: (p) => new Map(p.map((e) => [key.fromPlain(e[keyName]), val.fromPlain(e[valName])])),
  };
}

/** A Map whose key is a field of its value: in plain form the list of values. */
export function mapValues<K, V, VP>(keyOf: (v: V) => K, val: Shape<V, VP>): Shape<Map<K, V>, VP[]> {
  return {
    clone(m) {
      const out = new Map<K, V>();
      for (const [k, v] of m) out.set(k, val.clone(v));
      return out;
    },
    toPlain: (m) => [...m.values()].map((v) => val.toPlain(v)),
    fromPlain: (p) => new Map(p.map((x) => val.fromPlain(x)).map((v) => [keyOf(v), v])),
  };
}

/** A Map of lists (several entries per key), in plain form one flat list of {key, ...entry}. */
export function multimapList<KN extends string, K, KP, V, VP extends object, M extends Map<K, V[]>>(keyName: KN, key: Shape<K, KP>, val: Shape<V, VP>, make: () => M): Shape<M, (Keyed<KN, KP> & VP)[]> {
  return {
    clone(m) {
      const out = make();
      for (const [k, a] of m) out.set(k, a.map((v) => val.clone(v)));
      return out;
    },
    toPlain(m) {
      const out: (Keyed<KN, KP> & VP)[] = [];
      for (const [k, a] of m) for (const v of a) out.push({ [keyName]: key.toPlain(k), ...val.toPlain(v) } as Keyed<KN, KP> & VP);
      return out;
    },
    fromPlain(p) {
      const out = make();
      for (const e of p) {
        const k = key.fromPlain(e[keyName]);
        const a = out.get(k);
        if (a) a.push(val.fromPlain(e));
        else out.set(k, [val.fromPlain(e)]);
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Free-form data: state whose type is declared by its owner elsewhere (a checker's judgement kept in
// the world). Any tree of null, booleans, numbers, strings, bigints, byte arrays, arrays, Maps, Sets
// and plain objects; Maps, Sets and objects keep their insertion order. Plain form: JSON scalars as
// they are, every other value (Infinity included) as a tagged pair [tag, payload].

export type Data = unknown;

function dataClone(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(dataClone);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [dataClone(k), dataClone(x)]));
  if (v instanceof Set) return new Set([...v].map(dataClone));
  if (v instanceof Uint8Array) return new Uint8Array(v);
  const o: Record<string, unknown> = {};
  for (const k of Object.keys(v)) o[k] = dataClone((v as Record<string, unknown>)[k]);
  return o;
}

function dataToPlain(v: unknown): unknown {
  if (v === undefined) return ['u'];
  if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))) return ['n', String(v)]; // JSON has no Infinity (a phase not yet ended)
  if (typeof v === 'bigint') return ['b', hex(v)];
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return ['a', v.map(dataToPlain)];
  if (v instanceof Map) return ['m', [...v].map(([k, x]) => [dataToPlain(k), dataToPlain(x)])];
  if (v instanceof Set) return ['s', [...v].map(dataToPlain)];
  if (v instanceof Uint8Array) return ['y', bytes.toPlain(v)];
  const o: Record<string, unknown> = {};
  for (const k of Object.keys(v)) o[k] = dataToPlain((v as Record<string, unknown>)[k]);
  return ['o', o];
}

function dataFromPlain(p: unknown): unknown {
  if (p === null || typeof p !== 'object') return p;
  const [tag, x] = p as [string, unknown];
  switch (tag) {
    case 'u':
      return undefined;
    case 'n':
      return x === '-0' ? -0 : Number(x);
    case 'b':
      return BigInt(x as string);
    case 'a':
      return (x as unknown[]).map(dataFromPlain);
    case 'm':
      return new Map((x as [unknown, unknown][]).map(([k, v]) => [dataFromPlain(k), dataFromPlain(v)]));
    case 's':
      return new Set((x as unknown[]).map(dataFromPlain));
    case 'y':
      return bytes.fromPlain(x as string);
    case 'o': {
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(x as object)) o[k] = dataFromPlain((x as Record<string, unknown>)[k]);
      return o;
    }
    default:
      throw new Error(`world data: unknown tag ${JSON.stringify(tag)}`);
  }
}

export const data: Shape<Data, unknown> = { clone: dataClone, toPlain: dataToPlain, fromPlain: dataFromPlain };

/**
 * An empty list for objects, created with V8's element kind for objects. An empty `[]` (or `[x]`)
 * starts as a list of small integers and changes kind at its first store of an object; optimized
 * code that stored into lists of both kinds then checks for an integer and deoptimizes (`not a Smi`,
 * `wrong map`) on the first store into a new world's list, once the literal's memory of the change
 * is gone (after a full GC): simulation functions recompiled at the start of a second run in one process.
 */
export function objectList<T>(...items: T[]): T[] {
  const a: T[] = [undefined as T];
  a.pop();
  for (const x of items) a.push(x);
  return a;
}
