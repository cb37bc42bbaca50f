//! aarch64 kernels: plain NEON (every ARMv8-A: widening multiplies, pairwise accumulation into
//! `i32`) and the dot-product extension's `sdot` (ARMv8.2+, most phones since 2018), both exact
//! for every pair of `i8` codes. `sdot` is written in `asm!`: its intrinsic is not stable Rust.

use std::arch::aarch64::*;

use super::Kernel;

pub(super) fn kernels() -> Vec<Kernel> {
    let mut list = Vec::new();
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        list.push(Kernel { name: "neon-dotprod", run: gemm_dotprod });
    }
    if std::arch::is_aarch64_feature_detected!("neon") {
        list.push(Kernel { name: "neon", run: gemm_neon });
    }
    list
}

/// Columns of `b` per pass: each loaded activation vector is used four times.
const COLS: usize = 4;

fn tail(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &w)| x as i32 * w as i32).sum()
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

/// The loop both kernels share, over a 16-code multiply-accumulate.
#[inline(always)]
unsafe fn gemm_with(
    a: &[i8],
    b: &[i8],
    m: usize,
    n: usize,
    k: usize,
    out: &mut [i32],
    mac: unsafe fn(int32x4_t, int8x16_t, int8x16_t) -> int32x4_t,
) {
    let body = k / 16 * 16;
    for i in 0..m {
        let row = &a[i * k..(i + 1) * k];
        let mut j = 0;
        while j < n {
            let cols = COLS.min(n - j);
            let mut acc = [vdupq_n_s32(0); COLS];
            let mut t = 0;
            while t < body {
                let x = vld1q_s8(row.as_ptr().add(t));
                for (c, acc) in acc.iter_mut().enumerate().take(cols) {
                    *acc = mac(*acc, x, vld1q_s8(b.as_ptr().add((j + c) * k + t)));
                }
                t += 16;
            }
            for (c, acc) in acc.iter().enumerate().take(cols) {
                let col = &b[(j + c) * k..(j + c + 1) * k];
                out[i * n + j + c] = vaddvq_s32(*acc) + tail(&row[body..], &col[body..]);
            }
            j += cols;
        }
    }
}

/// See [`super::Kernel::gemm`].
#[target_feature(enable = "neon")]
unsafe fn gemm_neon(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]) {
    gemm_with(a, b, m, n, k, out, mac_neon)
}

/// See [`super::Kernel::gemm`].
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemm_dotprod(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]) {
    gemm_with(a, b, m, n, k, out, mac_dotprod)
}
