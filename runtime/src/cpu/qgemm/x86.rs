//! x86-64 kernels. Both widen the codes to `i16` and multiply-add pairs into `i32`
//! (`vpmaddwd`), which is exact for every pair of `i8` codes; the `u8 × i8` instructions
//! (`vpmaddubsw`, VNNI's `vpdpbusd`) need an offset or sign trick and are not used yet.

use std::arch::x86_64::*;

use super::Kernel;

pub(super) fn kernels() -> Vec<Kernel> {
    let mut list = Vec::new();
    if is_x86_feature_detected!("avx512bw") {
        list.push(Kernel { name: "avx512bw", run: gemm_avx512 });
    }
    if is_x86_feature_detected!("avx2") {
        list.push(Kernel { name: "avx2", run: gemm_avx2 });
    }
    list
}

/// Columns of `b` per pass: each loaded activation vector is used four times.
const COLS: usize = 4;

/// Sum of the eight `i32` lanes.
#[target_feature(enable = "avx2")]
unsafe fn sum256(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

fn tail(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &w)| x as i32 * w as i32).sum()
}

/// 16 codes per step; see [`super::Kernel::gemm`] for the contract.
#[target_feature(enable = "avx2")]
unsafe fn gemm_avx2(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]) {
    let body = k / 16 * 16;
    let widen = |p: *const i8| _mm256_cvtepi8_epi16(_mm_loadu_si128(p as *const __m128i));
    for i in 0..m {
        let row = &a[i * k..(i + 1) * k];
        let mut j = 0;
        while j < n {
            let cols = COLS.min(n - j);
            let mut acc = [_mm256_setzero_si256(); COLS];
            let mut t = 0;
            while t < body {
                let x = widen(row.as_ptr().add(t));
                for (c, acc) in acc.iter_mut().enumerate().take(cols) {
                    let w = widen(b.as_ptr().add((j + c) * k + t));
                    *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(x, w));
                }
                t += 16;
            }
            for (c, acc) in acc.iter().enumerate().take(cols) {
                let col = &b[(j + c) * k..(j + c + 1) * k];
                out[i * n + j + c] = sum256(*acc) + tail(&row[body..], &col[body..]);
            }
            j += cols;
        }
    }
}

/// 32 codes per step; see [`super::Kernel::gemm`] for the contract.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn gemm_avx512(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]) {
    let body = k / 32 * 32;
    let widen = |p: *const i8| _mm512_cvtepi8_epi16(_mm256_loadu_si256(p as *const __m256i));
    for i in 0..m {
        let row = &a[i * k..(i + 1) * k];
        let mut j = 0;
        while j < n {
            let cols = COLS.min(n - j);
            let mut acc = [_mm512_setzero_si512(); COLS];
            let mut t = 0;
            while t < body {
                let x = widen(row.as_ptr().add(t));
                for (c, acc) in acc.iter_mut().enumerate().take(cols) {
                    let w = widen(b.as_ptr().add((j + c) * k + t));
                    *acc = _mm512_add_epi32(*acc, _mm512_madd_epi16(x, w));
                }
                t += 32;
            }
            for (c, acc) in acc.iter().enumerate().take(cols) {
                let col = &b[(j + c) * k..(j + c + 1) * k];
                out[i * n + j + c] = _mm512_reduce_add_epi32(*acc) + tail(&row[body..], &col[body..]);
            }
            j += cols;
        }
    }
}
