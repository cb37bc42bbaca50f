//! x86-64 kernels, two families:
//! - signed (`avx512bw`, `avx2`): both sides widened to `i16`, pairs multiplied and added into
//!   `i32` (`vpmaddwd`); exact for every pair of `i8` codes.
//! - offset (`*-u8w<bits>`, `*vnni`): activations stored as `code + 128` so that the `u8 × i8`
//!   instructions apply. `vpmaddubsw` adds pairs into a saturating `i16`, exact while
//!   `2 · 255 · |w| ≤ 32767`, i.e. for weights of at most 7 bits; narrower weights let several
//!   steps add up in `i16` first (one variant per width). VNNI's `vpdpbusd` adds four products
//!   straight into `i32` and is exact for 8-bit weights too.

use std::arch::x86_64::*;

use super::Kernel;

pub(super) fn kernels() -> Vec<Kernel> {
    let mut list = Vec::new();
    let has = |f: bool, k: Kernel| if f { Some(k) } else { None };
    list.extend(has(
        is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512bw"),
        Kernel { name: "avx512vnni", offset: true, max_bits: 8, step: 64, run: gemm_avx512vnni, scaled: None },
    ));
    list.extend(has(
        is_x86_feature_detected!("avxvnni") && is_x86_feature_detected!("avx2"),
        Kernel { name: "avxvnni", offset: true, max_bits: 8, step: 32, run: gemm_avxvnni, scaled: None },
    ));
    // `vpmaddubsw` kernels, narrowest weights first: narrower codes let more pair sums add up
    // in `i16` before they are widened (`i16_flush`), which saves a `vpmaddwd` per step.
    macro_rules! by_width {
        ($detected:expr, $step:expr, $f:ident, $scaled:ident, $($bits:literal => $name:literal),*) => {$(
            list.extend(has(
                $detected,
                Kernel { name: $name, offset: true, max_bits: $bits, step: $step,
                         run: $f::<{ super::i16_flush($bits) }>,
                         scaled: Some($scaled::<{ super::i16_flush($bits) }>) },
            ));
        )*};
    }
    by_width!(is_x86_feature_detected!("avx512bw"), 64, gemm_avx512_u8, scaled_avx512_u8,
        2 => "avx512bw-u8w2", 3 => "avx512bw-u8w3", 4 => "avx512bw-u8w4", 5 => "avx512bw-u8w5",
        6 => "avx512bw-u8w6", 7 => "avx512bw-u8w7");
    by_width!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"), 32, gemm_avx2_u8, scaled_avx2_u8,
        2 => "avx2-u8w2", 3 => "avx2-u8w3", 4 => "avx2-u8w4", 5 => "avx2-u8w5",
        6 => "avx2-u8w6", 7 => "avx2-u8w7");
    list.extend(has(
        is_x86_feature_detected!("avx512bw"),
        Kernel { name: "avx512bw", offset: false, max_bits: 8, step: 32, run: gemm_avx512, scaled: Some(scaled_avx512) },
    ));
    list.extend(has(
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        Kernel { name: "avx2", offset: false, max_bits: 8, step: 16, run: gemm_avx2, scaled: Some(scaled_avx2) },
    ));
    list
}

/// The lane sums of four vectors of eight `i32` lanes, in one transposing reduction.
#[target_feature(enable = "avx2")]
unsafe fn sum4_256(v: [__m256i; 4]) -> [i32; 4] {
    let s01 = _mm256_hadd_epi32(v[0], v[1]);
    let s23 = _mm256_hadd_epi32(v[2], v[3]);
    let s = _mm256_hadd_epi32(s01, s23);
    let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    let mut out = [0i32; 4];
    _mm_storeu_si128(out.as_mut_ptr() as *mut __m128i, s);
    out
}

/// [`sum4_256`] of four vectors of sixteen `i32` lanes.
#[target_feature(enable = "avx512f,avx2")]
unsafe fn sum4_512(v: [__m512i; 4]) -> [i32; 4] {
    let half = |x: __m512i| _mm256_add_epi32(_mm512_castsi512_si256(x), _mm512_extracti64x4_epi64(x, 1));
    sum4_256([half(v[0]), half(v[1]), half(v[2]), half(v[3])])
}

/// 16 codes widened to `i16`.
#[target_feature(enable = "avx2")]
unsafe fn widen256<T>(p: *const T) -> __m256i {
    _mm256_cvtepi8_epi16(_mm_loadu_si128(p as *const __m128i))
}

#[target_feature(enable = "avx2")]
unsafe fn load256<T>(p: *const T) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

#[target_feature(enable = "avx2")]
unsafe fn madd256(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
    _mm256_add_epi32(acc, _mm256_madd_epi16(x, w))
}

/// `acc16 += x·w` for 32 `u8 × i8` pairs, pairwise into `i16` lanes (wrapping: the caller
/// bounds the sums).
#[target_feature(enable = "avx2")]
unsafe fn maddubs256(acc16: __m256i, x: __m256i, w: __m256i) -> __m256i {
    _mm256_add_epi16(acc16, _mm256_maddubs_epi16(x, w))
}

/// `acc += acc16`, pairs of `i16` lanes into `i32` lanes.
#[target_feature(enable = "avx2")]
unsafe fn widen_i16_256(acc: __m256i, acc16: __m256i) -> __m256i {
    _mm256_add_epi32(acc, _mm256_madd_epi16(acc16, _mm256_set1_epi16(1)))
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn dpbusd256(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
    _mm256_dpbusd_avx_epi32(acc, x, w)
}

/// 32 codes widened to `i16`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn widen512<T>(p: *const T) -> __m512i {
    _mm512_cvtepi8_epi16(_mm256_loadu_si256(p as *const __m256i))
}

#[target_feature(enable = "avx512f")]
unsafe fn load512<T>(p: *const T) -> __m512i {
    _mm512_loadu_si512(p as *const __m512i)
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn madd512(acc: __m512i, x: __m512i, w: __m512i) -> __m512i {
    _mm512_add_epi32(acc, _mm512_madd_epi16(x, w))
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn maddubs512(acc16: __m512i, x: __m512i, w: __m512i) -> __m512i {
    _mm512_add_epi16(acc16, _mm512_maddubs_epi16(x, w))
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn widen_i16_512(acc: __m512i, acc16: __m512i) -> __m512i {
    _mm512_add_epi32(acc, _mm512_madd_epi16(acc16, _mm512_set1_epi16(1)))
}

#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dpbusd512(acc: __m512i, x: __m512i, w: __m512i) -> __m512i {
    _mm512_dpbusd_epi32(acc, x, w)
}

/// 16 codes per step; see [`super::Kernel::run`].
#[target_feature(enable = "avx2")]
unsafe fn gemm_avx2(a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, g, out,
        rows: 1, step: 16, flush: usize::MAX / 64, zero: _mm256_setzero_si256(),
        load_a: widen256, load_b: widen256, mac: madd256, widen: _mm256_add_epi32,
        sum4: sum4_256, tail: super::tail_i8)
}

/// 32 codes per step, activations offset, `FLUSH` steps summed in `i16`; see
/// [`super::Kernel::run`].
#[target_feature(enable = "avx2")]
unsafe fn gemm_avx2_u8<const FLUSH: usize>(a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, g, out,
        rows: 1, step: 32, flush: FLUSH, zero: _mm256_setzero_si256(), load_a: load256,
        load_b: load256, mac: maddubs256, widen: widen_i16_256, sum4: sum4_256,
        tail: super::tail_u8)
}

/// 32 codes per step, activations offset; see [`super::Kernel::run`].
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn gemm_avxvnni(a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, g, out,
        rows: 1, step: 32, flush: usize::MAX / 64, zero: _mm256_setzero_si256(),
        load_a: load256, load_b: load256, mac: dpbusd256, widen: _mm256_add_epi32,
        sum4: sum4_256, tail: super::tail_u8)
}

/// 32 codes per step; see [`super::Kernel::run`].
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn gemm_avx512(a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, g, out,
        rows: 2, step: 32, flush: usize::MAX / 64, zero: _mm512_setzero_si512(),
        load_a: widen512, load_b: widen512, mac: madd512, widen: _mm512_add_epi32,
        sum4: sum4_512, tail: super::tail_i8)
}

/// 64 codes per step, activations offset, `FLUSH` steps summed in `i16`; see
/// [`super::Kernel::run`].
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn gemm_avx512_u8<const FLUSH: usize>(a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, g, out,
        rows: 2, step: 64, flush: FLUSH, zero: _mm512_setzero_si512(), load_a: load512,
        load_b: load512, mac: maddubs512, widen: widen_i16_512, sum4: sum4_512,
        tail: super::tail_u8)
}

/// 64 codes per step, activations offset; see [`super::Kernel::run`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn gemm_avx512vnni(a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
    tiled_gemm!(a, b, m, n, k, g, out,
        rows: 2, step: 64, flush: usize::MAX / 128, zero: _mm512_setzero_si512(),
        load_a: load512, load_b: load512, mac: dpbusd512, widen: _mm512_add_epi32,
        sum4: sum4_512, tail: super::tail_u8)
}

// The scaled forms (`Kernel::run_scaled`): the same products, each region's integer sums
// converted to f32 in the lanes and multiplied by their groups' steps.

/// Lane `l` of a product's `i32` vector covers codes `p·l..p·(l + 1)` of its step (`p` = 4 for
/// `vpmaddubsw` then `vpmaddwd`, 2 for `vpmaddwd` on widened codes): the index of that lane's
/// group among the four steps loaded at the region's first group.
fn lane_groups<const L: usize>(g: usize, p: usize) -> [i32; L] {
    std::array::from_fn(|l| ((p * l) / g).min(3) as i32)
}

#[target_feature(enable = "avx2")]
unsafe fn idx256_u8(g: usize) -> __m256i {
    _mm256_loadu_si256(lane_groups::<8>(g, 4).as_ptr() as *const __m256i)
}

#[target_feature(enable = "avx2")]
unsafe fn idx256_i16(g: usize) -> __m256i {
    _mm256_loadu_si256(lane_groups::<8>(g, 2).as_ptr() as *const __m256i)
}

/// The steps of a region's eight lanes.
#[target_feature(enable = "avx2")]
unsafe fn scale256(p: *const f32, idx: __m256i) -> __m256 {
    _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), idx)
}

#[target_feature(enable = "avx2")]
unsafe fn cvt256(v: __m256i) -> __m256 {
    _mm256_cvtepi32_ps(v)
}

/// `i16` pair sums to `f32` lanes.
#[target_feature(enable = "avx2")]
unsafe fn cvt16_256(v: __m256i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_madd_epi16(v, _mm256_set1_epi16(1)))
}

#[target_feature(enable = "avx2,fma")]
unsafe fn fma256(acc: __m256, v: __m256, s: __m256) -> __m256 {
    _mm256_fmadd_ps(v, s, acc)
}

/// The lane sums of four vectors of eight `f32` lanes.
#[target_feature(enable = "avx2")]
unsafe fn sum4f_256(v: [__m256; 4]) -> [f32; 4] {
    let s = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    let mut out = [0f32; 4];
    _mm_storeu_ps(out.as_mut_ptr(), s);
    out
}

#[target_feature(enable = "avx512f")]
unsafe fn idx512_u8(g: usize) -> __m512i {
    _mm512_loadu_si512(lane_groups::<16>(g, 4).as_ptr() as *const __m512i)
}

#[target_feature(enable = "avx512f")]
unsafe fn idx512_i16(g: usize) -> __m512i {
    _mm512_loadu_si512(lane_groups::<16>(g, 2).as_ptr() as *const __m512i)
}

#[target_feature(enable = "avx512f")]
unsafe fn scale512(p: *const f32, idx: __m512i) -> __m512 {
    _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_loadu_ps(p)))
}

#[target_feature(enable = "avx512f")]
unsafe fn cvt512(v: __m512i) -> __m512 {
    _mm512_cvtepi32_ps(v)
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn cvt16_512(v: __m512i) -> __m512 {
    _mm512_cvtepi32_ps(_mm512_madd_epi16(v, _mm512_set1_epi16(1)))
}

#[target_feature(enable = "avx512f")]
unsafe fn fma512(acc: __m512, v: __m512, s: __m512) -> __m512 {
    _mm512_fmadd_ps(v, s, acc)
}

#[target_feature(enable = "avx512f,avx2")]
unsafe fn sum4f_512(v: [__m512; 4]) -> [f32; 4] {
    let half = |x: __m512| _mm256_add_ps(_mm512_castps512_ps256(x), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    sum4f_256([half(v[0]), half(v[1]), half(v[2]), half(v[3])])
}

/// See [`super::Kernel::run_scaled`].
#[target_feature(enable = "avx2,fma")]
unsafe fn scaled_avx2(a: &[u8], b: &[i8], s: &[f32], m: usize, n: usize, k: usize, g: usize, out: &mut [f32]) {
    tiled_gemm_scaled!(a, b, s, m, n, k, g, out,
        rows: 1, step: 16, flush: usize::MAX / 64, zero: _mm256_setzero_si256(),
        fzero: _mm256_setzero_ps(), idx: idx256_i16, load_a: widen256, load_b: widen256,
        mac: madd256, to_f32: cvt256, scale: scale256, fma: fma256, sum4: sum4f_256,
        tail: super::tail_i8)
}

/// See [`super::Kernel::run_scaled`].
#[target_feature(enable = "avx2,fma")]
unsafe fn scaled_avx2_u8<const FLUSH: usize>(a: &[u8], b: &[i8], s: &[f32], m: usize, n: usize, k: usize, g: usize, out: &mut [f32]) {
    tiled_gemm_scaled!(a, b, s, m, n, k, g, out,
        rows: 1, step: 32, flush: FLUSH, zero: _mm256_setzero_si256(),
        fzero: _mm256_setzero_ps(), idx: idx256_u8, load_a: load256, load_b: load256,
        mac: maddubs256, to_f32: cvt16_256, scale: scale256, fma: fma256, sum4: sum4f_256,
        tail: super::tail_u8)
}

/// See [`super::Kernel::run_scaled`].
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn scaled_avx512(a: &[u8], b: &[i8], s: &[f32], m: usize, n: usize, k: usize, g: usize, out: &mut [f32]) {
    tiled_gemm_scaled!(a, b, s, m, n, k, g, out,
        rows: 2, step: 32, flush: usize::MAX / 64, zero: _mm512_setzero_si512(),
        fzero: _mm512_setzero_ps(), idx: idx512_i16, load_a: widen512, load_b: widen512,
        mac: madd512, to_f32: cvt512, scale: scale512, fma: fma512, sum4: sum4f_512,
        tail: super::tail_i8)
}

/// See [`super::Kernel::run_scaled`].
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn scaled_avx512_u8<const FLUSH: usize>(a: &[u8], b: &[i8], s: &[f32], m: usize, n: usize, k: usize, g: usize, out: &mut [f32]) {
    tiled_gemm_scaled!(a, b, s, m, n, k, g, out,
        rows: 2, step: 64, flush: FLUSH, zero: _mm512_setzero_si512(),
        fzero: _mm512_setzero_ps(), idx: idx512_u8, load_a: load512, load_b: load512,
        mac: maddubs512, to_f32: cvt16_512, scale: scale512, fma: fma512, sum4: sum4f_512,
        tail: super::tail_u8)
}
