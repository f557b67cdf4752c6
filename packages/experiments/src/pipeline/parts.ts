/**
 * The parts of the MNIST evaluation, as one vocabulary: `experiments:mnist-eval --skip`, `experiments:mnist --eval`
 * and the `skipped` field of eval.json all use it.
 *
 * @module pipeline/parts
 */
import type * as t from 'io-ts';
import { codec } from '@score-sde/tensor-fp';

/** The parts of the evaluation, in running order. @category vocabulary */
export const EVAL_PARTS = ['samplers', 'bpd', 'conditional', 'inpainting', 'interpolation'] as const;
export type EvalPart = (typeof EVAL_PARTS)[number];

/** io-ts codec of a part's name. @category vocabulary */
export const EvalPart: t.Type<EvalPart, EvalPart, unknown> = codec.oneOf(EVAL_PARTS, 'EvalPart');
