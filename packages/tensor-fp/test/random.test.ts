import { random } from '@score-sde/tensor-fp';

describe('Threefry-2x32 known answers (Random123 kat_vectors)', () => {
  test('threefry2x32_20(key = 0, ctr = 0) = (0x6b200159, 0x99ba4efe)', () => {
    expect(random.threefry2x32([0, 0], 0, 0)).toEqual([0x6b200159, 0x99ba4efe]);
  });
  test('threefry2x32_20(key = ~0, ctr = ~0) = (0x1cb996fc, 0xbb002be7)', () => {
    expect(random.threefry2x32([0xffffffff, 0xffffffff], 0xffffffff, 0xffffffff)).toEqual([0x1cb996fc, 0xbb002be7]);
  });
});
