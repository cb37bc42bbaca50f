//! aarch64 kernels on the packed layout: plain NEON (every ARMv8-A: widening multiplies,
//! pairwise accumulation into `i32`), the dot-product extension's `sdot` by element (ARMv8.2+,
//! most phones since 2018: 4 columns × a broadcast run of 4 codes per instruction) and the int8
//! matrix-multiply extension's `smmla` (ARMv8.6+: 2 rows × 8 codes by 8 codes × 2 columns per
//! instruction, on runs of 8), all exact for every pair of `i8` codes. `sdot` and `smmla` are
//! written in `asm!`: their intrinsics are not stable Rust.

use std::arch::aarch64::*;

use super::{Kernel, Packed, PANEL};

pub(super) fn kernels() -> Vec<Kernel> {
    let mut list = Vec::new();
    let kernel = |name, kgroup, run| Kernel { name, offset: false, max_bits: 8, kgroup, abytes: 1, tile: 1, run };
    if std::arch::is_aarch64_feature_detected!("i8mm") {
        list.push(kernel("neon-i8mm", 8, gemm_i8mm));
    }
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        list.push(kernel("neon-dotprod", 4, gemm_dotprod));
    }
    if std::arch::is_aarch64_feature_detected!("neon") {
        list.push(kernel("neon", 4, gemm_neon));
    }
    list
}

pub(super) fn float_kernels() -> Vec<super::FloatKernel> {
    let mut list = Vec::new();
    if std::arch::is_aarch64_feature_detected!("neon") {
        list.push(super::FloatKernel { name: "neon", run: float_neon });
    }
    list
}

/// `accf + steps · sums` for four columns.
#[target_feature(enable = "neon")]
unsafe fn finish(accf: float32x4_t, sums: int32x4_t, steps: *const f32) -> float32x4_t {
    vfmaq_f32(accf, vcvtq_f32_s32(sums), vld1q_f32(steps))
}

/// `acc += w · x[L]`: each lane of `acc` (a column) adds the dot product of its run of four
/// codes in `w` with run `L` of `x`.
#[target_feature(enable = "neon,dotprod")]
unsafe fn sdot_lane<const L: i32>(mut acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    std::arch::asm!(
        "sdot {acc:v}.4s, {w:v}.16b, {x:v}.4b[{l}]",
        acc = inout(vreg) acc, w = in(vreg) w, x = in(vreg) x, l = const L,
        options(pure, nomem, nostack),
    );
    acc
}

/// Two rows × 16 columns per tile, 16 positions (4 runs) per activation load.
/// See [`super::Kernel::run`].
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemm_dotprod(a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    const R: usize = 2;
    let op = out.as_mut_ptr();
    for p in p0..p1 {
        let wp = w.panel(p).as_ptr();
        let mut i = 0;
        while i < m {
            let rows = R.min(m - i);
            let ap = super::tile_rows::<u8, R>(a, w.kp, i, rows);
            let mut accf = [[vdupq_n_f32(0.0); 4]; R];
            for q in 0..w.gpr {
                let (t0, t1) = w.group_range(q);
                let mut acc = [[vdupq_n_s32(0); 4]; R];
                // Groups and the padded width are multiples of 16: whole activation loads.
                for t in (t0..t1).step_by(16) {
                    let x: [int8x16_t; R] = std::array::from_fn(|r| vld1q_s8(ap[r].add(t) as *const i8));
                    macro_rules! run {
                        ($l:literal) => {
                            for v in 0..4 {
                                let wv = vld1q_s8(wp.add((t + 4 * $l) * PANEL + 16 * v));
                                for r in 0..R {
                                    acc[r][v] = sdot_lane::<$l>(acc[r][v], wv, x[r]);
                                }
                            }
                        };
                    }
                    run!(0);
                    run!(1);
                    run!(2);
                    run!(3);
                }
                let (steps, _) = w.group_data(p, q);
                for r in 0..R {
                    for v in 0..4 {
                        accf[r][v] = finish(accf[r][v], acc[r][v], steps.as_ptr().add(4 * v));
                    }
                }
            }
            for r in 0..rows {
                for v in 0..4 {
                    // In bounds: `Kernel::run` checked the output's extent.
                    vst1q_f32(op.add((i + r) * ldo + (p - p0) * PANEL + 4 * v), accf[r][v]);
                }
            }
            i += rows;
        }
    }
}

/// One row × 16 columns per tile, one run of 4 positions per step: `vmull_s8` of each column
/// pair's runs with the run of `x` repeated, pairs of products added into `i32` lanes
/// (`[c₀ (t₀+t₁), c₀ (t₂+t₃), c₁ …]`), folded per column at the group's end.
/// See [`super::Kernel::run`].
#[target_feature(enable = "neon")]
unsafe fn gemm_neon(a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    let op = out.as_mut_ptr();
    for p in p0..p1 {
        let wp = w.panel(p).as_ptr();
        for i in 0..m {
            let ap = a[i * w.kp..].as_ptr();
            let mut accf = [vdupq_n_f32(0.0); 4];
            for q in 0..w.gpr {
                let (t0, t1) = w.group_range(q);
                let (mut lo, mut hi) = ([vdupq_n_s32(0); 4], [vdupq_n_s32(0); 4]);
                for t in (t0..t1).step_by(4) {
                    let x8 = vreinterpret_s8_u32(vdup_n_u32((ap.add(t) as *const u32).read_unaligned()));
                    let x16 = vcombine_s8(x8, x8);
                    for v in 0..4 {
                        let wv = vld1q_s8(wp.add(t * PANEL + 16 * v));
                        lo[v] = vpadalq_s16(lo[v], vmull_s8(vget_low_s8(wv), x8));
                        hi[v] = vpadalq_s16(hi[v], vmull_high_s8(wv, x16));
                    }
                }
                let (steps, _) = w.group_data(p, q);
                for v in 0..4 {
                    accf[v] = finish(accf[v], vpaddq_s32(lo[v], hi[v]), steps.as_ptr().add(4 * v));
                }
            }
            for v in 0..4 {
                vst1q_f32(op.add(i * ldo + (p - p0) * PANEL + 4 * v), accf[v]);
            }
        }
    }
}

/// `acc += [x₀; x₁] · [w₀; w₁]ᵀ`: `x` holds two rows of 8 codes, `w` two columns of 8 codes,
/// `acc` the 2×2 result row-major.
#[target_feature(enable = "neon,i8mm")]
unsafe fn smmla(mut acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    std::arch::asm!(
        "smmla {acc:v}.4s, {x:v}.16b, {w:v}.16b",
        acc = inout(vreg) acc, x = in(vreg) x, w = in(vreg) w,
        options(pure, nomem, nostack),
    );
    acc
}

/// Two rows × 16 columns per tile (eight 2×2 blocks), runs of 8 positions.
/// See [`super::Kernel::run`].
#[target_feature(enable = "neon,i8mm")]
unsafe fn gemm_i8mm(a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    let op = out.as_mut_ptr();
    for p in p0..p1 {
        let wp = w.panel(p).as_ptr();
        let mut i = 0;
        while i < m {
            let rows = 2.min(m - i);
            let ap = super::tile_rows::<u8, 2>(a, w.kp, i, rows);
            let mut accf = [vdupq_n_f32(0.0); 8];
            for q in 0..w.gpr {
                let (t0, t1) = w.group_range(q);
                let mut acc = [vdupq_n_s32(0); 8];
                for t in (t0..t1).step_by(8) {
                    let x = vcombine_s8(vld1_s8(ap[0].add(t) as *const i8), vld1_s8(ap[1].add(t) as *const i8));
                    for (v, acc) in acc.iter_mut().enumerate() {
                        *acc = smmla(*acc, x, vld1q_s8(wp.add(t * PANEL + 16 * v)));
                    }
                }
                let (steps, _) = w.group_data(p, q);
                for (v, accf) in accf.iter_mut().enumerate() {
                    // Lanes: row 0 columns 2v, 2v+1, then row 1 the same columns.
                    let s = vld1_f32(steps.as_ptr().add(2 * v));
                    *accf = vfmaq_f32(*accf, vcvtq_f32_s32(acc[v]), vcombine_f32(s, s));
                }
            }
            for (v, accf) in accf.iter().enumerate() {
                vst1_f32(op.add(i * ldo + (p - p0) * PANEL + 2 * v), vget_low_f32(*accf));
                if rows == 2 {
                    vst1_f32(op.add((i + 1) * ldo + (p - p0) * PANEL + 2 * v), vget_high_f32(*accf));
                }
            }
            i += rows;
        }
    }
}

/// Float activations × codes (runs of 1): four rows × 16 columns per tile, each position's 16
/// codes widened to `f32` once. See [`super::FloatKernel::run`].
#[target_feature(enable = "neon")]
unsafe fn float_neon(x: &[f32], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    const R: usize = 4;
    let (k, op) = (w.cols, out.as_mut_ptr());
    for p in p0..p1 {
        let wp = w.panel(p).as_ptr();
        let mut i = 0;
        while i < m {
            let rows = R.min(m - i);
            let xp = super::tile_rows::<f32, R>(x, k, i, rows);
            let mut acc = [[vdupq_n_f32(0.0); 4]; R];
            for q in 0..w.gpr {
                let (t0, t1) = w.group_range(q);
                let mut part = [[vdupq_n_f32(0.0); 4]; R];
                for t in t0..t1.min(k) {
                    let c = vld1q_s8(wp.add(t * PANEL));
                    let (lo, hi) = (vmovl_s8(vget_low_s8(c)), vmovl_high_s8(c));
                    let wv = [
                        vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))),
                        vcvtq_f32_s32(vmovl_high_s16(lo)),
                        vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))),
                        vcvtq_f32_s32(vmovl_high_s16(hi)),
                    ];
                    for r in 0..R {
                        let xv = *xp[r].add(t);
                        for v in 0..4 {
                            part[r][v] = vfmaq_n_f32(part[r][v], wv[v], xv);
                        }
                    }
                }
                let (steps, _) = w.group_data(p, q);
                for v in 0..4 {
                    let s = vld1q_f32(steps.as_ptr().add(4 * v));
                    for r in 0..R {
                        acc[r][v] = vfmaq_f32(acc[r][v], part[r][v], s);
                    }
                }
            }
            for r in 0..rows {
                for v in 0..4 {
                    vst1q_f32(op.add((i + r) * ldo + (p - p0) * PANEL + 4 * v), acc[r][v]);
                }
            }
            i += rows;
        }
    }
}
