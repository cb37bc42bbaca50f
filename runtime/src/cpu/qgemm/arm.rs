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
        list.push(Kernel { name: "neon-i8mm", run: gemm_i8mm });
    }
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        list.push(Kernel { name: "neon-dotprod", run: gemm_dotprod });
    }
    if std::arch::is_aarch64_feature_detected!("neon") {
        list.push(Kernel { name: "neon", run: gemm_neon });
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

/// See [`super::Kernel::gemm`].
#[target_feature(enable = "neon")]
unsafe fn gemm_neon(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, out,
        step: 16, zero: vdupq_n_s32(0), load: vld1q_s8, mac: mac_neon, sum: vaddvq_s32)
}

/// See [`super::Kernel::gemm`].
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemm_dotprod(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, out,
        step: 16, zero: vdupq_n_s32(0), load: vld1q_s8, mac: mac_dotprod, sum: vaddvq_s32)
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
/// See [`super::Kernel::gemm`].
#[target_feature(enable = "neon,i8mm")]
unsafe fn gemm_i8mm(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]) {
    let body = k / 8 * 8;
    let (m2, n2) = (m / 2 * 2, n / 2 * 2);
    let pair = |p: *const i8, q: *const i8| vcombine_s8(vld1_s8(p), vld1_s8(q));
    for i in (0..m2).step_by(2) {
        let (r0, r1) = (&a[i * k..(i + 1) * k], &a[(i + 1) * k..(i + 2) * k]);
        for j in (0..n2).step_by(2) {
            let (c0, c1) = (&b[j * k..(j + 1) * k], &b[(j + 1) * k..(j + 2) * k]);
            let mut acc = vdupq_n_s32(0);
            let mut t = 0;
            while t < body {
                let x = pair(r0.as_ptr().add(t), r1.as_ptr().add(t));
                let w = pair(c0.as_ptr().add(t), c1.as_ptr().add(t));
                acc = mac_i8mm(acc, x, w);
                t += 8;
            }
            let (tr0, tr1, tc0, tc1) = (&r0[body..], &r1[body..], &c0[body..], &c1[body..]);
            out[i * n + j] = vgetq_lane_s32(acc, 0) + super::tail(tr0, tc0);
            out[i * n + j + 1] = vgetq_lane_s32(acc, 1) + super::tail(tr0, tc1);
            out[(i + 1) * n + j] = vgetq_lane_s32(acc, 2) + super::tail(tr1, tc0);
            out[(i + 1) * n + j + 1] = vgetq_lane_s32(acc, 3) + super::tail(tr1, tc1);
        }
    }
    let mut one = [0i32];
    if n2 < n {
        // The last column, for the paired rows.
        for i in 0..m2 {
            gemm_neon(&a[i * k..(i + 1) * k], &b[n2 * k..], 1, 1, k, &mut one);
            out[i * n + n2] = one[0];
        }
    }
    if m2 < m {
        // The last row, every column.
        gemm_neon(&a[m2 * k..], b, 1, n, k, &mut out[m2 * n..]);
    }
}
