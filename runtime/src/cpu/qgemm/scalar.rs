//! The portable kernel, and the reference the others are tested against.

/// See [`super::Kernel::run`] (signed activations).
pub(super) unsafe fn gemm(a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
    let gpr = super::groups(k, g);
    for i in 0..m {
        let row = &a[i * k..(i + 1) * k];
        for j in 0..n {
            let col = &b[j * k..(j + 1) * k];
            for (q, (x, w)) in row.chunks(g).zip(col.chunks(g)).enumerate() {
                out[(i * n + j) * gpr + q] = x.iter().zip(w).map(|(&x, &w)| x as i8 as i32 * w as i32).sum();
            }
        }
    }
}

/// See [`super::Kernel::run_scaled`] (signed activations).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_scaled(a: &[u8], b: &[i8], s: &[f32], m: usize, n: usize, k: usize, g: usize, out: &mut [f32]) {
    let gpr = super::groups(k, g);
    for i in 0..m {
        let row = &a[i * k..(i + 1) * k];
        for j in 0..n {
            let col = &b[j * k..(j + 1) * k];
            let mut v = 0f32;
            for (q, (x, w)) in row.chunks(g).zip(col.chunks(g)).enumerate() {
                let sum: i32 = x.iter().zip(w).map(|(&x, &w)| x as i8 as i32 * w as i32).sum();
                v += s[j * gpr + q] * sum as f32;
            }
            out[i * n + j] = v;
        }
    }
}
