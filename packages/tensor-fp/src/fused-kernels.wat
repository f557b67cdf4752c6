;; Fused element-wise kernels over tfjs-backend-wasm's heap (see fused-kernels.ts). Every pointer is a byte offset
;; into the imported memory (the backend's own), every array float32; channel counts are multiples of 4 (one v128
;; holds 4 channels of one pixel, NHWC). Pure loops: each output element depends only on its own sample's inputs.
;; At the end, a conv filter gradient (a reduction over the batch: vectorised over its output channels instead).
;; No globals, no data, no memory of its own: every buffer is a tensor the caller allocated, so two instances of this
;; module (the main thread's and the kernel thread's, fused-thread.ts) can run at once on disjoint parts of one call.
(module
  ;; The memory import (placeholder below) is written by the loader with the backend memory's shape (shared for the threaded build).
  (import "env" "memory" __MEMORY__)

  ;; sigma(y) = 1 / (1 + e^-y), written out where it is used (V8 does not inline wasm calls): e^x for 4 lanes as in
  ;; Cephes' expf: x clamped to [-87, 88] (pmin/pmax: one instruction each), n = round(x log2 e) by adding and
  ;; subtracting 1.5*2^23 (whose low mantissa bits then hold n), x = n ln2 + f with |f| <= ln2/2 (ln2 split in two),
  ;; e^f by its degree-7 polynomial (relative error ~1e-7), times 2^n made in the exponent bits.

  ;; Channel statistics of x [B, HW, C]: mc[b, c] = Σ_hw x / HW, vc[b, c] = Σ_hw (x − mc)² / HW (two passes).
  (func (export "gn_stats") (param $x i32) (param $b i32) (param $hw i32) (param $c i32) (param $mc i32) (param $vc i32)
    (local $s i32) (local $p i32) (local $j i32) (local $row i32) (local $m i32) (local $v i32) (local $n v128) (local $d v128)
    (local.set $n (f32x4.splat (f32.convert_i32_u (local.get $hw))))
    (local.set $s (i32.const 0))
    (loop $samples
      (local.set $m (i32.add (local.get $mc) (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2))))
      (local.set $v (i32.add (local.get $vc) (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2))))
      (memory.fill (local.get $m) (i32.const 0) (i32.shl (local.get $c) (i32.const 2)))
      (memory.fill (local.get $v) (i32.const 0) (i32.shl (local.get $c) (i32.const 2)))
      ;; sums
      (local.set $row (local.get $x))
      (local.set $p (i32.const 0))
      (loop $pixels
        (local.set $j (i32.const 0))
        (loop $channels
          (v128.store (i32.add (local.get $m) (local.get $j))
            (f32x4.add (v128.load (i32.add (local.get $m) (local.get $j))) (v128.load (i32.add (local.get $row) (local.get $j)))))
          (br_if $channels (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 16))) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2))))
        (br_if $pixels (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 1))) (local.get $hw))))
      (local.set $j (i32.const 0))
      (loop $means
        (v128.store (i32.add (local.get $m) (local.get $j)) (f32x4.div (v128.load (i32.add (local.get $m) (local.get $j))) (local.get $n)))
        (br_if $means (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 16))) (i32.shl (local.get $c) (i32.const 2)))))
      ;; centred second moments
      (local.set $row (local.get $x))
      (local.set $p (i32.const 0))
      (loop $pixels2
        (local.set $j (i32.const 0))
        (loop $channels2
          (local.set $d (f32x4.sub (v128.load (i32.add (local.get $row) (local.get $j))) (v128.load (i32.add (local.get $m) (local.get $j)))))
          (v128.store (i32.add (local.get $v) (local.get $j))
            (f32x4.add (v128.load (i32.add (local.get $v) (local.get $j))) (f32x4.mul (local.get $d) (local.get $d))))
          (br_if $channels2 (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 16))) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2))))
        (br_if $pixels2 (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 1))) (local.get $hw))))
      (local.set $j (i32.const 0))
      (loop $vars
        (v128.store (i32.add (local.get $v) (local.get $j)) (f32x4.div (v128.load (i32.add (local.get $v) (local.get $j))) (local.get $n)))
        (br_if $vars (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 16))) (i32.shl (local.get $c) (i32.const 2)))))
      (local.set $x (local.get $row))
      (br_if $samples (i32.lt_u (local.tee $s (i32.add (local.get $s) (i32.const 1))) (local.get $b)))))

  ;; y = x·scale[b, c] + shift[b, c]; out = swish ? y·σ(y) : y.
  (func (export "gn_apply") (param $x i32) (param $b i32) (param $hw i32) (param $c i32) (param $scale i32) (param $shift i32) (param $swish i32) (param $out i32)
    (local $s i32) (local $p i32) (local $j i32) (local $row i32) (local $o i32) (local $sc i32) (local $sh i32) (local $y v128)
    (local $g v128) (local $sx v128) (local $sn v128) (local $sf v128) (local $sp v128) (local $st v128)
    (local.set $row (local.get $x))
    (local.set $o (local.get $out))
    (local.set $s (i32.const 0))
    (loop $samples
      (local.set $sc (i32.add (local.get $scale) (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2))))
      (local.set $sh (i32.add (local.get $shift) (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2))))
      (local.set $p (i32.const 0))
      (loop $pixels
        (local.set $j (i32.const 0))
        (loop $channels
          (local.set $y (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $row) (local.get $j))) (v128.load (i32.add (local.get $sc) (local.get $j))))
            (v128.load (i32.add (local.get $sh) (local.get $j)))))
          (if (local.get $swish) (then
            (local.set $sx (f32x4.pmin (f32x4.pmax (f32x4.neg (local.get $y)) (v128.const f32x4 -87 -87 -87 -87)) (v128.const f32x4 88 88 88 88)))
            (local.set $st (f32x4.add (f32x4.mul (local.get $sx) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341)) (v128.const f32x4 12582912 12582912 12582912 12582912))) (local.set $sn (f32x4.sub (local.get $st) (v128.const f32x4 12582912 12582912 12582912 12582912)))
            (local.set $sf (f32x4.sub (f32x4.sub (local.get $sx) (f32x4.mul (local.get $sn) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))) (f32x4.mul (local.get $sn) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
            (local.set $sp (f32x4.add (f32x4.mul (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4) (local.get $sf)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
            (local.set $sp (f32x4.add (f32x4.mul (local.get $sp) (local.get $sf)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
            (local.set $sp (f32x4.add (f32x4.mul (local.get $sp) (local.get $sf)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
            (local.set $sp (f32x4.add (f32x4.mul (local.get $sp) (local.get $sf)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
            (local.set $sp (f32x4.add (f32x4.mul (local.get $sp) (local.get $sf)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
            (local.set $sp (f32x4.add (f32x4.add (f32x4.mul (f32x4.mul (local.get $sp) (local.get $sf)) (local.get $sf)) (local.get $sf)) (v128.const f32x4 1 1 1 1)))
            (local.set $sp (f32x4.mul (local.get $sp) (i32x4.shl (i32x4.add (local.get $st) (v128.const i32x4 -1262485377 -1262485377 -1262485377 -1262485377)) (i32.const 23))))
            (local.set $g (f32x4.div (v128.const f32x4 1 1 1 1) (f32x4.add (v128.const f32x4 1 1 1 1) (local.get $sp))))
            (local.set $y (f32x4.mul (local.get $y) (local.get $g)))))
          (v128.store (i32.add (local.get $o) (local.get $j)) (local.get $y))
          (br_if $channels (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 16))) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $o (i32.add (local.get $o) (i32.shl (local.get $c) (i32.const 2))))
        (br_if $pixels (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 1))) (local.get $hw))))
      (br_if $samples (i32.lt_u (local.tee $s (i32.add (local.get $s) (i32.const 1))) (local.get $b)))))

  ;; The backward pass's first half: with y = x·scale + shift recomputed, dy = dz·(σ + z(1 − σ)) (z = yσ) through the
  ;; swish (dy = dz without it), written to dy; s1[b, c] = Σ_hw dy, s3[b, c] = Σ_hw dy·x.
  (func (export "gn_backward_sums") (param $dz i32) (param $x i32) (param $b i32) (param $hw i32) (param $c i32) (param $scale i32) (param $shift i32)
    (param $swish i32) (param $dy i32) (param $s1 i32) (param $s3 i32)
    (local $s i32) (local $p i32) (local $j i32) (local $a1 i32) (local $a3 i32) (local $sc i32) (local $sh i32)
    (local $xv v128) (local $y v128) (local $g v128) (local $d v128) (local $sx v128) (local $sn v128) (local $sf v128) (local $sp v128) (local $st v128)
    (local.set $s (i32.const 0))
    (loop $samples
      (local.set $a1 (i32.add (local.get $s1) (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2))))
      (local.set $a3 (i32.add (local.get $s3) (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2))))
      (local.set $sc (i32.add (local.get $scale) (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2))))
      (local.set $sh (i32.add (local.get $shift) (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2))))
      (memory.fill (local.get $a1) (i32.const 0) (i32.shl (local.get $c) (i32.const 2)))
      (memory.fill (local.get $a3) (i32.const 0) (i32.shl (local.get $c) (i32.const 2)))
      (local.set $p (i32.const 0))
      (loop $pixels
        (local.set $j (i32.const 0))
        (loop $channels
          (local.set $xv (v128.load (i32.add (local.get $x) (local.get $j))))
          (local.set $d (v128.load (i32.add (local.get $dz) (local.get $j))))
          (if (local.get $swish)
            (then
              (local.set $y (f32x4.add (f32x4.mul (local.get $xv) (v128.load (i32.add (local.get $sc) (local.get $j)))) (v128.load (i32.add (local.get $sh) (local.get $j)))))
              (local.set $sx (f32x4.pmin (f32x4.pmax (f32x4.neg (local.get $y)) (v128.const f32x4 -87 -87 -87 -87)) (v128.const f32x4 88 88 88 88)))
              (local.set $st (f32x4.add (f32x4.mul (local.get $sx) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341)) (v128.const f32x4 12582912 12582912 12582912 12582912))) (local.set $sn (f32x4.sub (local.get $st) (v128.const f32x4 12582912 12582912 12582912 12582912)))
              (local.set $sf (f32x4.sub (f32x4.sub (local.get $sx) (f32x4.mul (local.get $sn) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))) (f32x4.mul (local.get $sn) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
              (local.set $sp (f32x4.add (f32x4.mul (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4) (local.get $sf)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
              (local.set $sp (f32x4.add (f32x4.mul (local.get $sp) (local.get $sf)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
              (local.set $sp (f32x4.add (f32x4.mul (local.get $sp) (local.get $sf)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
              (local.set $sp (f32x4.add (f32x4.mul (local.get $sp) (local.get $sf)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
              (local.set $sp (f32x4.add (f32x4.mul (local.get $sp) (local.get $sf)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
              (local.set $sp (f32x4.add (f32x4.add (f32x4.mul (f32x4.mul (local.get $sp) (local.get $sf)) (local.get $sf)) (local.get $sf)) (v128.const f32x4 1 1 1 1)))
              (local.set $sp (f32x4.mul (local.get $sp) (i32x4.shl (i32x4.add (local.get $st) (v128.const i32x4 -1262485377 -1262485377 -1262485377 -1262485377)) (i32.const 23))))
              (local.set $g (f32x4.div (v128.const f32x4 1 1 1 1) (f32x4.add (v128.const f32x4 1 1 1 1) (local.get $sp))))
              (local.set $d (f32x4.mul (local.get $d)
                (f32x4.add (local.get $g) (f32x4.mul (f32x4.mul (local.get $y) (local.get $g)) (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $g))))))))
          (v128.store (i32.add (local.get $dy) (local.get $j)) (local.get $d))
          (v128.store (i32.add (local.get $a1) (local.get $j)) (f32x4.add (v128.load (i32.add (local.get $a1) (local.get $j))) (local.get $d)))
          (v128.store (i32.add (local.get $a3) (local.get $j))
            (f32x4.add (v128.load (i32.add (local.get $a3) (local.get $j))) (f32x4.mul (local.get $d) (local.get $xv))))
          (br_if $channels (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 16))) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $x (i32.add (local.get $x) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $dz (i32.add (local.get $dz) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $dy (i32.add (local.get $dy) (i32.shl (local.get $c) (i32.const 2))))
        (br_if $pixels (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 1))) (local.get $hw))))
      (br_if $samples (i32.lt_u (local.tee $s (i32.add (local.get $s) (i32.const 1))) (local.get $b)))))

  ;; dx = dy·A[b, c] + x·B[b, c] + C[b, c].
  (func (export "gn_backward_dx") (param $dy i32) (param $x i32) (param $b i32) (param $hw i32) (param $c i32) (param $ca i32) (param $cb i32) (param $cc i32) (param $dx i32)
    (local $s i32) (local $p i32) (local $j i32) (local $a i32) (local $bb i32) (local $k i32)
    (local.set $s (i32.const 0))
    (loop $samples
      (local.set $a (i32.add (local.get $ca) (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2))))
      (local.set $bb (i32.add (local.get $cb) (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2))))
      (local.set $k (i32.add (local.get $cc) (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2))))
      (local.set $p (i32.const 0))
      (loop $pixels
        (local.set $j (i32.const 0))
        (loop $channels
          (v128.store (i32.add (local.get $dx) (local.get $j))
            (f32x4.add
              (f32x4.add
                (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $j))) (v128.load (i32.add (local.get $a) (local.get $j))))
                (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $j))) (v128.load (i32.add (local.get $bb) (local.get $j)))))
              (v128.load (i32.add (local.get $k) (local.get $j)))))
          (br_if $channels (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 16))) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $x (i32.add (local.get $x) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $dy (i32.add (local.get $dy) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $dx (i32.add (local.get $dx) (i32.shl (local.get $c) (i32.const 2))))
        (br_if $pixels (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 1))) (local.get $hw))))
      (br_if $samples (i32.lt_u (local.tee $s (i32.add (local.get $s) (i32.const 1))) (local.get $b)))))

  ;; The per-(sample, channel) coefficients of the group normalisation, from the channel statistics mc, vc [B, C]
  ;; (gn_stats), an optional per-sample channel bias [B, C] (hasBias = 0: none), γ, β [C], G groups, ε:
  ;;   μ_g = mean_{c∈g} (mc + bias),  σ_g² = mean_{c∈g} [vc + (mc + bias − μ_g)²],  r = 1/√(σ_g² + ε),
  ;;   k = (bias − μ_g)·r,  scale = γ·r,  shift = γ·k + β       (outputs r, k, scale, shift [B, C]).
  (func (export "gn_coeffs") (param $mc i32) (param $vc i32) (param $bias i32) (param $hasBias i32) (param $gamma i32) (param $beta i32)
    (param $b i32) (param $c i32) (param $groups i32) (param $eps f32) (param $r i32) (param $k i32) (param $scale i32) (param $shift i32)
    (local $s i32) (local $g i32) (local $j i32) (local $per i32) (local $i i32) (local $mu f32) (local $var f32) (local $d f32) (local $rr f32)
    (local $bi f32) (local $kk f32) (local $gm f32)
    (local.set $per (i32.div_u (local.get $c) (local.get $groups)))
    (local.set $s (i32.const 0))
    (loop $samples
      (local.set $g (i32.const 0))
      (loop $grp
        ;; μ_g
        (local.set $mu (f32.const 0))
        (local.set $j (i32.const 0))
        (loop $m1
          (local.set $i (i32.shl (i32.add (i32.mul (local.get $s) (local.get $c)) (i32.add (i32.mul (local.get $g) (local.get $per)) (local.get $j))) (i32.const 2)))
          (local.set $mu (f32.add (local.get $mu)
            (f32.add (f32.load (i32.add (local.get $mc) (local.get $i))) (if (result f32) (local.get $hasBias) (then (f32.load (i32.add (local.get $bias) (local.get $i)))) (else (f32.const 0))))))
          (br_if $m1 (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $per))))
        (local.set $mu (f32.div (local.get $mu) (f32.convert_i32_u (local.get $per))))
        ;; σ_g²
        (local.set $var (f32.const 0))
        (local.set $j (i32.const 0))
        (loop $v1
          (local.set $i (i32.shl (i32.add (i32.mul (local.get $s) (local.get $c)) (i32.add (i32.mul (local.get $g) (local.get $per)) (local.get $j))) (i32.const 2)))
          (local.set $d (f32.sub
            (f32.add (f32.load (i32.add (local.get $mc) (local.get $i))) (if (result f32) (local.get $hasBias) (then (f32.load (i32.add (local.get $bias) (local.get $i)))) (else (f32.const 0))))
            (local.get $mu)))
          (local.set $var (f32.add (local.get $var) (f32.add (f32.load (i32.add (local.get $vc) (local.get $i))) (f32.mul (local.get $d) (local.get $d)))))
          (br_if $v1 (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $per))))
        (local.set $var (f32.div (local.get $var) (f32.convert_i32_u (local.get $per))))
        (local.set $rr (f32.div (f32.const 1) (f32.sqrt (f32.add (local.get $var) (local.get $eps)))))
        ;; per channel
        (local.set $j (i32.const 0))
        (loop $ch
          (local.set $i (i32.shl (i32.add (i32.mul (local.get $s) (local.get $c)) (i32.add (i32.mul (local.get $g) (local.get $per)) (local.get $j))) (i32.const 2)))
          (local.set $bi (if (result f32) (local.get $hasBias) (then (f32.load (i32.add (local.get $bias) (local.get $i)))) (else (f32.const 0))))
          (local.set $kk (f32.mul (f32.sub (local.get $bi) (local.get $mu)) (local.get $rr)))
          (local.set $gm (f32.load (i32.add (local.get $gamma) (i32.shl (i32.add (i32.mul (local.get $g) (local.get $per)) (local.get $j)) (i32.const 2)))))
          (f32.store (i32.add (local.get $r) (local.get $i)) (local.get $rr))
          (f32.store (i32.add (local.get $k) (local.get $i)) (local.get $kk))
          (f32.store (i32.add (local.get $scale) (local.get $i)) (f32.mul (local.get $gm) (local.get $rr)))
          (f32.store (i32.add (local.get $shift) (local.get $i))
            (f32.add (f32.mul (local.get $gm) (local.get $kk))
              (f32.load (i32.add (local.get $beta) (i32.shl (i32.add (i32.mul (local.get $g) (local.get $per)) (local.get $j)) (i32.const 2))))))
          (br_if $ch (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $per))))
        (br_if $grp (i32.lt_u (local.tee $g (i32.add (local.get $g) (i32.const 1))) (local.get $groups))))
      (br_if $samples (i32.lt_u (local.tee $s (i32.add (local.get $s) (i32.const 1))) (local.get $b)))))

  ;; The backward pass's coefficients from the sums S1 = Σ_hw dy, S3 = Σ_hw dy·x [B, C] (gn_backward_sums), r, k, mc
  ;; [B, C], γ [C], G groups, n = HW:
  ;;   s2 = r·S3 + k·S1 (= Σ_hw dy·x̂),  m1 = mean_g(γ S1)/n,  m2 = mean_g(γ s2)/n,
  ;;   A = rγ,  B = −r² m2,  C = −r(k m2 + m1)          (dx = dy·A + x·B + C)
  ;;   dbias = A·S1 + B·n·mc + n·C                       (= Σ_hw dx)
  ;; outputs s2, A, B, C, dbias [B, C].
  (func (export "gn_backward_coeffs") (param $s1 i32) (param $s3 i32) (param $r i32) (param $k i32) (param $mc i32) (param $gamma i32)
    (param $b i32) (param $c i32) (param $groups i32) (param $n f32) (param $s2 i32) (param $ca i32) (param $cb i32) (param $cc i32) (param $dbias i32)
    (local $s i32) (local $g i32) (local $j i32) (local $per i32) (local $i i32) (local $gi i32) (local $m1 f32) (local $m2 f32) (local $v f32)
    (local $rr f32) (local $kk f32) (local $a f32) (local $bb f32) (local $cv f32)
    (local.set $per (i32.div_u (local.get $c) (local.get $groups)))
    (local.set $s (i32.const 0))
    (loop $samples
      (local.set $g (i32.const 0))
      (loop $grp
        (local.set $m1 (f32.const 0))
        (local.set $m2 (f32.const 0))
        (local.set $j (i32.const 0))
        (loop $sums
          (local.set $gi (i32.shl (i32.add (i32.mul (local.get $g) (local.get $per)) (local.get $j)) (i32.const 2)))
          (local.set $i (i32.add (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2)) (local.get $gi)))
          (local.set $v (f32.add (f32.mul (f32.load (i32.add (local.get $r) (local.get $i))) (f32.load (i32.add (local.get $s3) (local.get $i))))
            (f32.mul (f32.load (i32.add (local.get $k) (local.get $i))) (f32.load (i32.add (local.get $s1) (local.get $i))))))
          (f32.store (i32.add (local.get $s2) (local.get $i)) (local.get $v))
          (local.set $m1 (f32.add (local.get $m1) (f32.mul (f32.load (i32.add (local.get $gamma) (local.get $gi))) (f32.load (i32.add (local.get $s1) (local.get $i))))))
          (local.set $m2 (f32.add (local.get $m2) (f32.mul (f32.load (i32.add (local.get $gamma) (local.get $gi))) (local.get $v))))
          (br_if $sums (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $per))))
        (local.set $m1 (f32.div (f32.div (local.get $m1) (f32.convert_i32_u (local.get $per))) (local.get $n)))
        (local.set $m2 (f32.div (f32.div (local.get $m2) (f32.convert_i32_u (local.get $per))) (local.get $n)))
        (local.set $j (i32.const 0))
        (loop $ch
          (local.set $gi (i32.shl (i32.add (i32.mul (local.get $g) (local.get $per)) (local.get $j)) (i32.const 2)))
          (local.set $i (i32.add (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2)) (local.get $gi)))
          (local.set $rr (f32.load (i32.add (local.get $r) (local.get $i))))
          (local.set $kk (f32.load (i32.add (local.get $k) (local.get $i))))
          (local.set $a (f32.mul (local.get $rr) (f32.load (i32.add (local.get $gamma) (local.get $gi)))))
          (local.set $bb (f32.neg (f32.mul (f32.mul (local.get $rr) (local.get $rr)) (local.get $m2))))
          (local.set $cv (f32.neg (f32.mul (local.get $rr) (f32.add (f32.mul (local.get $kk) (local.get $m2)) (local.get $m1)))))
          (f32.store (i32.add (local.get $ca) (local.get $i)) (local.get $a))
          (f32.store (i32.add (local.get $cb) (local.get $i)) (local.get $bb))
          (f32.store (i32.add (local.get $cc) (local.get $i)) (local.get $cv))
          (f32.store (i32.add (local.get $dbias) (local.get $i))
            (f32.add (f32.add (f32.mul (local.get $a) (f32.load (i32.add (local.get $s1) (local.get $i))))
                (f32.mul (local.get $bb) (f32.mul (f32.load (i32.add (local.get $mc) (local.get $i))) (local.get $n))))
              (f32.mul (local.get $cv) (local.get $n))))
          (br_if $ch (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $per))))
        (br_if $grp (i32.lt_u (local.tee $g (i32.add (local.get $g) (i32.const 1))) (local.get $groups))))
      (br_if $samples (i32.lt_u (local.tee $s (i32.add (local.get $s) (i32.const 1))) (local.get $b)))))

  ;; Σ g² of n floats (4 float32 partial sums, then their sum; a scalar tail).
  (func (export "sum_squares") (param $g i32) (param $n i32) (result f32)
    (local $i i32) (local $acc v128) (local $v v128) (local $end i32) (local $t f32)
    (local.set $end (i32.and (local.get $n) (i32.const -4)))
    (local.set $i (i32.const 0))
    (block $done (loop $vec
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $v (v128.load (i32.add (local.get $g) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (local.get $v))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $vec)))
    (local.set $t (f32.add (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
      (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
    (block $tdone (loop $tail
      (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $t (f32.add (local.get $t) (f32.mul (f32.load (i32.add (local.get $g) (i32.shl (local.get $i) (i32.const 2))))
        (f32.load (i32.add (local.get $g) (i32.shl (local.get $i) (i32.const 2)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $tail)))
    (local.get $t))

  ;; One Adam step and the EMA update on n floats, element by element, with the float32 operations of optim.ts/ema.ts:
  ;;   g ← g·clip,  m ← m·β₁ + g·(1 − β₁),  v ← v·β₂ + g²·(1 − β₂),  θ ← θ − (m / (√(v / bc₂) + ε))·(lr / bc₁),
  ;;   e ← e·d + θ·(1 − d)          (clip = 1 and hasEma = 0 skip those parts; the scalars come as float32).
  (func $adam_one (param $g f32) (param $p i32) (param $m i32) (param $v i32) (param $e i32) (param $o i32)
    (param $clip f32) (param $useClip i32) (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32) (param $bc2 f32) (param $eps f32)
    (param $step f32) (param $d f32) (param $cd f32) (param $hasEma i32) (param $op i32) (param $om i32) (param $ov i32) (param $oe i32)
    (local $mm f32) (local $vv f32) (local $th f32)
    (if (local.get $useClip) (then (local.set $g (f32.mul (local.get $g) (local.get $clip)))))
    (local.set $mm (f32.add (f32.mul (f32.load (i32.add (local.get $m) (local.get $o))) (local.get $b1)) (f32.mul (local.get $g) (local.get $c1))))
    (local.set $vv (f32.add (f32.mul (f32.load (i32.add (local.get $v) (local.get $o))) (local.get $b2)) (f32.mul (f32.mul (local.get $g) (local.get $g)) (local.get $c2))))
    (local.set $th (f32.sub (f32.load (i32.add (local.get $p) (local.get $o)))
      (f32.mul (f32.div (local.get $mm) (f32.add (f32.sqrt (f32.div (local.get $vv) (local.get $bc2))) (local.get $eps))) (local.get $step))))
    (f32.store (i32.add (local.get $om) (local.get $o)) (local.get $mm))
    (f32.store (i32.add (local.get $ov) (local.get $o)) (local.get $vv))
    (f32.store (i32.add (local.get $op) (local.get $o)) (local.get $th))
    (if (local.get $hasEma) (then
      (f32.store (i32.add (local.get $oe) (local.get $o))
        (f32.add (f32.mul (f32.load (i32.add (local.get $e) (local.get $o))) (local.get $d)) (f32.mul (local.get $th) (local.get $cd)))))))

  (func (export "adam_ema") (param $g i32) (param $p i32) (param $m i32) (param $v i32) (param $e i32) (param $n i32)
    (param $clip f32) (param $useClip i32) (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32) (param $bc2 f32) (param $eps f32)
    (param $step f32) (param $d f32) (param $cd f32) (param $hasEma i32) (param $op i32) (param $om i32) (param $ov i32) (param $oe i32)
    (local $i i32) (local $o i32) (local $end i32) (local $gv v128) (local $mv v128) (local $vv v128) (local $th v128)
    (local.set $end (i32.and (local.get $n) (i32.const -4)))
    (local.set $i (i32.const 0))
    (block $done (loop $vec
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (local.set $gv (v128.load (i32.add (local.get $g) (local.get $o))))
      (if (local.get $useClip) (then (local.set $gv (f32x4.mul (local.get $gv) (f32x4.splat (local.get $clip))))))
      (local.set $mv (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $o))) (f32x4.splat (local.get $b1))) (f32x4.mul (local.get $gv) (f32x4.splat (local.get $c1)))))
      (local.set $vv (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $o))) (f32x4.splat (local.get $b2)))
        (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (f32x4.splat (local.get $c2)))))
      (local.set $th (f32x4.sub (v128.load (i32.add (local.get $p) (local.get $o)))
        (f32x4.mul (f32x4.div (local.get $mv) (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vv) (f32x4.splat (local.get $bc2)))) (f32x4.splat (local.get $eps))))
          (f32x4.splat (local.get $step)))))
      (v128.store (i32.add (local.get $om) (local.get $o)) (local.get $mv))
      (v128.store (i32.add (local.get $ov) (local.get $o)) (local.get $vv))
      (v128.store (i32.add (local.get $op) (local.get $o)) (local.get $th))
      (if (local.get $hasEma) (then
        (v128.store (i32.add (local.get $oe) (local.get $o))
          (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $e) (local.get $o))) (f32x4.splat (local.get $d))) (f32x4.mul (local.get $th) (f32x4.splat (local.get $cd)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $vec)))
    (block $tdone (loop $tail
      (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (call $adam_one (f32.load (i32.add (local.get $g) (local.get $o))) (local.get $p) (local.get $m) (local.get $v) (local.get $e) (local.get $o)
        (local.get $clip) (local.get $useClip) (local.get $b1) (local.get $c1) (local.get $b2) (local.get $c2) (local.get $bc2) (local.get $eps)
        (local.get $step) (local.get $d) (local.get $cd) (local.get $hasEma) (local.get $op) (local.get $om) (local.get $ov) (local.get $oe))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $tail))))

  ;; Box–Muller of two counters' Threefry words (the low two i32 lanes of w0, w1) in float64x2, the same operations in
  ;; the same order as boxMuller of random.ts (see there), giving [z0, z1] of counter a and of counter b as float32.
  (func $box_muller2 (param $w0 v128) (param $w1 v128) (result v128)
    (local $k v128) (local $d v128) (local $e v128) (local $m v128) (local $big v128) (local $f v128) (local $s v128) (local $z v128)
    (local $w v128) (local $r v128) (local $hfsq v128) (local $ln v128) (local $radius v128) (local $q v128) (local $low v128) (local $swap v128)
    (local $phi v128) (local $p2 v128) (local $sinp v128) (local $cosp v128) (local $sr v128) (local $cr v128) (local $a v128) (local $b v128) (local $mask v128)
    ;; ln u1, u1 = k·2^-25 with k = 2⌊w0/2^8⌋ + 1
    (local.set $k (v128.or (i32x4.shl (i32x4.shr_u (local.get $w0) (i32.const 8)) (i32.const 1)) (v128.const i32x4 1 1 1 1)))
    (local.set $d (f64x2.convert_low_i32x4_u (local.get $k)))
    (local.set $e (f64x2.sub
      (f64x2.convert_low_i32x4_s (i8x16.shuffle 4 5 6 7 12 13 14 15 0 1 2 3 0 1 2 3 (i32x4.shr_u (local.get $d) (i32.const 20)) (local.get $d)))
      (v128.const f64x2 1023 1023)))
    (local.set $m (v128.or (v128.and (local.get $d) (v128.const i64x2 0x000fffffffffffff 0x000fffffffffffff)) (v128.const i64x2 0x3ff0000000000000 0x3ff0000000000000)))
    (local.set $big (f64x2.gt (local.get $m) (v128.const f64x2 1.4142135623730951 1.4142135623730951)))
    (local.set $m (v128.bitselect (f64x2.mul (local.get $m) (v128.const f64x2 0.5 0.5)) (local.get $m) (local.get $big)))
    (local.set $e (f64x2.sub (f64x2.add (local.get $e) (v128.and (local.get $big) (v128.const f64x2 1 1))) (v128.const f64x2 25 25)))
    (local.set $f (f64x2.sub (local.get $m) (v128.const f64x2 1 1)))
    (local.set $s (f64x2.div (local.get $f) (f64x2.add (v128.const f64x2 2 2) (local.get $f))))
    (local.set $z (f64x2.mul (local.get $s) (local.get $s)))
    (local.set $w (f64x2.mul (local.get $z) (local.get $z)))
    (local.set $r (f64x2.add
      (f64x2.mul (local.get $z) (f64x2.add (v128.const f64x2 0.6666666666666735 0.6666666666666735) (f64x2.mul (local.get $w)
        (f64x2.add (v128.const f64x2 0.2857142874366239 0.2857142874366239) (f64x2.mul (local.get $w)
          (f64x2.add (v128.const f64x2 0.1818357216161805 0.1818357216161805) (f64x2.mul (local.get $w) (v128.const f64x2 0.14798198605116586 0.14798198605116586))))))))
      (f64x2.mul (local.get $w) (f64x2.add (v128.const f64x2 0.3999999999940942 0.3999999999940942) (f64x2.mul (local.get $w)
        (f64x2.add (v128.const f64x2 0.22222198432149784 0.22222198432149784) (f64x2.mul (local.get $w) (v128.const f64x2 0.15313837699209373 0.15313837699209373))))))))
    (local.set $hfsq (f64x2.mul (f64x2.mul (v128.const f64x2 0.5 0.5) (local.get $f)) (local.get $f)))
    (local.set $ln (f64x2.sub
      (f64x2.mul (local.get $e) (v128.const f64x2 0.6931471803691238 0.6931471803691238))
      (f64x2.sub
        (f64x2.sub (local.get $hfsq) (f64x2.add (f64x2.mul (local.get $s) (f64x2.add (local.get $hfsq) (local.get $r)))
          (f64x2.mul (local.get $e) (v128.const f64x2 1.9082149292705877e-10 1.9082149292705877e-10))))
        (local.get $f))))
    (local.set $radius (f64x2.sqrt (f64x2.mul (v128.const f64x2 -2 -2) (local.get $ln))))
    ;; sin, cos of 2π·u2: quadrant q, remainder ρ = min(r, 1 − r), φ = ρ·π/2
    (local.set $k (v128.or (i32x4.shl (i32x4.shr_u (local.get $w1) (i32.const 8)) (i32.const 1)) (v128.const i32x4 1 1 1 1)))
    (local.set $q (i32x4.shr_u (local.get $k) (i32.const 23)))
    (local.set $low (v128.and (local.get $k) (v128.const i32x4 0x7fffff 0x7fffff 0x7fffff 0x7fffff)))
    (local.set $swap (i32x4.gt_u (local.get $low) (v128.const i32x4 0x400000 0x400000 0x400000 0x400000)))
    (local.set $phi (f64x2.mul
      (f64x2.convert_low_i32x4_u (v128.bitselect (i32x4.sub (v128.const i32x4 0x800000 0x800000 0x800000 0x800000) (local.get $low)) (local.get $low) (local.get $swap)))
      (v128.const f64x2 1.8725351414619643e-7 1.8725351414619643e-7)))
    (local.set $p2 (f64x2.mul (local.get $phi) (local.get $phi)))
    (local.set $sinp (f64x2.add (local.get $phi) (f64x2.mul (f64x2.mul (local.get $phi) (local.get $p2))
      (f64x2.add (v128.const f64x2 -0.16666666666666632 -0.16666666666666632) (f64x2.mul (local.get $p2)
        (f64x2.add (v128.const f64x2 0.008333333333322489 0.008333333333322489) (f64x2.mul (local.get $p2)
          (f64x2.add (v128.const f64x2 -0.00019841269829857949 -0.00019841269829857949) (f64x2.mul (local.get $p2)
            (f64x2.add (v128.const f64x2 0.0000027557313707070068 0.0000027557313707070068) (f64x2.mul (local.get $p2)
              (f64x2.add (v128.const f64x2 -2.5050760253406863e-8 -2.5050760253406863e-8) (f64x2.mul (local.get $p2) (v128.const f64x2 1.58969099521155e-10 1.58969099521155e-10))))))))))))))
    (local.set $cosp (f64x2.add (f64x2.sub (v128.const f64x2 1 1) (f64x2.mul (v128.const f64x2 0.5 0.5) (local.get $p2)))
      (f64x2.mul (f64x2.mul (local.get $p2) (local.get $p2))
        (f64x2.add (v128.const f64x2 0.041666666666666602 0.041666666666666602) (f64x2.mul (local.get $p2)
          (f64x2.add (v128.const f64x2 -0.001388888888887411 -0.001388888888887411) (f64x2.mul (local.get $p2)
            (f64x2.add (v128.const f64x2 0.00002480158728947673 0.00002480158728947673) (f64x2.mul (local.get $p2)
              (f64x2.add (v128.const f64x2 -2.7557314351390663e-7 -2.7557314351390663e-7) (f64x2.mul (local.get $p2)
                (f64x2.add (v128.const f64x2 2.087572321298175e-9 2.087572321298175e-9) (f64x2.mul (local.get $p2) (v128.const f64x2 -1.1359647557788195e-11 -1.1359647557788195e-11))))))))))))))
    (local.set $mask (i64x2.extend_low_i32x4_s (local.get $swap)))
    (local.set $sr (v128.bitselect (local.get $cosp) (local.get $sinp) (local.get $mask)))
    (local.set $cr (v128.bitselect (local.get $sinp) (local.get $cosp) (local.get $mask)))
    (local.set $mask (i64x2.extend_low_i32x4_s (i32x4.eq (v128.and (local.get $q) (v128.const i32x4 1 1 1 1)) (v128.const i32x4 1 1 1 1))))
    (local.set $a (v128.bitselect (local.get $cr) (local.get $sr) (local.get $mask)))
    (local.set $b (v128.bitselect (local.get $sr) (local.get $cr) (local.get $mask)))
    (local.set $mask (i64x2.extend_low_i32x4_s (i32x4.eq (v128.and (local.get $q) (v128.const i32x4 2 2 2 2)) (v128.const i32x4 2 2 2 2))))
    (local.set $a (v128.bitselect (f64x2.neg (local.get $a)) (local.get $a) (local.get $mask)))
    (local.set $mask (i64x2.extend_low_i32x4_s (i32x4.eq (v128.and (v128.xor (local.get $q) (i32x4.shr_u (local.get $q) (i32.const 1))) (v128.const i32x4 1 1 1 1)) (v128.const i32x4 1 1 1 1))))
    (local.set $b (v128.bitselect (f64x2.neg (local.get $b)) (local.get $b) (local.get $mask)))
    ;; [radius·cos, radius·sin] per counter, as float32, interleaved
    (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
      (f32x4.demote_f64x2_zero (f64x2.mul (local.get $radius) (local.get $b)))
      (f32x4.demote_f64x2_zero (f64x2.mul (local.get $radius) (local.get $a)))))

  ;; Row b of out [B, n] (float32, n a multiple of 8) gets the n standard normals of key (keys[2b], keys[2b + 1]):
  ;; normals 2j, 2j + 1 from the words Threefry-2x32-20(key, (1, j)) (random.ts's normalsInto), 4 counters at a time.
  (func (export "normals_rows") (param $keys i32) (param $b i32) (param $n i32) (param $out i32)
    (local $row i32) (local $j i32) (local $half i32) (local $k0 i32) (local $k1 i32) (local $k2 i32)
    (local $x0 v128) (local $x1 v128) (local $K0 v128) (local $K1 v128) (local $K2 v128)
    (local.set $half (i32.shr_u (local.get $n) (i32.const 1)))
    (local.set $row (i32.const 0))
    (loop $rows
      (local.set $k0 (i32.load (i32.add (local.get $keys) (i32.shl (local.get $row) (i32.const 3)))))
      (local.set $k1 (i32.load (i32.add (local.get $keys) (i32.add (i32.shl (local.get $row) (i32.const 3)) (i32.const 4)))))
      (local.set $k2 (i32.xor (i32.xor (i32.const 0x1bd11bda) (local.get $k0)) (local.get $k1)))
      (local.set $K0 (i32x4.splat (local.get $k0)))
      (local.set $K1 (i32x4.splat (local.get $k1)))
      (local.set $K2 (i32x4.splat (local.get $k2)))
      (local.set $j (i32.const 0))
      (loop $counters
        (local.set $x0 (i32x4.splat (i32.add (i32.const 1) (local.get $k0))))
        (local.set $x1 (i32x4.add (i32x4.add (i32x4.splat (local.get $j)) (v128.const i32x4 0 1 2 3)) (local.get $K1)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 13)) (i32x4.shr_u (local.get $x1) (i32.const 19))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 15)) (i32x4.shr_u (local.get $x1) (i32.const 17))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 26)) (i32x4.shr_u (local.get $x1) (i32.const 6))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 6)) (i32x4.shr_u (local.get $x1) (i32.const 26))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $K1))) (local.set $x1 (i32x4.add (i32x4.add (local.get $x1) (local.get $K2)) (v128.const i32x4 1 1 1 1)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 17)) (i32x4.shr_u (local.get $x1) (i32.const 15))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 29)) (i32x4.shr_u (local.get $x1) (i32.const 3))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 16)) (i32x4.shr_u (local.get $x1) (i32.const 16))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 24)) (i32x4.shr_u (local.get $x1) (i32.const 8))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $K2))) (local.set $x1 (i32x4.add (i32x4.add (local.get $x1) (local.get $K0)) (v128.const i32x4 2 2 2 2)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 13)) (i32x4.shr_u (local.get $x1) (i32.const 19))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 15)) (i32x4.shr_u (local.get $x1) (i32.const 17))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 26)) (i32x4.shr_u (local.get $x1) (i32.const 6))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 6)) (i32x4.shr_u (local.get $x1) (i32.const 26))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $K0))) (local.set $x1 (i32x4.add (i32x4.add (local.get $x1) (local.get $K1)) (v128.const i32x4 3 3 3 3)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 17)) (i32x4.shr_u (local.get $x1) (i32.const 15))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 29)) (i32x4.shr_u (local.get $x1) (i32.const 3))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 16)) (i32x4.shr_u (local.get $x1) (i32.const 16))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 24)) (i32x4.shr_u (local.get $x1) (i32.const 8))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $K1))) (local.set $x1 (i32x4.add (i32x4.add (local.get $x1) (local.get $K2)) (v128.const i32x4 4 4 4 4)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 13)) (i32x4.shr_u (local.get $x1) (i32.const 19))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 15)) (i32x4.shr_u (local.get $x1) (i32.const 17))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 26)) (i32x4.shr_u (local.get $x1) (i32.const 6))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $x1))) (local.set $x1 (v128.xor (v128.or (i32x4.shl (local.get $x1) (i32.const 6)) (i32x4.shr_u (local.get $x1) (i32.const 26))) (local.get $x0)))
        (local.set $x0 (i32x4.add (local.get $x0) (local.get $K2))) (local.set $x1 (i32x4.add (i32x4.add (local.get $x1) (local.get $K0)) (v128.const i32x4 5 5 5 5)))
        (v128.store (local.get $out) (call $box_muller2 (local.get $x0) (local.get $x1)))
        (v128.store offset=16 (local.get $out) (call $box_muller2
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x0) (local.get $x0))
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x1) (local.get $x1))))
        (local.set $out (i32.add (local.get $out) (i32.const 32)))
        (br_if $counters (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 4))) (local.get $half))))
      (br_if $rows (i32.lt_u (local.tee $row (i32.add (local.get $row) (i32.const 1))) (local.get $b)))))

  ;; ---- samplers' element-wise updates (fused-kernels.ts: ScoreSdeNormals with x, ScoreSdeEulerUpdate) ----
  ;; out[i] = x[i] + z[i]*c for i < n (n a multiple of 4; out may be z): the product and the sum each rounded to float32,
  ;; the bits of tf.add(x, tf.mul(z, c)).
  (func (export "scale_add") (param $x i32) (param $z i32) (param $c f32) (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $cv v128)
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $elems
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (v128.store (i32.add (local.get $out) (local.get $i))
        (f32x4.add (v128.load (i32.add (local.get $x) (local.get $i)))
          (f32x4.mul (v128.load (i32.add (local.get $z) (local.get $i))) (local.get $cv))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $elems))))

  ;; out[i] = x[i] + ((x[i]*a - y[i]*b)*h) for i < n (n a multiple of 4), each operation rounded to float32: the bits of
  ;; tf.add(x, tf.mul(tf.sub(tf.mul(x, a), tf.mul(y, b)), h)), an Euler step of dx/dt = a x - b y.
  (func (export "euler_update") (param $x i32) (param $y i32) (param $a f32) (param $b f32) (param $h f32) (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $av v128) (local $bv v128) (local $hv v128) (local $xv v128)
    (local.set $av (f32x4.splat (local.get $a)))
    (local.set $bv (f32x4.splat (local.get $b)))
    (local.set $hv (f32x4.splat (local.get $h)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $elems
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
      (v128.store (i32.add (local.get $out) (local.get $i))
        (f32x4.add (local.get $xv)
          (f32x4.mul (f32x4.sub (f32x4.mul (local.get $xv) (local.get $av)) (f32x4.mul (v128.load (i32.add (local.get $y) (local.get $i))) (local.get $bv)))
            (local.get $hv))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $elems))))

  ;; out[i] = m[i] + z[i]*c with m[i] = x[i] + ((x[i]*a - y[i]*b)*h) (n a multiple of 4), each operation rounded to
  ;; float32: the bits of tf.add(eulerUpdate(x, y, a, b, h), tf.mul(z, c)), an Euler-Maruyama step of dx = (a x - b y) dt + dW.
  (func (export "euler_update_noise") (param $x i32) (param $y i32) (param $a f32) (param $b f32) (param $h f32) (param $z i32) (param $c f32)
    (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $av v128) (local $bv v128) (local $hv v128) (local $cv v128) (local $xv v128)
    (local.set $av (f32x4.splat (local.get $a)))
    (local.set $bv (f32x4.splat (local.get $b)))
    (local.set $hv (f32x4.splat (local.get $h)))
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $elems
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
      (v128.store (i32.add (local.get $out) (local.get $i))
        (f32x4.add
          (f32x4.add (local.get $xv)
            (f32x4.mul (f32x4.sub (f32x4.mul (local.get $xv) (local.get $av)) (f32x4.mul (v128.load (i32.add (local.get $y) (local.get $i))) (local.get $bv)))
              (local.get $hv)))
          (f32x4.mul (v128.load (i32.add (local.get $z) (local.get $i))) (local.get $cv))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $elems))))

  ;; The second stage of an adaptive Heun-Euler pair and its scaled error, in one pass over n floats (n a multiple of 4),
  ;; every operation rounded to float32 in the order of adaptive-sde.ts's tf ops, f(x, y) = x*a - y*b:
  ;;   m2 = x - ((f(x, y1; a1, b1) + f(x1, y2; a2, b2)) * h),   x2 = m2 + z*c (x2 = m2 when z = 0),
  ;;   q = (x1 - x2) / (atol + max(|x|, |x2|)*rtol),
  ;; storing x2 (and m2 when z is given) and returning sum q^2 added element by element in index order (tfjs-wasm's Mean
  ;; sums so, before its division by n).
  (func (export "heun_error") (param $x i32) (param $y1 i32) (param $x1 i32) (param $y2 i32) (param $z i32)
    (param $a1 f32) (param $b1 f32) (param $a2 f32) (param $b2 f32) (param $h f32) (param $c f32) (param $rtol f32) (param $atol f32)
    (param $n i32) (param $ox2 i32) (param $om2 i32) (result f32)
    (local $i i32) (local $end i32) (local $acc f32) (local $xv v128) (local $x1v v128) (local $m v128) (local $x2 v128) (local $q v128)
    (local $a1v v128) (local $b1v v128) (local $a2v v128) (local $b2v v128) (local $hv v128) (local $cv v128) (local $rv v128) (local $tv v128)
    (local.set $a1v (f32x4.splat (local.get $a1)))
    (local.set $b1v (f32x4.splat (local.get $b1)))
    (local.set $a2v (f32x4.splat (local.get $a2)))
    (local.set $b2v (f32x4.splat (local.get $b2)))
    (local.set $hv (f32x4.splat (local.get $h)))
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $rv (f32x4.splat (local.get $rtol)))
    (local.set $tv (f32x4.splat (local.get $atol)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $elems
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
      (local.set $x1v (v128.load (i32.add (local.get $x1) (local.get $i))))
      (local.set $m (f32x4.sub (local.get $xv)
        (f32x4.mul
          (f32x4.add
            (f32x4.sub (f32x4.mul (local.get $xv) (local.get $a1v)) (f32x4.mul (v128.load (i32.add (local.get $y1) (local.get $i))) (local.get $b1v)))
            (f32x4.sub (f32x4.mul (local.get $x1v) (local.get $a2v)) (f32x4.mul (v128.load (i32.add (local.get $y2) (local.get $i))) (local.get $b2v))))
          (local.get $hv))))
      (if (local.get $z)
        (then
          (v128.store (i32.add (local.get $om2) (local.get $i)) (local.get $m))
          (local.set $x2 (f32x4.add (local.get $m) (f32x4.mul (v128.load (i32.add (local.get $z) (local.get $i))) (local.get $cv)))))
        (else (local.set $x2 (local.get $m))))
      (v128.store (i32.add (local.get $ox2) (local.get $i)) (local.get $x2))
      (local.set $q (f32x4.div (f32x4.sub (local.get $x1v) (local.get $x2))
        (f32x4.add (local.get $tv) (f32x4.mul (f32x4.max (f32x4.abs (local.get $xv)) (f32x4.abs (local.get $x2))) (local.get $rv)))))
      (local.set $q (f32x4.mul (local.get $q) (local.get $q)))
      (local.set $acc (f32.add (f32.add (f32.add (f32.add (local.get $acc)
        (f32x4.extract_lane 0 (local.get $q))) (f32x4.extract_lane 1 (local.get $q))) (f32x4.extract_lane 2 (local.get $q))) (f32x4.extract_lane 3 (local.get $q))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $elems)))
    (local.get $acc))

  ;; A Langevin corrector step with the signal-to-noise rule over B rows of n floats (n a multiple of 4), every operation
  ;; rounded to float32 in the order of correctors.ts's tf ops: row norms |z_b| = sqrt(sum z^2), |g_b| = sqrt(sum g^2) (squares
  ;; added in index order, as tfjs-wasm's Sum does), then the step size per row (perSample = 1) or for the batch (0: the
  ;; means of the norms, again summed in order, over B)
  ;;   e = ((|z| / |g|) * snr)^2 * twoAlpha,   xm = x + e*g,   out = xm + sqrt(e*2)*z.
  ;; norms: 2B floats of scratch for the row norms.
  (func (export "langevin_update") (param $x i32) (param $g i32) (param $z i32) (param $b i32) (param $n i32) (param $perSample i32)
    (param $snr f32) (param $twoAlpha f32) (param $norms i32) (param $out i32) (param $om i32)
    (local $row i32) (local $i i32) (local $end i32) (local $at i32) (local $sz f32) (local $sg f32) (local $qz v128) (local $qg v128)
    (local $e f32) (local $d f32) (local $ev v128) (local $dv v128) (local $xm v128) (local $mz f32) (local $mg f32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    ;; the row norms
    (local.set $row (i32.const 0))
    (block $rowsDone (loop $rows
      (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $b)))
      (local.set $at (i32.mul (local.get $row) (local.get $end)))
      (local.set $sz (f32.const 0)) (local.set $sg (f32.const 0))
      (local.set $i (i32.const 0))
      (block $done (loop $elems
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $qz (v128.load (i32.add (local.get $z) (i32.add (local.get $at) (local.get $i)))))
        (local.set $qz (f32x4.mul (local.get $qz) (local.get $qz)))
        (local.set $qg (v128.load (i32.add (local.get $g) (i32.add (local.get $at) (local.get $i)))))
        (local.set $qg (f32x4.mul (local.get $qg) (local.get $qg)))
        (local.set $sz (f32.add (f32.add (f32.add (f32.add (local.get $sz)
          (f32x4.extract_lane 0 (local.get $qz))) (f32x4.extract_lane 1 (local.get $qz))) (f32x4.extract_lane 2 (local.get $qz))) (f32x4.extract_lane 3 (local.get $qz))))
        (local.set $sg (f32.add (f32.add (f32.add (f32.add (local.get $sg)
          (f32x4.extract_lane 0 (local.get $qg))) (f32x4.extract_lane 1 (local.get $qg))) (f32x4.extract_lane 2 (local.get $qg))) (f32x4.extract_lane 3 (local.get $qg))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $elems)))
      (f32.store (i32.add (local.get $norms) (i32.shl (local.get $row) (i32.const 3))) (f32.sqrt (local.get $sz)))
      (f32.store offset=4 (i32.add (local.get $norms) (i32.shl (local.get $row) (i32.const 3))) (f32.sqrt (local.get $sg)))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rows)))
    ;; the batch's step size: the norms' means
    (if (i32.eqz (local.get $perSample)) (then
      (local.set $row (i32.const 0))
      (block $mDone (loop $means
        (br_if $mDone (i32.ge_u (local.get $row) (local.get $b)))
        (local.set $mz (f32.add (local.get $mz) (f32.load (i32.add (local.get $norms) (i32.shl (local.get $row) (i32.const 3))))))
        (local.set $mg (f32.add (local.get $mg) (f32.load offset=4 (i32.add (local.get $norms) (i32.shl (local.get $row) (i32.const 3))))))
        (local.set $row (i32.add (local.get $row) (i32.const 1)))
        (br $means)))
      (local.set $e (f32.mul (f32.div (f32.div (local.get $mz) (f32.convert_i32_u (local.get $b))) (f32.div (local.get $mg) (f32.convert_i32_u (local.get $b))))
        (local.get $snr)))
      (local.set $e (f32.mul (f32.mul (local.get $e) (local.get $e)) (local.get $twoAlpha)))
      (local.set $d (f32.sqrt (f32.mul (local.get $e) (f32.const 2))))))
    ;; the update, row by row
    (local.set $row (i32.const 0))
    (block $uDone (loop $update
      (br_if $uDone (i32.ge_u (local.get $row) (local.get $b)))
      (if (local.get $perSample) (then
        (local.set $e (f32.mul (f32.div (f32.load (i32.add (local.get $norms) (i32.shl (local.get $row) (i32.const 3))))
          (f32.load offset=4 (i32.add (local.get $norms) (i32.shl (local.get $row) (i32.const 3))))) (local.get $snr)))
        (local.set $e (f32.mul (f32.mul (local.get $e) (local.get $e)) (local.get $twoAlpha)))
        (local.set $d (f32.sqrt (f32.mul (local.get $e) (f32.const 2))))))
      (local.set $ev (f32x4.splat (local.get $e)))
      (local.set $dv (f32x4.splat (local.get $d)))
      (local.set $at (i32.mul (local.get $row) (local.get $end)))
      (local.set $i (local.get $at))
      (block $done (loop $elems
        (br_if $done (i32.ge_u (local.get $i) (i32.add (local.get $at) (local.get $end))))
        (local.set $xm (f32x4.add (v128.load (i32.add (local.get $x) (local.get $i)))
          (f32x4.mul (local.get $ev) (v128.load (i32.add (local.get $g) (local.get $i))))))
        (v128.store (i32.add (local.get $om) (local.get $i)) (local.get $xm))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (f32x4.add (local.get $xm) (f32x4.mul (local.get $dv) (v128.load (i32.add (local.get $z) (local.get $i))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $elems)))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $update))))

  ;; Overlap-add of a stride-1 transposed convolution's per-pixel contributions T [B, hIn, wIn, kh*kw*cz]:
  ;;   z[b, u, v, c] = sum over taps (p, q) with 0 <= u + top - p < hIn, 0 <= v + left - q < wIn of
  ;;                   T[b, u + top - p, v + left - q, (p*kw + q)*cz + c]        (z [B, hOut, wOut, cz]; taps in order)
  (func (export "overlap_add") (param $t i32) (param $b i32) (param $hin i32) (param $win i32) (param $kh i32) (param $kw i32) (param $cz i32)
    (param $hout i32) (param $wout i32) (param $top i32) (param $left i32) (param $z i32)
    (local $s i32) (local $u i32) (local $v i32) (local $c i32) (local $p i32) (local $q i32) (local $i i32) (local $j i32)
    (local $acc f32) (local $taps i32) (local $sample i32) (local $at i32)
    (local.set $taps (i32.mul (i32.mul (local.get $kh) (local.get $kw)) (local.get $cz)))
    (local.set $s (i32.const 0))
    (loop $samples
      (local.set $sample (i32.add (local.get $t) (i32.shl (i32.mul (local.get $s) (i32.mul (i32.mul (local.get $hin) (local.get $win)) (local.get $taps))) (i32.const 2))))
      (local.set $u (i32.const 0))
      (loop $rows
        (local.set $v (i32.const 0))
        (loop $cols
          (local.set $c (i32.const 0))
          (loop $chans
            (local.set $acc (f32.const 0))
            (local.set $p (i32.const 0))
            (loop $tp
              (local.set $i (i32.sub (i32.add (local.get $u) (local.get $top)) (local.get $p)))
              (local.set $q (i32.const 0))
              (loop $tq
                (local.set $j (i32.sub (i32.add (local.get $v) (local.get $left)) (local.get $q)))
                (if (i32.and
                      (i32.and (i32.ge_s (local.get $i) (i32.const 0)) (i32.lt_s (local.get $i) (local.get $hin)))
                      (i32.and (i32.ge_s (local.get $j) (i32.const 0)) (i32.lt_s (local.get $j) (local.get $win))))
                  (then
                    ;; element (i, j, (p kw + q) cz + c) of this sample's T
                    (local.set $at (i32.add (i32.mul (i32.add (i32.mul (local.get $i) (local.get $win)) (local.get $j)) (local.get $taps))
                      (i32.add (i32.mul (i32.add (i32.mul (local.get $p) (local.get $kw)) (local.get $q)) (local.get $cz)) (local.get $c))))
                    (local.set $acc (f32.add (local.get $acc) (f32.load (i32.add (local.get $sample) (i32.shl (local.get $at) (i32.const 2))))))))
                (br_if $tq (i32.lt_u (local.tee $q (i32.add (local.get $q) (i32.const 1))) (local.get $kw))))
              (br_if $tp (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 1))) (local.get $kh))))
            (f32.store (local.get $z) (local.get $acc))
            (local.set $z (i32.add (local.get $z) (i32.const 4)))
            (br_if $chans (i32.lt_u (local.tee $c (i32.add (local.get $c) (i32.const 1))) (local.get $cz))))
          (br_if $cols (i32.lt_u (local.tee $v (i32.add (local.get $v) (i32.const 1))) (local.get $wout))))
        (br_if $rows (i32.lt_u (local.tee $u (i32.add (local.get $u) (i32.const 1))) (local.get $hout))))
      (br_if $samples (i32.lt_u (local.tee $s (i32.add (local.get $s) (i32.const 1))) (local.get $b)))))

  ;; Interleaves the s*s sub-pixel phases of a strided transposed convolution (conv.ts, transposeByPhases): phase
  ;; (r, q) [B, rows, cols, cz] at offset ptrs[r*s + q] (0: a phase no tap reaches, all zeros) lands on the output
  ;; pixels U = s*a + r, V = s*b + q of the padded grid; out [B, hOut, wOut, cz] is the window U = u + top, V = v + left.
  (func (export "interleave_phases") (param $ptrs i32) (param $s i32) (param $b i32) (param $rows i32) (param $cols i32) (param $cz i32)
    (param $hout i32) (param $wout i32) (param $top i32) (param $left i32) (param $out i32)
    (local $n i32) (local $u i32) (local $v i32) (local $uu i32) (local $vv i32) (local $src i32) (local $c i32) (local $bytes i32) (local $sample i32)
    (local.set $bytes (i32.shl (local.get $cz) (i32.const 2)))
    (local.set $n (i32.const 0))
    (loop $samples
      (local.set $sample (i32.mul (i32.mul (i32.mul (local.get $n) (local.get $rows)) (local.get $cols)) (local.get $bytes)))
      (local.set $u (i32.const 0))
      (loop $rowsl
        (local.set $uu (i32.add (local.get $u) (local.get $top)))
        (local.set $v (i32.const 0))
        (loop $colsl
          (local.set $vv (i32.add (local.get $v) (local.get $left)))
          (local.set $src (i32.load (i32.add (local.get $ptrs)
            (i32.shl (i32.add (i32.mul (i32.rem_u (local.get $uu) (local.get $s)) (local.get $s)) (i32.rem_u (local.get $vv) (local.get $s))) (i32.const 2)))))
          (if (i32.eqz (local.get $src))
            (then (memory.fill (local.get $out) (i32.const 0) (local.get $bytes)))
            (else
              (local.set $src (i32.add (i32.add (local.get $src) (local.get $sample))
                (i32.mul (i32.add (i32.mul (i32.div_u (local.get $uu) (local.get $s)) (local.get $cols)) (i32.div_u (local.get $vv) (local.get $s))) (local.get $bytes))))
              (if (i32.eqz (i32.and (local.get $cz) (i32.const 3)))
                (then
                  (local.set $c (i32.const 0))
                  (loop $vec
                    (v128.store (i32.add (local.get $out) (local.get $c)) (v128.load (i32.add (local.get $src) (local.get $c))))
                    (br_if $vec (i32.lt_u (local.tee $c (i32.add (local.get $c) (i32.const 16))) (local.get $bytes)))))
                (else (memory.copy (local.get $out) (local.get $src) (local.get $bytes))))))
          (local.set $out (i32.add (local.get $out) (local.get $bytes)))
          (br_if $colsl (i32.lt_u (local.tee $v (i32.add (local.get $v) (i32.const 1))) (local.get $wout))))
        (br_if $rowsl (i32.lt_u (local.tee $u (i32.add (local.get $u) (i32.const 1))) (local.get $hout))))
      (br_if $samples (i32.lt_u (local.tee $n (i32.add (local.get $n) (i32.const 1))) (local.get $b)))))

  ;; ---- concat / split along an inner axis (fused-kernels.ts, ScoreSdeConcat / ScoreSdeSplit) ----
  ;; A tensor viewed as [outer, total] (total = the bytes of one row: the axis and everything after it) is the
  ;; row-by-row concatenation of k parts [outer, n_i] (n_i bytes a row, sum n_i = total). The table at $parts holds k pairs
  ;; (offset of part i, n_i). $into = 1: rows of the parts are copied into $big (concat); 0: rows of $big are copied out
  ;; into the parts (split). Plain copies of 4-byte elements: 16 bytes at a time while 16 or more are left.
  (func (export "rows_copy") (param $parts i32) (param $k i32) (param $outer i32) (param $big i32) (param $into i32)
    (local $o i32) (local $i i32) (local $n i32) (local $part i32) (local $e i32) (local $src i32) (local $dst i32) (local $end i32)
    (local.set $o (i32.const 0))
    (loop $rows
      (local.set $i (i32.const 0))
      (loop $each
        (local.set $e (i32.add (local.get $parts) (i32.shl (local.get $i) (i32.const 3))))
        (local.set $n (i32.load offset=4 (local.get $e)))
        (local.set $part (i32.add (i32.load (local.get $e)) (i32.mul (local.get $o) (local.get $n))))
        (if (local.get $into)
          (then (local.set $src (local.get $part)) (local.set $dst (local.get $big)))
          (else (local.set $src (local.get $big)) (local.set $dst (local.get $part))))
        (local.set $end (i32.add (local.get $src) (i32.and (local.get $n) (i32.const -16))))
        (block $vec_done (loop $vec
          (br_if $vec_done (i32.ge_u (local.get $src) (local.get $end)))
          (v128.store (local.get $dst) (v128.load (local.get $src)))
          (local.set $src (i32.add (local.get $src) (i32.const 16)))
          (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
          (br $vec)))
        (local.set $end (i32.add (local.get $end) (i32.and (local.get $n) (i32.const 15))))
        (block $tail_done (loop $tail
          (br_if $tail_done (i32.ge_u (local.get $src) (local.get $end)))
          (i32.store (local.get $dst) (i32.load (local.get $src)))
          (local.set $src (i32.add (local.get $src) (i32.const 4)))
          (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
          (br $tail)))
        (local.set $big (i32.add (local.get $big) (local.get $n)))
        (br_if $each (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $k))))
      (br_if $rows (i32.lt_u (local.tee $o (i32.add (local.get $o) (i32.const 1))) (local.get $outer)))))

  ;; ---- broadcasting binary ops (fused-kernels.ts, the Add / Sub / Multiply / RealDiv overrides) ----
  ;; out[m, n] = a[m*aM + n*aN] (op) b[m*bM + n*bN] for m < M, n < N (strides in bytes; aN, bN each 0 or 4: an operand
  ;; either runs along a row or is one value for it), op 0: a + b, 1: a - b, 2: a * b, 3: a / b, each one IEEE float32
  ;; operation (4 lanes at a time, exactly rounded like the scalar one). One call per row to $row_op, whose loop is chosen by op.
  (func $row_op (param $op i32) (param $a i32) (param $aN i32) (param $b i32) (param $bN i32) (param $n i32) (param $out i32)
    (local $j i32) (local $end i32) (local $va v128) (local $vb v128)
    (local.set $end (i32.and (local.get $n) (i32.const -4)))
    (local.set $va (v128.load32_splat (local.get $a)))
    (local.set $vb (v128.load32_splat (local.get $b)))
    (block $div (block $mul (block $sub (block $add
      (br_table $add $sub $mul $div (local.get $op)))
      ;; add
      (block $vec_done_add (loop $vec_add
        (br_if $vec_done_add (i32.ge_u (local.get $j) (local.get $end)))
        (if (local.get $aN) (then (local.set $va (v128.load (i32.add (local.get $a) (i32.shl (local.get $j) (i32.const 2)))))))
        (if (local.get $bN) (then (local.set $vb (v128.load (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))))))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))) (f32x4.add (local.get $va) (local.get $vb)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $vec_add)))
      (block $tail_done_add (loop $tail_add
        (br_if $tail_done_add (i32.ge_u (local.get $j) (local.get $n)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
          (f32.add (f32.load (i32.add (local.get $a) (i32.mul (local.get $j) (local.get $aN))))
                  (f32.load (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $bN))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tail_add)))
      (return)
    )
      ;; sub
      (block $vec_done_sub (loop $vec_sub
        (br_if $vec_done_sub (i32.ge_u (local.get $j) (local.get $end)))
        (if (local.get $aN) (then (local.set $va (v128.load (i32.add (local.get $a) (i32.shl (local.get $j) (i32.const 2)))))))
        (if (local.get $bN) (then (local.set $vb (v128.load (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))))))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))) (f32x4.sub (local.get $va) (local.get $vb)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $vec_sub)))
      (block $tail_done_sub (loop $tail_sub
        (br_if $tail_done_sub (i32.ge_u (local.get $j) (local.get $n)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
          (f32.sub (f32.load (i32.add (local.get $a) (i32.mul (local.get $j) (local.get $aN))))
                  (f32.load (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $bN))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tail_sub)))
      (return)
    )
      ;; mul
      (block $vec_done_mul (loop $vec_mul
        (br_if $vec_done_mul (i32.ge_u (local.get $j) (local.get $end)))
        (if (local.get $aN) (then (local.set $va (v128.load (i32.add (local.get $a) (i32.shl (local.get $j) (i32.const 2)))))))
        (if (local.get $bN) (then (local.set $vb (v128.load (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))))))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))) (f32x4.mul (local.get $va) (local.get $vb)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $vec_mul)))
      (block $tail_done_mul (loop $tail_mul
        (br_if $tail_done_mul (i32.ge_u (local.get $j) (local.get $n)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
          (f32.mul (f32.load (i32.add (local.get $a) (i32.mul (local.get $j) (local.get $aN))))
                  (f32.load (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $bN))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tail_mul)))
      (return)
    )
      ;; div
      (block $vec_done_div (loop $vec_div
        (br_if $vec_done_div (i32.ge_u (local.get $j) (local.get $end)))
        (if (local.get $aN) (then (local.set $va (v128.load (i32.add (local.get $a) (i32.shl (local.get $j) (i32.const 2)))))))
        (if (local.get $bN) (then (local.set $vb (v128.load (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))))))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))) (f32x4.div (local.get $va) (local.get $vb)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $vec_div)))
      (block $tail_done_div (loop $tail_div
        (br_if $tail_done_div (i32.ge_u (local.get $j) (local.get $n)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
          (f32.div (f32.load (i32.add (local.get $a) (i32.mul (local.get $j) (local.get $aN))))
                  (f32.load (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $bN))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tail_div))))
  (func (export "broadcast_op") (param $op i32) (param $a i32) (param $aM i32) (param $aN i32) (param $b i32) (param $bM i32) (param $bN i32)
    (param $m i32) (param $n i32) (param $out i32)
    (local $i i32)
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $i) (local.get $m)))
      (call $row_op (local.get $op) (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $aM))) (local.get $aN)
        (i32.add (local.get $b) (i32.mul (local.get $i) (local.get $bM))) (local.get $bN) (local.get $n)
        (i32.add (local.get $out) (i32.shl (i32.mul (local.get $i) (local.get $n)) (i32.const 2))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows))))

  ;; ---- small matrix products (fused-kernels.ts, the BatchMatMul override) ----
  ;; out[m, n] = sum over k = 0 .. K-1, in that order, of a[m, k] * b[k, n], from +0, each product and each sum rounded
  ;; to float32 (a [M, K], b [K, N], out [M, N], row-major): the order XNNPACK's GEMM sums in, so the same bits. Blocks of
  ;; 2 rows x 16 columns (8 accumulators, 2 splats of a, one vector of b: within the 15 xmm registers V8 gives), then
  ;; the remaining columns 4 at a time, then single columns, each over blocks of 4 rows (4 independent chains), then single
  ;; rows. Rows are independent: a block of rows [m0, m1) is the call on a + 4 m0 K, out + 4 m0 N with m1 - m0 rows.
  (func $mm_cols16 (param $a i32) (param $rows i32) (param $k i32) (param $b i32) (param $n i32) (param $out i32)
    ;; $rows (1 or 2) rows of a from $a (row stride 4K bytes) times the 16 columns of b from $b (row stride 4N bytes)
    (local $i i32) (local $pa i32) (local $pb i32) (local $a0 v128) (local $a1 v128) (local $bv v128)
    (local $c00 v128) (local $c01 v128) (local $c02 v128) (local $c03 v128) (local $c10 v128) (local $c11 v128) (local $c12 v128) (local $c13 v128)
    (local $ka i32) (local $nb i32)
    ;; a single row reads its own row twice (never past the end of a)
    (local.set $ka (select (i32.shl (local.get $k) (i32.const 2)) (i32.const 0) (i32.eq (local.get $rows) (i32.const 2))))
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $pa (local.get $a))
    (local.set $pb (local.get $b))
    (block $done (loop $ks
      (br_if $done (i32.ge_u (local.get $i) (local.get $k)))
      (local.set $a0 (v128.load32_splat (local.get $pa)))
      (local.set $a1 (v128.load32_splat (i32.add (local.get $pa) (local.get $ka))))
      (local.set $bv (v128.load (local.get $pb)))
      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $a0) (local.get $bv))))
      (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $a1) (local.get $bv))))
      (local.set $bv (v128.load offset=16 (local.get $pb)))
      (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $a0) (local.get $bv))))
      (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $a1) (local.get $bv))))
      (local.set $bv (v128.load offset=32 (local.get $pb)))
      (local.set $c02 (f32x4.add (local.get $c02) (f32x4.mul (local.get $a0) (local.get $bv))))
      (local.set $c12 (f32x4.add (local.get $c12) (f32x4.mul (local.get $a1) (local.get $bv))))
      (local.set $bv (v128.load offset=48 (local.get $pb)))
      (local.set $c03 (f32x4.add (local.get $c03) (f32x4.mul (local.get $a0) (local.get $bv))))
      (local.set $c13 (f32x4.add (local.get $c13) (f32x4.mul (local.get $a1) (local.get $bv))))
      (local.set $pa (i32.add (local.get $pa) (i32.const 4)))
      (local.set $pb (i32.add (local.get $pb) (local.get $nb)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $ks)))
    (v128.store (local.get $out) (local.get $c00))
    (v128.store offset=16 (local.get $out) (local.get $c01))
    (v128.store offset=32 (local.get $out) (local.get $c02))
    (v128.store offset=48 (local.get $out) (local.get $c03))
    (if (i32.eq (local.get $rows) (i32.const 2)) (then
      (local.set $out (i32.add (local.get $out) (local.get $nb)))
      (v128.store (local.get $out) (local.get $c10))
      (v128.store offset=16 (local.get $out) (local.get $c11))
      (v128.store offset=32 (local.get $out) (local.get $c12))
      (v128.store offset=48 (local.get $out) (local.get $c13)))))
  (func $mm_cols4 (param $a i32) (param $k i32) (param $b i32) (param $n i32) (param $out i32)
    ;; one row of a times 4 columns of b
    (local $i i32) (local $c v128) (local $nb i32)
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $ks
      (br_if $done (i32.ge_u (local.get $i) (local.get $k)))
      (local.set $c (f32x4.add (local.get $c) (f32x4.mul (v128.load32_splat (local.get $a)) (v128.load (local.get $b)))))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (local.set $b (i32.add (local.get $b) (local.get $nb)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $ks)))
    (v128.store (local.get $out) (local.get $c)))
  (func $mm_col1 (param $a i32) (param $k i32) (param $b i32) (param $n i32) (param $out i32)
    ;; one row of a times one column of b
    (local $i i32) (local $c f32) (local $nb i32)
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $ks
      (br_if $done (i32.ge_u (local.get $i) (local.get $k)))
      (local.set $c (f32.add (local.get $c) (f32.mul (f32.load (local.get $a)) (f32.load (local.get $b)))))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (local.set $b (i32.add (local.get $b) (local.get $nb)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $ks)))
    (f32.store (local.get $out) (local.get $c)))
  (func $mm4_cols4 (param $a i32) (param $k i32) (param $b i32) (param $n i32) (param $out i32)
    ;; four rows of a (4K bytes apart) times 4 columns of b: four independent chains
    (local $i i32) (local $nb i32) (local $ka i32) (local $bv v128) (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $ka (i32.shl (local.get $k) (i32.const 2)))
    (block $done (loop $ks
      (br_if $done (i32.ge_u (local.get $i) (local.get $k)))
      (local.set $bv (v128.load (local.get $b)))
      (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (v128.load32_splat (local.get $a)) (local.get $bv))))
      (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (v128.load32_splat (i32.add (local.get $a) (local.get $ka))) (local.get $bv))))
      (local.set $c2 (f32x4.add (local.get $c2) (f32x4.mul (v128.load32_splat (i32.add (local.get $a) (i32.shl (local.get $ka) (i32.const 1)))) (local.get $bv))))
      (local.set $c3 (f32x4.add (local.get $c3) (f32x4.mul (v128.load32_splat (i32.add (local.get $a) (i32.mul (local.get $ka) (i32.const 3)))) (local.get $bv))))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (local.set $b (i32.add (local.get $b) (local.get $nb)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $ks)))
    (v128.store (local.get $out) (local.get $c0))
    (v128.store (i32.add (local.get $out) (local.get $nb)) (local.get $c1))
    (v128.store (i32.add (local.get $out) (i32.shl (local.get $nb) (i32.const 1))) (local.get $c2))
    (v128.store (i32.add (local.get $out) (i32.mul (local.get $nb) (i32.const 3))) (local.get $c3)))
  (func $mm4_col1 (param $a i32) (param $k i32) (param $b i32) (param $n i32) (param $out i32)
    ;; four rows of a times one column of b: four independent scalar chains
    (local $i i32) (local $nb i32) (local $ka i32) (local $bv f32) (local $c0 f32) (local $c1 f32) (local $c2 f32) (local $c3 f32)
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $ka (i32.shl (local.get $k) (i32.const 2)))
    (block $done (loop $ks
      (br_if $done (i32.ge_u (local.get $i) (local.get $k)))
      (local.set $bv (f32.load (local.get $b)))
      (local.set $c0 (f32.add (local.get $c0) (f32.mul (f32.load (local.get $a)) (local.get $bv))))
      (local.set $c1 (f32.add (local.get $c1) (f32.mul (f32.load (i32.add (local.get $a) (local.get $ka))) (local.get $bv))))
      (local.set $c2 (f32.add (local.get $c2) (f32.mul (f32.load (i32.add (local.get $a) (i32.shl (local.get $ka) (i32.const 1)))) (local.get $bv))))
      (local.set $c3 (f32.add (local.get $c3) (f32.mul (f32.load (i32.add (local.get $a) (i32.mul (local.get $ka) (i32.const 3)))) (local.get $bv))))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (local.set $b (i32.add (local.get $b) (local.get $nb)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $ks)))
    (f32.store (local.get $out) (local.get $c0))
    (f32.store (i32.add (local.get $out) (local.get $nb)) (local.get $c1))
    (f32.store (i32.add (local.get $out) (i32.shl (local.get $nb) (i32.const 1))) (local.get $c2))
    (f32.store (i32.add (local.get $out) (i32.mul (local.get $nb) (i32.const 3))) (local.get $c3)))
  (func (export "matmul_seq") (param $a i32) (param $b i32) (param $m i32) (param $k i32) (param $n i32) (param $out i32)
    (local $r i32) (local $rows i32) (local $j i32) (local $ar i32) (local $or i32) (local $i i32)
    ;; 16-column strips outer, rows inner: a strip of b is one 64-byte line per k (K lines), read again from cache by every
    ;; pair of rows, where rows outer would stream all of b (N/16 strips) once per pair of rows
    (block $c16_done (loop $c16
      (br_if $c16_done (i32.gt_u (i32.add (local.get $j) (i32.const 16)) (local.get $n)))
      (local.set $r (i32.const 0))
      (block $rows_done (loop $rowsl
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $m)))
        (local.set $rows (select (i32.const 2) (i32.const 1) (i32.lt_u (i32.add (local.get $r) (i32.const 1)) (local.get $m))))
        (local.set $ar (i32.add (local.get $a) (i32.shl (i32.mul (local.get $r) (local.get $k)) (i32.const 2))))
        (local.set $or (i32.add (local.get $out) (i32.shl (i32.mul (local.get $r) (local.get $n)) (i32.const 2))))
        (call $mm_cols16 (local.get $ar) (local.get $rows) (local.get $k) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $n)
          (i32.add (local.get $or) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $r (i32.add (local.get $r) (local.get $rows)))
        (br $rowsl)))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br $c16)))
    ;; the columns past the last multiple of 16: four rows at a time (independent chains), then single rows
    (local.set $r (i32.const 0))
    (block $rem_done (loop $reml
      (br_if $rem_done (i32.ge_u (i32.and (local.get $n) (i32.const -16)) (local.get $n)))
      (br_if $rem_done (i32.ge_u (local.get $r) (local.get $m)))
      (local.set $rows (select (i32.const 4) (i32.const 1) (i32.le_u (i32.add (local.get $r) (i32.const 4)) (local.get $m))))
      (local.set $ar (i32.add (local.get $a) (i32.shl (i32.mul (local.get $r) (local.get $k)) (i32.const 2))))
      (local.set $or (i32.add (local.get $out) (i32.shl (i32.mul (local.get $r) (local.get $n)) (i32.const 2))))
      (local.set $j (i32.and (local.get $n) (i32.const -16)))
      (block $c4_done (loop $c4
        (br_if $c4_done (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $n)))
        (if (i32.eq (local.get $rows) (i32.const 4))
          (then (call $mm4_cols4 (local.get $ar) (local.get $k) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $n) (i32.add (local.get $or) (i32.shl (local.get $j) (i32.const 2)))))
          (else (call $mm_cols4 (local.get $ar) (local.get $k) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $n) (i32.add (local.get $or) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $c4)))
      (block $c1_done (loop $c1
        (br_if $c1_done (i32.ge_u (local.get $j) (local.get $n)))
        (if (i32.eq (local.get $rows) (i32.const 4))
          (then (call $mm4_col1 (local.get $ar) (local.get $k) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $n) (i32.add (local.get $or) (i32.shl (local.get $j) (i32.const 2)))))
          (else (call $mm_col1 (local.get $ar) (local.get $k) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $n) (i32.add (local.get $or) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $c1)))
      (local.set $r (i32.add (local.get $r) (local.get $rows)))
      (br $reml))))

  ;; ---- conv filter gradient (conv.ts, filterGradientFused) ----
  ;; df[p, q, c, o] = sum over (b, i, j) of xbar[b, s*i + p, s*j + q, c] * dy[b, i, j, o]     (df HWIO [kh, kw, C, O])
  ;; with xbar = x [B, H, W, C] shifted by (top, left), zero outside; dy [B, Ho, Wo, O]; O a multiple of 4.
  ;; The micro-kernels fg_RxV add to R consecutive rows of df (rows $dfs bytes apart, from $dfa; see conv_filter_grad)
  ;; over 4V outputs, the R*V accumulators (4 outputs each) kept in locals across a window of $nimg images x $ni rows x
  ;; $nj columns of (i, j): per (b, i, j), R x-values are splat (adjacent in x: 4 bytes apart) and the V dy vectors
  ;; are streamed from the row dy[b, i, j, o ..]. $xa / $da: x and dy at the window's first (image, row, column), strides
  ;; in bytes: x per image / window row / window column $xsb / $xsi / $xsj, dy likewise $dsb / $dsi / $dsj.
  ;; 2 x 4 uses 8 accumulators + 2 splats + 1 dy vector: within the 15 xmm registers V8 allocates on x64 (3 x 4 spills
  ;; and ran at half the speed). The window is never empty (the caller checks).
  (func $fg_2x4 (param $xa i32) (param $da i32) (param $nimg i32) (param $ni i32) (param $nj i32) (param $xsb i32) (param $xsi i32) (param $xsj i32)
    (param $dsb i32) (param $dsi i32) (param $dsj i32) (param $dfa i32) (param $dfs i32)
    (local $i i32) (local $xr i32) (local $dr i32) (local $xp i32) (local $dp i32) (local $xe i32) (local $xlen i32)
    (local $a00 v128) (local $a01 v128) (local $a02 v128) (local $a03 v128) (local $a10 v128) (local $a11 v128) (local $a12 v128) (local $a13 v128) (local $x0 v128) (local $x1 v128) (local $d v128)
    (local.set $a00 (v128.load (local.get $dfa)))
    (local.set $a01 (v128.load offset=16 (local.get $dfa)))
    (local.set $a02 (v128.load offset=32 (local.get $dfa)))
    (local.set $a03 (v128.load offset=48 (local.get $dfa)))
    (local.set $a10 (v128.load (i32.add (local.get $dfa) (local.get $dfs))))
    (local.set $a11 (v128.load offset=16 (i32.add (local.get $dfa) (local.get $dfs))))
    (local.set $a12 (v128.load offset=32 (i32.add (local.get $dfa) (local.get $dfs))))
    (local.set $a13 (v128.load offset=48 (i32.add (local.get $dfa) (local.get $dfs))))
    (local.set $xlen (i32.mul (local.get $nj) (local.get $xsj)))
    (loop $images
      (local.set $xr (local.get $xa))
      (local.set $dr (local.get $da))
      (local.set $i (local.get $ni))
      (loop $rows
        (local.set $xp (local.get $xr))
        (local.set $dp (local.get $dr))
        (local.set $xe (i32.add (local.get $xr) (local.get $xlen)))
        (loop $cols
          (local.set $x0 (v128.load32_splat (local.get $xp)))
          (local.set $x1 (v128.load32_splat offset=4 (local.get $xp)))
          (local.set $d (v128.load (local.get $dp)))
          (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $x0) (local.get $d))))
          (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $x1) (local.get $d))))
          (local.set $d (v128.load offset=16 (local.get $dp)))
          (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $x0) (local.get $d))))
          (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $x1) (local.get $d))))
          (local.set $d (v128.load offset=32 (local.get $dp)))
          (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $x0) (local.get $d))))
          (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $x1) (local.get $d))))
          (local.set $d (v128.load offset=48 (local.get $dp)))
          (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $x0) (local.get $d))))
          (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $x1) (local.get $d))))
          (local.set $dp (i32.add (local.get $dp) (local.get $dsj)))
          (br_if $cols (i32.ne (local.tee $xp (i32.add (local.get $xp) (local.get $xsj))) (local.get $xe))))
        (local.set $xr (i32.add (local.get $xr) (local.get $xsi)))
        (local.set $dr (i32.add (local.get $dr) (local.get $dsi)))
        (br_if $rows (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
      (local.set $xa (i32.add (local.get $xa) (local.get $xsb)))
      (local.set $da (i32.add (local.get $da) (local.get $dsb)))
      (br_if $images (local.tee $nimg (i32.sub (local.get $nimg) (i32.const 1)))))
    (v128.store (local.get $dfa) (local.get $a00))
    (v128.store offset=16 (local.get $dfa) (local.get $a01))
    (v128.store offset=32 (local.get $dfa) (local.get $a02))
    (v128.store offset=48 (local.get $dfa) (local.get $a03))
    (v128.store (i32.add (local.get $dfa) (local.get $dfs)) (local.get $a10))
    (v128.store offset=16 (i32.add (local.get $dfa) (local.get $dfs)) (local.get $a11))
    (v128.store offset=32 (i32.add (local.get $dfa) (local.get $dfs)) (local.get $a12))
    (v128.store offset=48 (i32.add (local.get $dfa) (local.get $dfs)) (local.get $a13)))
  ;; 2 rows x 4 outputs (O mod 16 remainders)
  (func $fg_2x1 (param $xa i32) (param $da i32) (param $nimg i32) (param $ni i32) (param $nj i32) (param $xsb i32) (param $xsi i32) (param $xsj i32)
    (param $dsb i32) (param $dsi i32) (param $dsj i32) (param $dfa i32) (param $dfs i32)
    (local $i i32) (local $xr i32) (local $dr i32) (local $xp i32) (local $dp i32) (local $xe i32) (local $xlen i32)
    (local $a00 v128) (local $a10 v128) (local $x0 v128) (local $x1 v128) (local $d v128)
    (local.set $a00 (v128.load (local.get $dfa)))
    (local.set $a10 (v128.load (i32.add (local.get $dfa) (local.get $dfs))))
    (local.set $xlen (i32.mul (local.get $nj) (local.get $xsj)))
    (loop $images
      (local.set $xr (local.get $xa))
      (local.set $dr (local.get $da))
      (local.set $i (local.get $ni))
      (loop $rows
        (local.set $xp (local.get $xr))
        (local.set $dp (local.get $dr))
        (local.set $xe (i32.add (local.get $xr) (local.get $xlen)))
        (loop $cols
          (local.set $x0 (v128.load32_splat (local.get $xp)))
          (local.set $x1 (v128.load32_splat offset=4 (local.get $xp)))
          (local.set $d (v128.load (local.get $dp)))
          (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $x0) (local.get $d))))
          (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $x1) (local.get $d))))
          (local.set $dp (i32.add (local.get $dp) (local.get $dsj)))
          (br_if $cols (i32.ne (local.tee $xp (i32.add (local.get $xp) (local.get $xsj))) (local.get $xe))))
        (local.set $xr (i32.add (local.get $xr) (local.get $xsi)))
        (local.set $dr (i32.add (local.get $dr) (local.get $dsi)))
        (br_if $rows (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
      (local.set $xa (i32.add (local.get $xa) (local.get $xsb)))
      (local.set $da (i32.add (local.get $da) (local.get $dsb)))
      (br_if $images (local.tee $nimg (i32.sub (local.get $nimg) (i32.const 1)))))
    (v128.store (local.get $dfa) (local.get $a00))
    (v128.store (i32.add (local.get $dfa) (local.get $dfs)) (local.get $a10)))
  ;; 1 row x 16 outputs (a row left unpaired)
  (func $fg_1x4 (param $xa i32) (param $da i32) (param $nimg i32) (param $ni i32) (param $nj i32) (param $xsb i32) (param $xsi i32) (param $xsj i32)
    (param $dsb i32) (param $dsi i32) (param $dsj i32) (param $dfa i32) (param $dfs i32)
    (local $i i32) (local $xr i32) (local $dr i32) (local $xp i32) (local $dp i32) (local $xe i32) (local $xlen i32)
    (local $a00 v128) (local $a01 v128) (local $a02 v128) (local $a03 v128) (local $x0 v128) (local $d v128)
    (local.set $a00 (v128.load (local.get $dfa)))
    (local.set $a01 (v128.load offset=16 (local.get $dfa)))
    (local.set $a02 (v128.load offset=32 (local.get $dfa)))
    (local.set $a03 (v128.load offset=48 (local.get $dfa)))
    (local.set $xlen (i32.mul (local.get $nj) (local.get $xsj)))
    (loop $images
      (local.set $xr (local.get $xa))
      (local.set $dr (local.get $da))
      (local.set $i (local.get $ni))
      (loop $rows
        (local.set $xp (local.get $xr))
        (local.set $dp (local.get $dr))
        (local.set $xe (i32.add (local.get $xr) (local.get $xlen)))
        (loop $cols
          (local.set $x0 (v128.load32_splat (local.get $xp)))
          (local.set $d (v128.load (local.get $dp)))
          (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $x0) (local.get $d))))
          (local.set $d (v128.load offset=16 (local.get $dp)))
          (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $x0) (local.get $d))))
          (local.set $d (v128.load offset=32 (local.get $dp)))
          (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $x0) (local.get $d))))
          (local.set $d (v128.load offset=48 (local.get $dp)))
          (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $x0) (local.get $d))))
          (local.set $dp (i32.add (local.get $dp) (local.get $dsj)))
          (br_if $cols (i32.ne (local.tee $xp (i32.add (local.get $xp) (local.get $xsj))) (local.get $xe))))
        (local.set $xr (i32.add (local.get $xr) (local.get $xsi)))
        (local.set $dr (i32.add (local.get $dr) (local.get $dsi)))
        (br_if $rows (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
      (local.set $xa (i32.add (local.get $xa) (local.get $xsb)))
      (local.set $da (i32.add (local.get $da) (local.get $dsb)))
      (br_if $images (local.tee $nimg (i32.sub (local.get $nimg) (i32.const 1)))))
    (v128.store (local.get $dfa) (local.get $a00))
    (v128.store offset=16 (local.get $dfa) (local.get $a01))
    (v128.store offset=32 (local.get $dfa) (local.get $a02))
    (v128.store offset=48 (local.get $dfa) (local.get $a03)))
  ;; 1 row x 4 outputs
  (func $fg_1x1 (param $xa i32) (param $da i32) (param $nimg i32) (param $ni i32) (param $nj i32) (param $xsb i32) (param $xsi i32) (param $xsj i32)
    (param $dsb i32) (param $dsi i32) (param $dsj i32) (param $dfa i32) (param $dfs i32)
    (local $i i32) (local $xr i32) (local $dr i32) (local $xp i32) (local $dp i32) (local $xe i32) (local $xlen i32)
    (local $a00 v128) (local $x0 v128) (local $d v128)
    (local.set $a00 (v128.load (local.get $dfa)))
    (local.set $xlen (i32.mul (local.get $nj) (local.get $xsj)))
    (loop $images
      (local.set $xr (local.get $xa))
      (local.set $dr (local.get $da))
      (local.set $i (local.get $ni))
      (loop $rows
        (local.set $xp (local.get $xr))
        (local.set $dp (local.get $dr))
        (local.set $xe (i32.add (local.get $xr) (local.get $xlen)))
        (loop $cols
          (local.set $x0 (v128.load32_splat (local.get $xp)))
          (local.set $d (v128.load (local.get $dp)))
          (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $x0) (local.get $d))))
          (local.set $dp (i32.add (local.get $dp) (local.get $dsj)))
          (br_if $cols (i32.ne (local.tee $xp (i32.add (local.get $xp) (local.get $xsj))) (local.get $xe))))
        (local.set $xr (i32.add (local.get $xr) (local.get $xsi)))
        (local.set $dr (i32.add (local.get $dr) (local.get $dsi)))
        (br_if $rows (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
      (local.set $xa (i32.add (local.get $xa) (local.get $xsb)))
      (local.set $da (i32.add (local.get $da) (local.get $dsb)))
      (br_if $images (local.tee $nimg (i32.sub (local.get $nimg) (i32.const 1)))))
    (v128.store (local.get $dfa) (local.get $a00)))

  ;; One block of $rows (2 or 1) rows of df over all O outputs: 16 at a time, then the remainder 4 at a time.
  (func $fg_outputs (param $rows i32) (param $xa i32) (param $da i32) (param $nimg i32) (param $ni i32) (param $nj i32) (param $xsb i32) (param $xsi i32) (param $xsj i32)
    (param $dsb i32) (param $dsi i32) (param $dsj i32) (param $dfa i32) (param $dfs i32) (param $o i32)
    (local $oo i32)
    (block $wide_done (loop $wide
      (br_if $wide_done (i32.gt_u (i32.add (local.get $oo) (i32.const 16)) (local.get $o)))
      (if (i32.eq (local.get $rows) (i32.const 1))
        (then (call $fg_1x4 (local.get $xa) (i32.add (local.get $da) (i32.shl (local.get $oo) (i32.const 2))) (local.get $nimg) (local.get $ni) (local.get $nj) (local.get $xsb) (local.get $xsi) (local.get $xsj) (local.get $dsb) (local.get $dsi) (local.get $dsj) (i32.add (local.get $dfa) (i32.shl (local.get $oo) (i32.const 2))) (local.get $dfs)))
        (else (call $fg_2x4 (local.get $xa) (i32.add (local.get $da) (i32.shl (local.get $oo) (i32.const 2))) (local.get $nimg) (local.get $ni) (local.get $nj) (local.get $xsb) (local.get $xsi) (local.get $xsj) (local.get $dsb) (local.get $dsi) (local.get $dsj) (i32.add (local.get $dfa) (i32.shl (local.get $oo) (i32.const 2))) (local.get $dfs))))
      (local.set $oo (i32.add (local.get $oo) (i32.const 16)))
      (br $wide)))
    (block $narrow_done (loop $narrow
      (br_if $narrow_done (i32.ge_u (local.get $oo) (local.get $o)))
      (if (i32.eq (local.get $rows) (i32.const 1))
        (then (call $fg_1x1 (local.get $xa) (i32.add (local.get $da) (i32.shl (local.get $oo) (i32.const 2))) (local.get $nimg) (local.get $ni) (local.get $nj) (local.get $xsb) (local.get $xsi) (local.get $xsj) (local.get $dsb) (local.get $dsi) (local.get $dsj) (i32.add (local.get $dfa) (i32.shl (local.get $oo) (i32.const 2))) (local.get $dfs)))
        (else (call $fg_2x1 (local.get $xa) (i32.add (local.get $da) (i32.shl (local.get $oo) (i32.const 2))) (local.get $nimg) (local.get $ni) (local.get $nj) (local.get $xsb) (local.get $xsi) (local.get $xsj) (local.get $dsb) (local.get $dsi) (local.get $dsj) (i32.add (local.get $dfa) (i32.shl (local.get $oo) (i32.const 2))) (local.get $dfs))))
      (local.set $oo (i32.add (local.get $oo) (i32.const 4)))
      (br $narrow))))

  ;; The window of a tap along one axis: the outputs i with 0 <= s*i - d < n (d = padding before - tap index, n the input
  ;; length) and i < out: i_lo = max(0, ceil(d/s)), i_hi = min(out, floor((d + n - 1)/s) + 1), or i_hi = 0 if d + n - 1 < 0.
  (func $win_lo (param $d i32) (param $s i32) (result i32)
    (select (i32.div_s (i32.add (local.get $d) (i32.sub (local.get $s) (i32.const 1))) (local.get $s)) (i32.const 0) (i32.gt_s (local.get $d) (i32.const 0))))
  (func $win_hi (param $d i32) (param $n i32) (param $s i32) (param $out i32) (result i32)
    (local $t i32) (local $hi i32)
    (local.set $t (i32.add (local.get $d) (i32.sub (local.get $n) (i32.const 1))))
    (local.set $hi (select (i32.add (i32.div_s (local.get $t) (local.get $s)) (i32.const 1)) (i32.const 0) (i32.ge_s (local.get $t) (i32.const 0))))
    (select (local.get $out) (local.get $hi) (i32.gt_s (local.get $hi) (local.get $out))))

  ;; The filter gradient df (above) of a conv with kernel kh x kw, stride s, padding (top, left) before x. Zeroes df, then per
  ;; chunk of $nb images (their x and dy stay in cache) and tap row p, walks the rows r = q*C + c of df's block p (HWIO:
  ;; consecutive in df, and x[.., s*j + q - left, c] is element r of the run of pixels from column s*j - left, so rows r and
  ;; r + 1 are 4 bytes apart in x whether or not they belong to the same tap) two at a time: a pair (c, c + 1) of one tap,
  ;; or (C - 1 of tap q, 0 of tap q + 1) when both taps have the same window (always with 'valid'; it pairs the taps of a
  ;; conv with one input channel); otherwise one row. Each block adds the sum over its window: the rows i with
  ;; 0 <= s*i + p - top < H (i < Ho), likewise the columns j (taps outside x read zeros: their terms are never visited).
  ;; Summation order per element: chunk by chunk, within a chunk image, row, column.
  ;; Only the block of df with global rows R = p*kw*C + r in [r0, r1) and output columns in [o0, o1) (o0, o1 multiples of 4) is
  ;; zeroed and computed, so two threads may compute disjoint blocks of one df at once; an element's sum is the same whatever
  ;; the block (each lane's accumulator sees the same products in the same order; the pairing of rows and the width of the
  ;; column blocks only decide which lanes share a loop).
  (func (export "conv_filter_grad") (param $x i32) (param $dy i32) (param $b i32) (param $h i32) (param $w i32) (param $c i32)
    (param $ho i32) (param $wo i32) (param $o i32) (param $kh i32) (param $kw i32) (param $s i32) (param $top i32) (param $left i32)
    (param $nb i32) (param $df i32) (param $r0 i32) (param $r1 i32) (param $o0 i32) (param $o1 i32)
    (local $b0 i32) (local $n i32) (local $p i32) (local $ilo i32) (local $ihi i32) (local $r i32) (local $q i32) (local $q2 i32) (local $jlo i32) (local $jhi i32)
    (local $rows i32) (local $kwc i32) (local $xsb i32) (local $xsi i32) (local $xsj i32) (local $dsb i32) (local $dsi i32) (local $dsj i32)
    (local $rs i32) (local $re i32) (local $oc i32) (local $ob i32)
    (local.set $oc (i32.sub (local.get $o1) (local.get $o0)))
    (local.set $ob (i32.shl (local.get $o0) (i32.const 2)))
    ;; zero the block: row by row, the columns [o0, o1)
    (local.set $r (local.get $r0))
    (block $zero_done (loop $zero
      (br_if $zero_done (i32.ge_u (local.get $r) (local.get $r1)))
      (memory.fill (i32.add (local.get $df) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $o)) (local.get $o0)) (i32.const 2))) (i32.const 0)
        (i32.shl (local.get $oc) (i32.const 2)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $zero)))
    (local.set $xsj (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2)))
    (local.set $xsi (i32.mul (local.get $xsj) (local.get $w)))
    (local.set $xsb (i32.shl (i32.mul (i32.mul (local.get $h) (local.get $w)) (local.get $c)) (i32.const 2)))
    (local.set $dsj (i32.shl (local.get $o) (i32.const 2)))
    (local.set $dsi (i32.mul (local.get $dsj) (local.get $wo)))
    (local.set $dsb (i32.mul (local.get $dsi) (local.get $ho)))
    (local.set $kwc (i32.mul (local.get $kw) (local.get $c)))
    (local.set $b0 (i32.const 0))
    (loop $chunks
      (local.set $n (i32.sub (local.get $b) (local.get $b0)))
      (local.set $n (select (local.get $nb) (local.get $n) (i32.lt_u (local.get $nb) (local.get $n))))
      (local.set $p (i32.const 0))
      (loop $taps_p
        (local.set $ilo (call $win_lo (i32.sub (local.get $top) (local.get $p)) (local.get $s)))
        (local.set $ihi (call $win_hi (i32.sub (local.get $top) (local.get $p)) (local.get $h) (local.get $s) (local.get $ho)))
        (if (i32.lt_s (local.get $ilo) (local.get $ihi)) (then
          ;; this tap row's part of [r0, r1): r in [rs, re)
          (local.set $rs (i32.sub (local.get $r0) (i32.mul (local.get $p) (local.get $kwc))))
          (local.set $rs (select (local.get $rs) (i32.const 0) (i32.gt_s (local.get $rs) (i32.const 0))))
          (local.set $re (i32.sub (local.get $r1) (i32.mul (local.get $p) (local.get $kwc))))
          (local.set $re (select (local.get $kwc) (local.get $re) (i32.gt_s (local.get $re) (local.get $kwc))))
          (local.set $r (local.get $rs))
          (block $rows_done (loop $rows_loop
            (br_if $rows_done (i32.ge_s (local.get $r) (local.get $re)))
            (local.set $q (i32.div_u (local.get $r) (local.get $c)))
            (local.set $jlo (call $win_lo (i32.sub (local.get $left) (local.get $q)) (local.get $s)))
            (local.set $jhi (call $win_hi (i32.sub (local.get $left) (local.get $q)) (local.get $w) (local.get $s) (local.get $wo)))
            (local.set $rows (i32.const 1))
            (if (i32.lt_s (i32.add (local.get $r) (i32.const 1)) (local.get $re)) (then
              (local.set $q2 (i32.div_u (i32.add (local.get $r) (i32.const 1)) (local.get $c)))
              (if (i32.or (i32.eq (local.get $q2) (local.get $q))
                    (i32.and (i32.eq (local.get $jlo) (call $win_lo (i32.sub (local.get $left) (local.get $q2)) (local.get $s)))
                             (i32.eq (local.get $jhi) (call $win_hi (i32.sub (local.get $left) (local.get $q2)) (local.get $w) (local.get $s) (local.get $wo)))))
                (then (local.set $rows (i32.const 2))))))
            (if (i32.lt_s (local.get $jlo) (local.get $jhi)) (then
              (call $fg_outputs (local.get $rows)
                ;; x at (b0, s*ilo + p - top, s*jlo - left, 0) + r elements, dy at (b0, ilo, jlo, 0), df at row (p, r)
                (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (i32.add
                  (i32.mul (i32.add (i32.mul (local.get $b0) (local.get $h)) (i32.sub (i32.add (i32.mul (local.get $s) (local.get $ilo)) (local.get $p)) (local.get $top))) (local.get $w))
                  (i32.sub (i32.mul (local.get $s) (local.get $jlo)) (local.get $left))) (local.get $c)) (local.get $r)) (i32.const 2)))
                (i32.add (i32.add (local.get $dy) (local.get $ob)) (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b0) (local.get $ho)) (local.get $ilo)) (local.get $wo)) (local.get $jlo)) (local.get $dsj)))
                (local.get $n) (i32.sub (local.get $ihi) (local.get $ilo)) (i32.sub (local.get $jhi) (local.get $jlo)) (local.get $xsb) (local.get $xsi) (local.get $xsj)
                (local.get $dsb) (local.get $dsi) (local.get $dsj)
                (i32.add (i32.add (local.get $df) (local.get $ob)) (i32.mul (i32.add (i32.mul (local.get $p) (local.get $kwc)) (local.get $r)) (local.get $dsj))) (local.get $dsj) (local.get $oc))))
            (local.set $r (i32.add (local.get $r) (local.get $rows)))
            (br $rows_loop)))))
        (br_if $taps_p (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 1))) (local.get $kh))))
      (br_if $chunks (i32.lt_u (local.tee $b0 (i32.add (local.get $b0) (local.get $nb))) (local.get $b)))))

  ;; ---- conv forward micro-kernels: R pixels (1 or 2, x runs $xd bytes apart) x 4V outputs, accumulated over $np tap rows
  ;; (x $xsp and f $fsp bytes apart) of $n consecutive elements each (x 4 bytes, f rows $fs bytes apart), stored at $oa (and
  ;; $oa + $od). 2 x 4: 8 accumulators + 2 splats + 1 filter vector, as fg_2x4. np, n >= 1 (the caller checks).
  (func $cf_2x4 (param $xa i32) (param $xd i32) (param $np i32) (param $xsp i32) (param $n i32) (param $fa i32) (param $fsp i32) (param $fs i32) (param $oa i32) (param $od i32)
    (local $xp i32) (local $fp i32) (local $xe i32) (local $a00 v128) (local $a01 v128) (local $a02 v128) (local $a03 v128) (local $a10 v128) (local $a11 v128) (local $a12 v128) (local $a13 v128) (local $x0 v128) (local $x1 v128) (local $d v128)
    (loop $taps
      (local.set $xp (local.get $xa))
      (local.set $fp (local.get $fa))
      (local.set $xe (i32.add (local.get $xa) (i32.shl (local.get $n) (i32.const 2))))
      (loop $elems
        (local.set $x0 (v128.load32_splat (local.get $xp)))
        (local.set $x1 (v128.load32_splat (i32.add (local.get $xp) (local.get $xd))))
        (local.set $d (v128.load (local.get $fp)))
        (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $x0) (local.get $d))))
        (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $x1) (local.get $d))))
        (local.set $d (v128.load offset=16 (local.get $fp)))
        (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $x0) (local.get $d))))
        (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $x1) (local.get $d))))
        (local.set $d (v128.load offset=32 (local.get $fp)))
        (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $x0) (local.get $d))))
        (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $x1) (local.get $d))))
        (local.set $d (v128.load offset=48 (local.get $fp)))
        (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $x0) (local.get $d))))
        (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $x1) (local.get $d))))
        (local.set $fp (i32.add (local.get $fp) (local.get $fs)))
        (br_if $elems (i32.ne (local.tee $xp (i32.add (local.get $xp) (i32.const 4))) (local.get $xe))))
      (local.set $xa (i32.add (local.get $xa) (local.get $xsp)))
      (local.set $fa (i32.add (local.get $fa) (local.get $fsp)))
      (br_if $taps (local.tee $np (i32.sub (local.get $np) (i32.const 1)))))
    (v128.store (local.get $oa) (local.get $a00))
    (v128.store offset=16 (local.get $oa) (local.get $a01))
    (v128.store offset=32 (local.get $oa) (local.get $a02))
    (v128.store offset=48 (local.get $oa) (local.get $a03))
    (v128.store (i32.add (local.get $oa) (local.get $od)) (local.get $a10))
    (v128.store offset=16 (i32.add (local.get $oa) (local.get $od)) (local.get $a11))
    (v128.store offset=32 (i32.add (local.get $oa) (local.get $od)) (local.get $a12))
    (v128.store offset=48 (i32.add (local.get $oa) (local.get $od)) (local.get $a13)))
  (func $cf_1x4 (param $xa i32) (param $xd i32) (param $np i32) (param $xsp i32) (param $n i32) (param $fa i32) (param $fsp i32) (param $fs i32) (param $oa i32) (param $od i32)
    (local $xp i32) (local $fp i32) (local $xe i32) (local $a00 v128) (local $a01 v128) (local $a02 v128) (local $a03 v128) (local $x0 v128) (local $d v128)
    (loop $taps
      (local.set $xp (local.get $xa))
      (local.set $fp (local.get $fa))
      (local.set $xe (i32.add (local.get $xa) (i32.shl (local.get $n) (i32.const 2))))
      (loop $elems
        (local.set $x0 (v128.load32_splat (local.get $xp)))
        (local.set $d (v128.load (local.get $fp)))
        (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $x0) (local.get $d))))
        (local.set $d (v128.load offset=16 (local.get $fp)))
        (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $x0) (local.get $d))))
        (local.set $d (v128.load offset=32 (local.get $fp)))
        (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $x0) (local.get $d))))
        (local.set $d (v128.load offset=48 (local.get $fp)))
        (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $x0) (local.get $d))))
        (local.set $fp (i32.add (local.get $fp) (local.get $fs)))
        (br_if $elems (i32.ne (local.tee $xp (i32.add (local.get $xp) (i32.const 4))) (local.get $xe))))
      (local.set $xa (i32.add (local.get $xa) (local.get $xsp)))
      (local.set $fa (i32.add (local.get $fa) (local.get $fsp)))
      (br_if $taps (local.tee $np (i32.sub (local.get $np) (i32.const 1)))))
    (v128.store (local.get $oa) (local.get $a00))
    (v128.store offset=16 (local.get $oa) (local.get $a01))
    (v128.store offset=32 (local.get $oa) (local.get $a02))
    (v128.store offset=48 (local.get $oa) (local.get $a03)))
  (func $cf_2x1 (param $xa i32) (param $xd i32) (param $np i32) (param $xsp i32) (param $n i32) (param $fa i32) (param $fsp i32) (param $fs i32) (param $oa i32) (param $od i32)
    (local $xp i32) (local $fp i32) (local $xe i32) (local $a00 v128) (local $a10 v128) (local $x0 v128) (local $x1 v128) (local $d v128)
    (loop $taps
      (local.set $xp (local.get $xa))
      (local.set $fp (local.get $fa))
      (local.set $xe (i32.add (local.get $xa) (i32.shl (local.get $n) (i32.const 2))))
      (loop $elems
        (local.set $x0 (v128.load32_splat (local.get $xp)))
        (local.set $x1 (v128.load32_splat (i32.add (local.get $xp) (local.get $xd))))
        (local.set $d (v128.load (local.get $fp)))
        (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $x0) (local.get $d))))
        (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $x1) (local.get $d))))
        (local.set $fp (i32.add (local.get $fp) (local.get $fs)))
        (br_if $elems (i32.ne (local.tee $xp (i32.add (local.get $xp) (i32.const 4))) (local.get $xe))))
      (local.set $xa (i32.add (local.get $xa) (local.get $xsp)))
      (local.set $fa (i32.add (local.get $fa) (local.get $fsp)))
      (br_if $taps (local.tee $np (i32.sub (local.get $np) (i32.const 1)))))
    (v128.store (local.get $oa) (local.get $a00))
    (v128.store (i32.add (local.get $oa) (local.get $od)) (local.get $a10)))
  (func $cf_1x1 (param $xa i32) (param $xd i32) (param $np i32) (param $xsp i32) (param $n i32) (param $fa i32) (param $fsp i32) (param $fs i32) (param $oa i32) (param $od i32)
    (local $xp i32) (local $fp i32) (local $xe i32) (local $a00 v128) (local $x0 v128) (local $d v128)
    (loop $taps
      (local.set $xp (local.get $xa))
      (local.set $fp (local.get $fa))
      (local.set $xe (i32.add (local.get $xa) (i32.shl (local.get $n) (i32.const 2))))
      (loop $elems
        (local.set $x0 (v128.load32_splat (local.get $xp)))
        (local.set $d (v128.load (local.get $fp)))
        (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $x0) (local.get $d))))
        (local.set $fp (i32.add (local.get $fp) (local.get $fs)))
        (br_if $elems (i32.ne (local.tee $xp (i32.add (local.get $xp) (i32.const 4))) (local.get $xe))))
      (local.set $xa (i32.add (local.get $xa) (local.get $xsp)))
      (local.set $fa (i32.add (local.get $fa) (local.get $fsp)))
      (br_if $taps (local.tee $np (i32.sub (local.get $np) (i32.const 1)))))
    (v128.store (local.get $oa) (local.get $a00)))


  ;; The pixels' outputs [oo, oo + 4V) of the columns j in [j0, j1) of one output row, one or two pixels at a time: $vw = 16
  ;; (V = 4) or 4 (V = 1); pixel j's outputs at orow + j*ops.
  ;; Pixel j reads the taps p in [plo, plo + np) (the caller's row window) and q in [qlo, qhi) = [max(0, left - s*j),
  ;; min(kw, w + left - s*j)); for one p its terms (q, c) are consecutive in x and in f's rows, so the micro-kernel walks
  ;; n = (qhi - qlo)*C elements. Two neighbours that both see every q share one call (their x runs are s*C apart);
  ;; every other pixel is computed alone, a pixel that sees no tap is zero. Order per output: p, then q, then c, from 0.
  (func $cf_row (param $vw i32) (param $xrow i32) (param $frow i32) (param $orow i32) (param $np i32) (param $w i32) (param $c i32) (param $j0 i32)
    (param $j1 i32) (param $ops i32) (param $o i32) (param $kw i32) (param $s i32) (param $left i32) (param $xsp i32) (param $fsp i32)
    (local $j i32) (local $qlo i32) (local $qhi i32) (local $xa i32) (local $fa i32) (local $oa i32) (local $n i32) (local $xd i32) (local $fs i32)
    (local.set $xd (i32.shl (i32.mul (local.get $s) (local.get $c)) (i32.const 2)))
    (local.set $fs (i32.shl (local.get $o) (i32.const 2)))
    (local.set $j (local.get $j0))
    (block $done (loop $cols
      (br_if $done (i32.ge_s (local.get $j) (local.get $j1)))
      (local.set $qlo (i32.sub (local.get $left) (i32.mul (local.get $s) (local.get $j))))
      (local.set $qlo (select (local.get $qlo) (i32.const 0) (i32.gt_s (local.get $qlo) (i32.const 0))))
      (local.set $qhi (i32.sub (i32.add (local.get $w) (local.get $left)) (i32.mul (local.get $s) (local.get $j))))
      (local.set $qhi (select (local.get $kw) (local.get $qhi) (i32.gt_s (local.get $qhi) (local.get $kw))))
      (local.set $oa (i32.add (local.get $orow) (i32.mul (local.get $j) (local.get $ops))))
      (if (i32.ge_s (local.get $qlo) (local.get $qhi))
        (then
          (memory.fill (local.get $oa) (i32.const 0) (i32.shl (local.get $vw) (i32.const 2)))
          (local.set $j (i32.add (local.get $j) (i32.const 1))))
        (else
          (local.set $xa (i32.add (local.get $xrow) (i32.shl (i32.mul (i32.add (i32.sub (i32.mul (local.get $s) (local.get $j)) (local.get $left)) (local.get $qlo)) (local.get $c)) (i32.const 2))))
          (local.set $fa (i32.add (local.get $frow) (i32.mul (i32.mul (local.get $qlo) (local.get $c)) (local.get $fs))))
          (local.set $n (i32.mul (i32.sub (local.get $qhi) (local.get $qlo)) (local.get $c)))
          (if (i32.and (i32.and (i32.eqz (local.get $qlo)) (i32.eq (local.get $qhi) (local.get $kw)))
                (i32.and (i32.lt_s (i32.add (local.get $j) (i32.const 1)) (local.get $j1))
                  (i32.ge_s (i32.sub (i32.add (local.get $w) (local.get $left)) (i32.mul (local.get $s) (i32.add (local.get $j) (i32.const 1)))) (local.get $kw))))
            (then
              (if (i32.eq (local.get $vw) (i32.const 16))
                (then (call $cf_2x4 (local.get $xa) (local.get $xd) (local.get $np) (local.get $xsp) (local.get $n) (local.get $fa) (local.get $fsp) (local.get $fs) (local.get $oa) (local.get $ops)))
                (else (call $cf_2x1 (local.get $xa) (local.get $xd) (local.get $np) (local.get $xsp) (local.get $n) (local.get $fa) (local.get $fsp) (local.get $fs) (local.get $oa) (local.get $ops))))
              (local.set $j (i32.add (local.get $j) (i32.const 2))))
            (else
              (if (i32.eq (local.get $vw) (i32.const 16))
                (then (call $cf_1x4 (local.get $xa) (local.get $xd) (local.get $np) (local.get $xsp) (local.get $n) (local.get $fa) (local.get $fsp) (local.get $fs) (local.get $oa) (local.get $ops)))
                (else (call $cf_1x1 (local.get $xa) (local.get $xd) (local.get $np) (local.get $xsp) (local.get $n) (local.get $fa) (local.get $fsp) (local.get $fs) (local.get $oa) (local.get $ops))))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))))))
      (br $cols))))

  ;; ---- conv forward (fused-kernels.ts, Conv2D served here) ----
  ;; y[b, i, j, o] = sum over (p, q, c) of xbar[b, s*i + p, s*j + q, c] * f[p, q, c, o]    (x NHWC [B, H, W, C], f HWIO
  ;; [kh, kw, C, O], y [B, Ho, Wo, O], O a multiple of 4), xbar = x shifted by (top, left), zero outside (the terms of taps
  ;; outside x are never visited). Only the images [b0, b1) are computed, so two threads may share one call by images; an
  ;; output's sum is the same whatever the call, the pairing of pixels or the width of the output block (each lane of an
  ;; accumulator sees its own products in the order p, q, c, from +0). Per image, block of 16 outputs (then 4), output row:
  ;; the block's filter slice (kh*kw*C*16 floats) stays in cache while the image's rows stream past it.
  (func (export "conv_forward") (param $x i32) (param $f i32) (param $h i32) (param $w i32) (param $c i32) (param $ho i32) (param $wo i32) (param $o i32)
    (param $kh i32) (param $kw i32) (param $s i32) (param $top i32) (param $left i32) (param $out i32) (param $b0 i32) (param $b1 i32)
    (call $conv_window (local.get $x) (local.get $f) (local.get $h) (local.get $w) (local.get $c) (local.get $o) (local.get $kh) (local.get $kw)
      (local.get $s) (local.get $top) (local.get $left) (local.get $out) (local.get $b0) (local.get $b1)
      (i32.const 0) (local.get $ho) (i32.const 0) (local.get $wo) (i32.shl (local.get $o) (i32.const 2))
      (i32.shl (i32.mul (local.get $wo) (local.get $o)) (i32.const 2)) (i32.shl (i32.mul (i32.mul (local.get $ho) (local.get $wo)) (local.get $o)) (i32.const 2))))

  ;; The same sums on a window of the output grid written anywhere: only the rows i in [i0, i1) and columns j in [j0, j1)
  ;; (i0 < i1, j0 < j1) of the images [b0, b1), output (b, i, j, o) at out + b*obs + i*ors + j*ops + 4*o. conv_forward is the
  ;; whole grid, densely; a strided transposed conv writes each sub-pixel phase straight into its interleaved places
  ;; (fused-kernels.ts, ScoreSdeTransposeConv), which only moves where a sum is stored, never how it is summed.
  (func $conv_window (export "conv_forward_window") (param $x i32) (param $f i32) (param $h i32) (param $w i32) (param $c i32) (param $o i32)
    (param $kh i32) (param $kw i32) (param $s i32) (param $top i32) (param $left i32) (param $out i32) (param $b0 i32) (param $b1 i32)
    (param $i0 i32) (param $i1 i32) (param $j0 i32) (param $j1 i32) (param $ops i32) (param $ors i32) (param $obs i32)
    (local $b i32) (local $oo i32) (local $vw i32) (local $i i32) (local $plo i32) (local $phi i32) (local $xsp i32) (local $fsp i32) (local $orow i32)
    (local.set $xsp (i32.shl (i32.mul (local.get $w) (local.get $c)) (i32.const 2)))
    (local.set $fsp (i32.shl (i32.mul (i32.mul (local.get $kw) (local.get $c)) (local.get $o)) (i32.const 2)))
    (local.set $b (local.get $b0))
    (block $images_done (loop $images
      (br_if $images_done (i32.ge_s (local.get $b) (local.get $b1)))
      (local.set $oo (i32.const 0))
      (block $blocks_done (loop $blocks
        (br_if $blocks_done (i32.ge_s (local.get $oo) (local.get $o)))
        (local.set $vw (select (i32.const 16) (i32.const 4) (i32.le_s (i32.add (local.get $oo) (i32.const 16)) (local.get $o))))
        (local.set $i (local.get $i0))
        (loop $rows
          (local.set $plo (i32.sub (local.get $top) (i32.mul (local.get $s) (local.get $i))))
          (local.set $plo (select (local.get $plo) (i32.const 0) (i32.gt_s (local.get $plo) (i32.const 0))))
          (local.set $phi (i32.sub (i32.add (local.get $h) (local.get $top)) (i32.mul (local.get $s) (local.get $i))))
          (local.set $phi (select (local.get $kh) (local.get $phi) (i32.gt_s (local.get $phi) (local.get $kh))))
          (local.set $orow (i32.add (i32.add (local.get $out) (i32.mul (local.get $b) (local.get $obs)))
            (i32.add (i32.mul (local.get $i) (local.get $ors)) (i32.shl (local.get $oo) (i32.const 2)))))
          (if (i32.lt_s (local.get $plo) (local.get $phi))
            (then
              (call $cf_row (local.get $vw)
                ;; x at (b, s*i + plo - top, 0, 0); f at (plo, 0, 0, oo)
                (i32.add (local.get $x) (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (i32.sub (i32.add (i32.mul (local.get $s) (local.get $i)) (local.get $plo)) (local.get $top))) (local.get $xsp)))
                (i32.add (i32.add (local.get $f) (i32.mul (local.get $plo) (local.get $fsp))) (i32.shl (local.get $oo) (i32.const 2)))
                (local.get $orow) (i32.sub (local.get $phi) (local.get $plo)) (local.get $w) (local.get $c) (local.get $j0) (local.get $j1) (local.get $ops)
                (local.get $o) (local.get $kw) (local.get $s) (local.get $left)
                (local.get $xsp) (local.get $fsp)))
            (else
              ;; no tap row inside x: the row's outputs are zero
              (local.set $plo (local.get $j0))
              (block $z_done (loop $z
                (br_if $z_done (i32.ge_s (local.get $plo) (local.get $j1)))
                (memory.fill (i32.add (local.get $orow) (i32.mul (local.get $plo) (local.get $ops))) (i32.const 0) (i32.shl (local.get $vw) (i32.const 2)))
                (local.set $plo (i32.add (local.get $plo) (i32.const 1)))
                (br $z)))))
          (br_if $rows (i32.lt_s (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $i1))))
        (local.set $oo (i32.add (local.get $oo) (local.get $vw)))
        (br $blocks)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $images))))
)
