//! The portable kernel, and the reference the others are tested against.

/// See [`super::Kernel::gemm`].
pub(super) unsafe fn gemm(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]) {
    for (i, row) in a.chunks_exact(k.max(1)).take(m).enumerate() {
        for (j, col) in b.chunks_exact(k.max(1)).take(n).enumerate() {
            out[i * n + j] = row.iter().zip(col).map(|(&x, &w)| x as i32 * w as i32).sum();
        }
    }
    if k == 0 {
        out[..m * n].fill(0);
    }
}
