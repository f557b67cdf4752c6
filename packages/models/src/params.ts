/**
 * Parameters as plain records: a model's parameters are `name → tensor`, described by a list of
 * {@link ParamSpec}s (name, shape, initialiser, trainable) that is pure data. Everything here is a small
 * total function over such records.
 *
 * tfjs demands `tf.Variable`s for `tf.variableGrads`; they are the only mutable thing in the package, and
 * {@link assignParams} is the one place that writes into them.
 *
 * @module params
 */
import { tf, random, type Key } from '@score-sde/tensor-fp';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** How a parameter is initialised. @category model */
export type Init =
  /** U(−bound, bound): PyTorch's default for Linear/Conv weights and biases, bound = 1/√fan_in. */
  | { readonly kind: 'uniform'; readonly bound: number }
  /** N(0, std²): e.g. the fixed random Fourier frequencies W ~ N(0, scale²). */
  | { readonly kind: 'normal'; readonly std: number }
  | { readonly kind: 'ones' }
  | { readonly kind: 'zeros' };

/** One parameter of a model, as data. @category model */
export interface ParamSpec {
  readonly name: string;
  readonly shape: ReadonlyArray<number>;
  readonly init: Init;
  /** Fixed parameters (the Fourier frequencies) are stored and checkpointed but never optimised. */
  readonly trainable: boolean;
}

/** A record of tensors by name (gradients, Adam moments, EMA weights, new parameter values). @category model */
export type TensorRecord = Readonly<Record<string, tf.Tensor>>;

/** A model's parameters: `name → tf.Variable`. @category model */
export type Params = Readonly<Record<string, tf.Variable>>;

// -------------------------------------------------------------------------------------
// specs
// -------------------------------------------------------------------------------------

/** Number of elements of a shape: ∏ shape. @category specs */
export const sizeOfShape = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1);

/** Σ_{trainable specs} ∏ shape: the number of optimised parameters. @category specs */
export const trainableCount = (specs: ReadonlyArray<ParamSpec>): number =>
  specs.filter((s) => s.trainable).reduce((n, s) => n + sizeOfShape(s.shape), 0);

/** Σ_{all specs} ∏ shape: every stored number, fixed ones included. @category specs */
export const totalCount = (specs: ReadonlyArray<ParamSpec>): number => specs.reduce((n, s) => n + sizeOfShape(s.shape), 0);

/** Names of the trainable parameters, in spec order (the order of every trainable-only record on disk). @category specs */
export const trainableNames = (specs: ReadonlyArray<ParamSpec>): ReadonlyArray<string> => specs.filter((s) => s.trainable).map((s) => s.name);

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/** The values of one parameter drawn from its own key (plain float32 data, no tensor). @category constructors */
export const initValues = (spec: ParamSpec, k: Key): Float32Array => {
  const n = sizeOfShape(spec.shape);
  switch (spec.init.kind) {
    case 'uniform': {
      const b = spec.init.bound;
      return Float32Array.from(random.uniformArray(k, n), (u) => b * (2 * u - 1));
    }
    case 'normal': {
      const s = spec.init.std;
      return Float32Array.from(random.normalArray(k, n), (z) => s * z);
    }
    case 'ones':
      return new Float32Array(n).fill(1);
    case 'zeros':
      return new Float32Array(n);
  }
};

/**
 * Variables for every spec; parameter i is drawn from `split(key, n)[i]`, so a parameter's values depend only on
 * (key, its position), never on the backend.
 * @category constructors
 */
export const initParams = (specs: ReadonlyArray<ParamSpec>, key: Key): Params => {
  const keys = random.split(key, specs.length);
  return Object.fromEntries(specs.map((s, i) => [s.name, variableOf(initValues(s, keys[i]!), s)]));
};

/**
 * A variable holding a copy of `values`. The staging tensor is disposed once the variable holds the data
 * (tf.variable shares its buffer and takes its own reference), so no tensor outlives the call but the variable.
 */
const variableOf = (values: Float32Array, s: ParamSpec): tf.Variable => {
  const staging = tf.tensor(values, [...s.shape], 'float32');
  const v = tf.variable(staging, s.trainable);
  staging.dispose();
  return v;
};

/** Variables holding the given values (for loading); values are copied. @category constructors */
export const paramsFromValues = (specs: ReadonlyArray<ParamSpec>, values: Readonly<Record<string, Float32Array>>): Params =>
  Object.fromEntries(specs.map((s) => [s.name, variableOf(values[s.name]!, s)]));

/** A record of tensors holding copies of the given values. @category constructors */
export const recordFromValues = (specs: ReadonlyArray<ParamSpec>, values: Readonly<Record<string, Float32Array>>): TensorRecord =>
  Object.fromEntries(specs.map((s) => [s.name, tf.tensor(values[s.name]!, [...s.shape], 'float32')]));

/** Zeros shaped like the given specs (initial Adam moments). @category constructors */
export const zerosLike = (specs: ReadonlyArray<ParamSpec>): TensorRecord =>
  Object.fromEntries(specs.map((s) => [s.name, tf.zeros([...s.shape], 'float32')]));

/** Independent copies of the named tensors of a record (e.g. the EMA's starting point = the initial weights). @category constructors */
export const cloneRecord = (r: TensorRecord, names: ReadonlyArray<string> = Object.keys(r)): TensorRecord =>
  Object.fromEntries(names.map((n) => [n, tf.clone(r[n]!)]));

// -------------------------------------------------------------------------------------
// combinators
// -------------------------------------------------------------------------------------

/** `override` on top of `base`: the parameters a sampler should use (e.g. EMA weights for trainable names, the rest as is). @category combinators */
export const overlay = (base: TensorRecord, override: TensorRecord): TensorRecord => ({ ...base, ...override });

/**
 * Writes new values into the variables (the one mutation tfjs requires) and disposes the new tensors.
 * Only names present in `values` are written.
 * @category mutation
 */
export const assignParams = (params: Params, values: TensorRecord): void => {
  for (const [name, v] of Object.entries(values)) {
    params[name]!.assign(v);
  }
  tf.dispose(Object.values(values));
};

/** Disposes every tensor of a record. @category destructors */
export const disposeRecord = (r: TensorRecord): void => tf.dispose(Object.values(r));

/** The float32 values of each tensor of a record (copies). @category conversion */
export const recordValues = async (r: TensorRecord, names: ReadonlyArray<string> = Object.keys(r)): Promise<Record<string, Float32Array>> => {
  const out: Record<string, Float32Array> = {};
  for (const n of names) out[n] = Float32Array.from((await r[n]!.data()) as Float32Array);
  return out;
};
