//! Integer matrix products for quantized activations: `i8` activation codes times `i8` weight
//! codes, accumulated exactly in `i32`. Steps (activation step × weight step per row or group),
//! bias and activation functions are applied by the caller from these accumulators.
//!
//! One product, one layout, several instruction sets: `out[i·n + j] = Σₜ a[i·k + t] · b[j·k + t]`
//! with `a` the `m × k` activation codes and `b` the `n × k` weight codes (a linear layer's rows),
//! both row-major. `scalar.rs` is the reference every other kernel must match bit for bit;
//! `x86.rs` and `arm.rs` hold one kernel per instruction set, and [`kernels`] lists those this
//! CPU can run, best first, so that [`best`] is the dispatch and the tests can run them all.

/// Columns of `b` per pass of the SIMD kernels: each loaded activation vector is used four times.
const COLS: usize = 4;

/// `Σ a·b` of the last `k % step` codes, which the SIMD kernels leave to plain code.
#[allow(dead_code)] // on targets without a SIMD kernel
fn tail(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &w)| x as i32 * w as i32).sum()
}

/// The loop the SIMD kernels share, expanded inside each `#[target_feature]` function so that
/// its instructions are inlined: `COLS` columns per pass, `step` codes per `mac`, each
/// activation vector loaded once per pass. `load(p)` reads `step` codes, `mac(acc, x, w)`
/// accumulates, `sum(acc)` reduces to an `i32`.
#[allow(unused_macros)] // on targets without a SIMD kernel
macro_rules! tiled_gemm {
    ($a:expr, $b:expr, $m:expr, $n:expr, $k:expr, $out:expr,
     step: $step:expr, zero: $zero:expr, load: $load:expr, mac: $mac:expr, sum: $sum:expr) => {{
        let (a, b, m, n, k, out): (&[i8], &[i8], usize, usize, usize, &mut [i32]) =
            ($a, $b, $m, $n, $k, $out);
        let body = k / $step * $step;
        for i in 0..m {
            let row = &a[i * k..(i + 1) * k];
            let mut j = 0;
            while j < n {
                let cols = super::COLS.min(n - j);
                let mut acc = [$zero; super::COLS];
                let mut t = 0;
                while t < body {
                    let x = $load(row.as_ptr().add(t));
                    for (c, acc) in acc.iter_mut().enumerate().take(cols) {
                        *acc = $mac(*acc, x, $load(b.as_ptr().add((j + c) * k + t)));
                    }
                    t += $step;
                }
                for (c, acc) in acc.iter().enumerate().take(cols) {
                    let col = &b[(j + c) * k..(j + c + 1) * k];
                    out[i * n + j + c] = $sum(*acc) + super::tail(&row[body..], &col[body..]);
                }
                j += cols;
            }
        }
    }};
}

mod scalar;
#[cfg(target_arch = "aarch64")]
mod arm;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

/// One implementation of the product. Obtained only from [`kernels`] or [`best`], which check
/// that this CPU has the instructions it uses.
#[derive(Clone, Copy)]
pub struct Kernel {
    /// E.g. `avx2`, `neon-dotprod`, `scalar`.
    pub name: &'static str,
    /// # Safety
    /// Only for CPUs with the instruction set of `name` (what [`kernels`] checked), and with the
    /// slice lengths [`Kernel::gemm`] checks.
    run: unsafe fn(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]),
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Kernel {
    /// `out[i·n + j] = Σₜ a[i·k + t] · b[j·k + t]` for `a: m × k`, `b: n × k`, `out: m × n`.
    ///
    /// # Panics
    /// When a slice is shorter than its shape says (a bug in the caller, never user input).
    pub fn gemm(&self, a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]) {
        assert!(a.len() >= m * k && b.len() >= n * k && out.len() >= m * n, "qgemm shapes");
        // SAFETY: `kernels` listed this kernel only after detecting its instruction set, and
        // the lengths were checked above.
        unsafe { (self.run)(a, b, m, n, k, out) }
    }
}

/// The kernels this CPU can run, fastest first; the portable one is always last.
pub fn kernels() -> Vec<Kernel> {
    let mut list = Vec::new();
    #[cfg(target_arch = "x86_64")]
    list.extend(x86::kernels());
    #[cfg(target_arch = "aarch64")]
    list.extend(arm::kernels());
    list.push(Kernel { name: "scalar", run: scalar::gemm });
    list
}

/// The fastest kernel this CPU can run (detected once).
pub fn best() -> Kernel {
    static BEST: OnceLock<Kernel> = OnceLock::new();
    *BEST.get_or_init(|| kernels()[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::XorShift;

    fn reference(a: &[i8], b: &[i8], m: usize, n: usize, k: usize) -> Vec<i32> {
        let mut out = vec![0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|t| a[i * k + t] as i32 * b[j * k + t] as i32).sum();
            }
        }
        out
    }

    fn codes(rng: &mut XorShift, len: usize) -> Vec<i8> {
        (0..len).map(|_| (rng.next_u64() & 0xff) as u8 as i8).collect()
    }

    #[test]
    fn every_kernel_matches_the_reference_bit_for_bit() {
        let mut rng = XorShift::new(7);
        let ks = kernels();
        assert_eq!(ks.last().map(|k| k.name), Some("scalar"));
        eprintln!("qgemm kernels on this CPU: {ks:?}");
        for &k in &[1, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 384, 1536] {
            for &(m, n) in &[(1, 1), (1, 4), (2, 7), (3, 9), (5, 16), (4, 33)] {
                let a = codes(&mut rng, m * k);
                let b = codes(&mut rng, n * k);
                let want = reference(&a, &b, m, n, k);
                for kernel in &ks {
                    let mut out = vec![i32::MIN; m * n];
                    kernel.gemm(&a, &b, m, n, k, &mut out);
                    assert_eq!(out, want, "{} m{m} n{n} k{k}", kernel.name);
                }
            }
        }
    }

    #[test]
    fn extreme_codes_do_not_saturate() {
        // -128 · -128 summed 1,536 times: the pairwise and fourfold sums of the SIMD kernels
        // must stay exact (a 16-bit saturating sum would clip at 32,767).
        let k = 1536;
        for (x, y) in [(-128i8, -128i8), (-128, 127), (127, 127), (-128, -1)] {
            let (a, b) = (vec![x; 3 * k], vec![y; 5 * k]);
            let want = x as i32 * y as i32 * k as i32;
            for kernel in kernels() {
                let mut out = vec![0; 15];
                kernel.gemm(&a, &b, 3, 5, k, &mut out);
                assert!(out.iter().all(|&v| v == want), "{} {x}·{y}: {out:?}", kernel.name);
            }
        }
    }

    #[test]
    fn only_the_given_outputs_are_written() {
        let (m, n, k) = (2, 3, 20);
        let (a, b) = (vec![1i8; m * k + 5], vec![2i8; n * k + 7]);
        for kernel in kernels() {
            let mut out = vec![-7; m * n + 4];
            kernel.gemm(&a, &b, m, n, k, &mut out);
            assert_eq!(&out[..m * n], &[40; 6][..], "{}", kernel.name);
            assert_eq!(&out[m * n..], &[-7; 4][..], "{}", kernel.name);
        }
    }
}
