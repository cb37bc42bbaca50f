//! The portable kernel: the product of the module documentation as plain loops over the packed
//! layout, in the same order of operations as the SIMD kernels (exact `i32` group sums, then
//! one multiply-add per group in `f32`).

use super::{Packed, PANEL};

/// See [`super::Kernel::run`] (signed activations).
pub(super) unsafe fn gemm(a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    for p in p0..p1 {
        let codes = w.panel(p);
        for i in 0..m {
            let row = &a[i * w.kp..(i + 1) * w.kp];
            let mut acc = [0f32; PANEL];
            for q in 0..w.gpr {
                let (t0, t1) = w.group_range(q);
                let mut sums = [0i32; PANEL];
                for (t, &byte) in row.iter().enumerate().take(t1).skip(t0) {
                    let x = byte as i8 as i32;
                    let run = (t / w.kgroup) * PANEL * w.kgroup + t % w.kgroup;
                    for (c, s) in sums.iter_mut().enumerate() {
                        *s += x * codes[run + c * w.kgroup] as i32;
                    }
                }
                let (steps, corr) = w.group_data(p, q);
                for c in 0..PANEL {
                    acc[c] += steps[c] * (sums[c] - corr[c]) as f32;
                }
            }
            out[i * ldo + (p - p0) * PANEL..][..PANEL].copy_from_slice(&acc);
        }
    }
}

/// See [`super::FloatKernel::run`].
pub(super) unsafe fn gemm_float(x: &[f32], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    for p in p0..p1 {
        let codes = w.panel(p);
        for i in 0..m {
            let row = &x[i * w.cols..(i + 1) * w.cols];
            let mut acc = [0f32; PANEL];
            for q in 0..w.gpr {
                let (t0, t1) = w.group_range(q);
                let mut sums = [0f32; PANEL];
                for (t, &x) in row.iter().enumerate().take(t1).skip(t0) {
                    for (c, s) in sums.iter_mut().enumerate() {
                        *s += x * codes[t * PANEL + c] as f32;
                    }
                }
                let (steps, _) = w.group_data(p, q);
                for c in 0..PANEL {
                    acc[c] += steps[c] * sums[c];
                }
            }
            out[i * ldo + (p - p0) * PANEL..][..PANEL].copy_from_slice(&acc);
        }
    }
}
