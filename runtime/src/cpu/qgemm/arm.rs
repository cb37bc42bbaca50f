//! aarch64 kernels: plain NEON (every ARMv8-A: widening multiplies, pairwise accumulation into
//! `i32`), the dot-product extension's `sdot` (ARMv8.2+, most phones since 2018) and the int8
//! matrix-multiply extension's `smmla` (ARMv8.6+: a 2×8 by 8×2 product per instruction), all
//! exact for every pair of `i8` codes. `sdot` and `smmla` are written in `asm!`: their
//! intrinsics are not stable Rust.

use std::arch::aarch64::*;

use super::Kernel;

pub(super) fn kernels() -> Vec<Kernel> {
    let mut list = Vec::new();
    if std::arch::is_aarch64_feature_detected!("i8mm") {
        list.push(Kernel { name: "neon-i8mm", offset: false, max_bits: 8, step: 8, run: gemm_i8mm, scaled: None });
    }
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        list.push(Kernel { name: "neon-dotprod", offset: false, max_bits: 8, step: 16, run: gemm_dotprod, scaled: Some(scaled_dotprod) });
    }
    if std::arch::is_aarch64_feature_detected!("neon") {
        list.push(Kernel { name: "neon", offset: false, max_bits: 8, step: 16, run: gemm_neon, scaled: Some(scaled_neon) });
    }
    list
}

/// `acc += x · w` on 16 codes: products fit `i16` (at most 128²), pairs are added into `i32`.
#[target_feature(enable = "neon")]
unsafe fn mac_neon(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    let lo = vmull_s8(vget_low_s8(x), vget_low_s8(w));
    let hi = vmull_high_s8(x, w);
    vpadalq_s16(vpadalq_s16(acc, lo), hi)
}

/// `acc += x · w` on 16 codes, four at a time per lane.
#[target_feature(enable = "neon,dotprod")]
unsafe fn mac_dotprod(mut acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    std::arch::asm!(
        "sdot {acc:v}.4s, {x:v}.16b, {w:v}.16b",
        acc = inout(vreg) acc, x = in(vreg) x, w = in(vreg) w,
        options(pure, nomem, nostack),
    );
    acc
}

#[target_feature(enable = "neon")]
unsafe fn add(a: int32x4_t, b: int32x4_t) -> int32x4_t {
    vaddq_s32(a, b)
}

/// The lane sums of four vectors.
#[target_feature(enable = "neon")]
unsafe fn sum4(v: [int32x4_t; 4]) -> [i32; 4] {
    let s = vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3]));
    let mut out = [0i32; 4];
    vst1q_s32(out.as_mut_ptr(), s);
    out
}

#[target_feature(enable = "neon")]
unsafe fn load<T>(p: *const T) -> int8x16_t {
    vld1q_s8(p as *const i8)
}

/// See [`super::Kernel::run`].
#[target_feature(enable = "neon")]
unsafe fn gemm_neon(a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, g, out,
        rows: 2, step: 16, flush: usize::MAX / 32, zero: vdupq_n_s32(0), load_a: load,
        load_b: load, mac: mac_neon, widen: add, sum4: sum4, tail: super::tail_i8)
}

/// See [`super::Kernel::run`].
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemm_dotprod(a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, g, out,
        rows: 2, step: 16, flush: usize::MAX / 32, zero: vdupq_n_s32(0), load_a: load,
        load_b: load, mac: mac_dotprod, widen: add, sum4: sum4, tail: super::tail_i8)
}

/// `acc += [x₀; x₁] · [w₀; w₁]ᵀ`: `x` holds two rows of 8 codes, `w` two columns of 8 codes,
/// `acc` the 2×2 result row-major.
#[target_feature(enable = "neon,i8mm")]
unsafe fn mac_i8mm(mut acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    std::arch::asm!(
        "smmla {acc:v}.4s, {x:v}.16b, {w:v}.16b",
        acc = inout(vreg) acc, x = in(vreg) x, w = in(vreg) w,
        options(pure, nomem, nostack),
    );
    acc
}

/// 2×2 output tiles, 8 codes per step; an odd last row or column goes through `gemm_neon`.
/// See [`super::Kernel::run`].
#[target_feature(enable = "neon,i8mm")]
unsafe fn gemm_i8mm(a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
    use super::tail_i8 as tail;
    let gpr = super::groups(k, g);
    let (m2, n2) = (m / 2 * 2, n / 2 * 2);
    let pair = |p: *const u8, q: *const u8| vcombine_s8(vld1_s8(p as *const i8), vld1_s8(q as *const i8));
    let pair_b = |p: *const i8, q: *const i8| vcombine_s8(vld1_s8(p), vld1_s8(q));
    for i in (0..m2).step_by(2) {
        let (r0, r1) = (&a[i * k..(i + 1) * k], &a[(i + 1) * k..(i + 2) * k]);
        for j in (0..n2).step_by(2) {
            let (c0, c1) = (&b[j * k..(j + 1) * k], &b[(j + 1) * k..(j + 2) * k]);
            for q in 0..gpr {
                let (g0, g1) = (q * g, ((q + 1) * g).min(k));
                let body = g0 + (g1 - g0) / 8 * 8;
                let mut acc = vdupq_n_s32(0);
                let mut t = g0;
                while t < body {
                    let x = pair(r0.as_ptr().add(t), r1.as_ptr().add(t));
                    let w = pair_b(c0.as_ptr().add(t), c1.as_ptr().add(t));
                    acc = mac_i8mm(acc, x, w);
                    t += 8;
                }
                let (tr0, tr1) = (&r0[body..g1], &r1[body..g1]);
                let (tc0, tc1) = (&c0[body..g1], &c1[body..g1]);
                let at = |r: usize, c: usize| ((i + r) * n + j + c) * gpr + q;
                out[at(0, 0)] = vgetq_lane_s32(acc, 0) + tail(tr0, tc0);
                out[at(0, 1)] = vgetq_lane_s32(acc, 1) + tail(tr0, tc1);
                out[at(1, 0)] = vgetq_lane_s32(acc, 2) + tail(tr1, tc0);
                out[at(1, 1)] = vgetq_lane_s32(acc, 3) + tail(tr1, tc1);
            }
        }
    }
    let mut one = vec![0i32; gpr];
    if n2 < n {
        // The last column, for the paired rows.
        for i in 0..m2 {
            gemm_neon(&a[i * k..(i + 1) * k], &b[n2 * k..], 1, 1, k, g, &mut one);
            out[(i * n + n2) * gpr..(i * n + n) * gpr].copy_from_slice(&one);
        }
    }
    if m2 < m {
        // The last row, every column.
        gemm_neon(&a[m2 * k..], b, 1, n, k, g, &mut out[m2 * n * gpr..]);
    }
}

// The scaled forms (`Kernel::run_scaled`). A step of 16 codes never spans two groups (groups
// have at least 16 columns), so a region's step is one broadcast.

fn no_idx(_g: usize) {}

#[target_feature(enable = "neon")]
unsafe fn scale_dup(p: *const f32, _idx: ()) -> float32x4_t {
    vld1q_dup_f32(p)
}

#[target_feature(enable = "neon")]
unsafe fn cvt(v: int32x4_t) -> float32x4_t {
    vcvtq_f32_s32(v)
}

#[target_feature(enable = "neon")]
unsafe fn fma(acc: float32x4_t, v: float32x4_t, s: float32x4_t) -> float32x4_t {
    vfmaq_f32(acc, v, s)
}

#[target_feature(enable = "neon")]
unsafe fn sum4f(v: [float32x4_t; 4]) -> [f32; 4] {
    let s = vpaddq_f32(vpaddq_f32(v[0], v[1]), vpaddq_f32(v[2], v[3]));
    let mut out = [0f32; 4];
    vst1q_f32(out.as_mut_ptr(), s);
    out
}

/// See [`super::Kernel::run_scaled`].
#[target_feature(enable = "neon")]
unsafe fn scaled_neon(a: &[u8], b: &[i8], s: &[f32], m: usize, n: usize, k: usize, g: usize, out: &mut [f32]) {
    tiled_gemm_scaled!(a, b, s, m, n, k, g, out,
        rows: 2, step: 16, flush: usize::MAX / 32, zero: vdupq_n_s32(0), fzero: vdupq_n_f32(0.0),
        idx: no_idx, load_a: load, load_b: load, mac: mac_neon, to_f32: cvt, scale: scale_dup,
        fma: fma, sum4: sum4f, tail: super::tail_i8)
}

/// See [`super::Kernel::run_scaled`].
#[target_feature(enable = "neon,dotprod")]
unsafe fn scaled_dotprod(a: &[u8], b: &[i8], s: &[f32], m: usize, n: usize, k: usize, g: usize, out: &mut [f32]) {
    tiled_gemm_scaled!(a, b, s, m, n, k, g, out,
        rows: 2, step: 16, flush: usize::MAX / 32, zero: vdupq_n_s32(0), fzero: vdupq_n_f32(0.0),
        idx: no_idx, load_a: load, load_b: load, mac: mac_dotprod, to_f32: cvt, scale: scale_dup,
        fma: fma, sum4: sum4f, tail: super::tail_i8)
}
