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

/// Sum of the eight `i32` lanes.
#[target_feature(enable = "avx2")]
unsafe fn sum256(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

/// 16 codes widened to `i16`.
#[target_feature(enable = "avx2")]
unsafe fn load256(p: *const i8) -> __m256i {
    _mm256_cvtepi8_epi16(_mm_loadu_si128(p as *const __m128i))
}

#[target_feature(enable = "avx2")]
unsafe fn mac256(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
    _mm256_add_epi32(acc, _mm256_madd_epi16(x, w))
}

/// 32 codes widened to `i16`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn load512(p: *const i8) -> __m512i {
    _mm512_cvtepi8_epi16(_mm256_loadu_si256(p as *const __m256i))
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn mac512(acc: __m512i, x: __m512i, w: __m512i) -> __m512i {
    _mm512_add_epi32(acc, _mm512_madd_epi16(x, w))
}

/// 16 codes per step; see [`super::Kernel::gemm`] for the contract.
#[target_feature(enable = "avx2")]
unsafe fn gemm_avx2(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, out,
        step: 16, zero: _mm256_setzero_si256(), load: load256, mac: mac256, sum: sum256)
}

/// 32 codes per step; see [`super::Kernel::gemm`] for the contract.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn gemm_avx512(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, out,
        step: 32, zero: _mm512_setzero_si512(), load: load512, mac: mac512,
        sum: _mm512_reduce_add_epi32)
}
