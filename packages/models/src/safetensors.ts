/**
 * The safetensors format (Hugging Face's; what PyTorch users save weights as), float32 tensors only:
 *
 *   bytes 0–7      N, the header's length, unsigned 64-bit little-endian
 *   bytes 8–8+N    the header: UTF-8 JSON, `{ name: { dtype: "F32", shape: [..], data_offsets: [begin, end] }, …,
 *                  "__metadata__": { key: string value } }`, padded with spaces (here to a multiple of 8 bytes)
 *   the rest       the data: each tensor's values row-major, little-endian, at [begin, end) of this region
 *
 * Decoding checks everything before using a byte: the header length against the file, the header with io-ts (each
 * entry's fields, unknown keys refused, errors naming the tensor), the dtype, that end − begin = 4·∏shape, and that
 * the tensors tile the data region exactly (no gap, no overlap, nothing after), as the format requires.
 *
 * @module safetensors
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec, type DecodeError } from '@score-sde/tensor-fp';
import { float32Bytes, float32FromBytes } from './tensor-files';
import { sizeOfShape } from './params';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** One tensor: its name, shape and float32 values (row-major). @category model */
export interface SafeTensor {
  readonly name: string;
  readonly shape: ReadonlyArray<number>;
  readonly data: Float32Array;
}

/** A safetensors file: its tensors (in storage order) and its string metadata. @category model */
export interface SafeTensorsFile {
  readonly tensors: ReadonlyArray<SafeTensor>;
  readonly metadata: Readonly<Record<string, string>>;
}

/** The dtypes of the format (only F32 is read or written here). @category codecs */
export const DTYPES = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64'] as const;

/** One entry of the header. @category codecs */
export const TensorInfo = codec.strict(
  { dtype: codec.oneOf(DTYPES, 'Dtype'), shape: t.array(codec.NonNegativeInt), data_offsets: t.tuple([codec.NonNegativeInt, codec.NonNegativeInt]) },
  'TensorInfo',
);
export type TensorInfo = t.TypeOf<typeof TensorInfo>;

/** The header's `__metadata__`: strings only. @category codecs */
export const Metadata = t.record(t.string, t.string, 'Metadata');

/** The header: tensor entries by name, and the optional `__metadata__`. @category codecs */
export const Header = new t.Type<{ readonly tensors: Readonly<Record<string, TensorInfo>>; readonly metadata: Readonly<Record<string, string>> }, unknown, unknown>(
  'SafetensorsHeader',
  (u): u is { readonly tensors: Readonly<Record<string, TensorInfo>>; readonly metadata: Readonly<Record<string, string>> } => typeof u === 'object' && u !== null,
  (u, c) => {
    if (typeof u !== 'object' || u === null || Array.isArray(u)) return t.failure(u, c, 'the header must be a JSON object');
    const errors: t.ValidationError[] = [];
    const tensors: Record<string, TensorInfo> = {};
    let metadata: Record<string, string> = {};
    for (const [key, value] of Object.entries(u)) {
      const ctx = [...c, { key, type: key === '__metadata__' ? Metadata : TensorInfo, actual: value }];
      if (key === '__metadata__') {
        const m = Metadata.validate(value, ctx);
        if (E.isLeft(m)) errors.push(...m.left);
        else metadata = m.right;
      } else {
        const info = TensorInfo.validate(value, ctx);
        if (E.isLeft(info)) errors.push(...info.left);
        else tensors[key] = info.right;
      }
    }
    return errors.length > 0 ? t.failures(errors) : t.success({ tensors, metadata });
  },
  t.identity,
);

// -------------------------------------------------------------------------------------
// encoding
// -------------------------------------------------------------------------------------

/** The header is padded with spaces to a multiple of this (so the data starts aligned). */
const ALIGN = 8;

/**
 * A file's bytes: the tensors in the order given, their offsets consecutive from 0, the metadata last in the header
 * (compact JSON, padded with spaces to 8 bytes). The same input always gives the same bytes.
 * @category encoding
 */
export const encodeSafeTensors = (f: SafeTensorsFile): Uint8Array => {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const tensor of f.tensors) {
    const bytes = 4 * tensor.data.length;
    header[tensor.name] = { dtype: 'F32', shape: [...tensor.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  header['__metadata__'] = f.metadata;
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Buffer.concat([json, Buffer.alloc((ALIGN - (json.length % ALIGN)) % ALIGN, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(padded.length));
  return Buffer.concat([length, padded, float32Bytes(f.tensors.map((x) => x.data))]);
};

// -------------------------------------------------------------------------------------
// decoding
// -------------------------------------------------------------------------------------

/** Headers larger than this are refused before parsing (safetensors' own limit is 100 MB). @category decoding */
export const MAX_HEADER_BYTES = 100_000_000;

const problem = (what: string, problems: ReadonlyArray<string>): E.Either<DecodeError, never> => E.left({ _tag: 'DecodeError', what, problems });

/**
 * Decodes a file (see the module comment); `what` names it in errors. Tensors come back in storage order, each a copy.
 * @category decoding
 */
export const decodeSafeTensors = (bytes: Uint8Array, what = 'safetensors'): E.Either<DecodeError, SafeTensorsFile> => {
  if (bytes.byteLength < 8) return problem(what, [`(file): ${bytes.byteLength} bytes, too short for the 8-byte header length`]);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, bytes.byteLength - 8))) return problem(what, [`(header): says ${n} bytes, the file has ${bytes.byteLength - 8} after the length (limit ${MAX_HEADER_BYTES})`]);
  const headerText = Buffer.from(bytes.buffer, bytes.byteOffset + 8, Number(n)).toString('utf8');
  const decoded = codec.decodeJson(Header, what)(headerText);
  if (E.isLeft(decoded)) return decoded;
  const base = 8 + Number(n);
  const dataBytes = bytes.byteLength - base;
  const entries = Object.entries(decoded.right.tensors).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const problems: string[] = [];
  let at = 0;
  for (const [name, info] of entries) {
    const [begin, end] = info.data_offsets;
    if (info.dtype !== 'F32') problems.push(`${name}.dtype: ${info.dtype}, only F32 is read (convert the weights with tensor.float())`);
    if (end < begin) problems.push(`${name}.data_offsets: end ${end} before begin ${begin}`);
    else if (end - begin !== 4 * sizeOfShape(info.shape)) problems.push(`${name}.data_offsets: ${end - begin} bytes, shape [${info.shape.join(', ')}] of F32 needs ${4 * sizeOfShape(info.shape)}`);
    if (begin !== at) problems.push(`${name}.data_offsets: begins at ${begin}, the previous tensor ends at ${at} (tensors must tile the data without gaps or overlaps)`);
    at = Math.max(at, end);
  }
  if (at !== dataBytes) problems.push(`(data): the tensors end at byte ${at}, the data region has ${dataBytes}`);
  if (problems.length > 0) return problem(what, problems);
  const tensors = entries.map(([name, info]): SafeTensor => ({
    name,
    shape: info.shape,
    data: float32FromBytes(bytes.subarray(base + info.data_offsets[0], base + info.data_offsets[1])),
  }));
  return E.right({ tensors, metadata: decoded.right.metadata });
};
