import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { float32Bytes, float32FromBytes, sha256Hex, splitBySpecs, checkTensorLayout, type FileEntry } from '../src/tensor-files';
import type { ParamSpec } from '../src/params';
import { runs } from '../../../tools/test-support/fast-check';

const spec = (name: string, shape: number[]): ParamSpec => ({ name, shape, init: { kind: 'zeros' }, trainable: true });

describe('tensor files', () => {
  test('float32FromBytes ∘ float32Bytes = concatenation (every float32, NaN payloads and −0 included, bit for bit)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 20 }), { maxLength: 5 }), (words) => {
        const parts = words.map((w) => new Float32Array(Uint32Array.from(w).buffer));
        const back = float32FromBytes(float32Bytes(parts));
        const expected = Uint32Array.from(words.flat());
        expect(Array.from(new Uint32Array(back.buffer))).toEqual(Array.from(expected));
      }),
      runs(100),
    );
  });

  test('the bytes are little-endian float32: 1.0 is 00 00 80 3f', () => {
    expect(Array.from(float32Bytes([Float32Array.of(1)]))).toEqual([0, 0, 0x80, 0x3f]);
    expect(sha256Hex(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  test('splitBySpecs cuts consecutive slices sized by the shapes', () => {
    const parts = splitBySpecs(Float32Array.from([1, 2, 3, 4, 5, 6, 7]), [spec('a', [2, 2]), spec('b', [3])]);
    expect(Array.from(parts['a']!)).toEqual([1, 2, 3, 4]);
    expect(Array.from(parts['b']!)).toEqual([5, 6, 7]);
  });

  test('checkTensorLayout: same names, shapes and order, and 4·Σ|shape| bytes; otherwise says what differs', () => {
    const want = [spec('w', [2, 3]), spec('b', [3])];
    const entry = (tensors: FileEntry['tensors'], bytes: number): FileEntry => ({ bytes, sha256: '0'.repeat(64), tensors });
    expect(E.isRight(checkTensorLayout(want, entry([{ name: 'w', shape: [2, 3] }, { name: 'b', shape: [3] }], 36)))).toBe(true);
    const swapped = checkTensorLayout(want, entry([{ name: 'b', shape: [3] }, { name: 'w', shape: [2, 3] }], 36));
    expect(E.isLeft(swapped) && swapped.left).toEqual({ field: 'tensors', message: 'tensor 0 is b [3], the config needs w [2, 3]' });
    const short = checkTensorLayout(want, entry([{ name: 'w', shape: [2, 3] }], 24));
    expect(E.isLeft(short) && short.left.message).toBe('manifest lists 1 tensors, the config has 2');
    const bytes = checkTensorLayout(want, entry([{ name: 'w', shape: [2, 3] }, { name: 'b', shape: [3] }], 40));
    expect(E.isLeft(bytes) && bytes.left).toEqual({ field: 'bytes', message: '40, but its tensors need 36 bytes of float32' });
  });
});
