//! x86-64 kernels on the packed layout (runs of 4 codes): a broadcast run of 4 activation
//! codes times 16 (AVX-512) or 8 (AVX2) columns' runs per instruction.
//! - `*vnni`: `vpdpbusd` adds four `u8 × i8` products straight into `i32` lanes.
//! - `*-u8w<bits>`: `vpmaddubsw` adds `u8 × i8` pairs into `i16` lanes, exact while the pair
//!   sums fit (weights of at most 7 bits); narrower weights let several runs add up in `i16`
//!   before `vpmaddwd` widens them ([`super::i16_flush`]), one variant per width.
//! - `*-i16`: 8-bit weights without VNNI: both sides widened to `i16`, `vpmaddwd` into one
//!   pair sum per column and half-run, the pairs added at the group's end. (The sign trick,
//!   `vpmaddubsw(|x|, sign(x)·w)`, was 35% slower on AVX-512 and cannot negate −128.)
//!
//! The `u8` kernels read activations offset by 128 and subtract the offset in integers per
//! group; the `i16` kernels read signed codes.

use std::arch::x86_64::*;

use super::{Kernel, Packed, PANEL};

/// Activation rows per tile, each kernel's [`Kernel::tile`]: AVX-512 `u8` (with two panels per
/// tile), `i16` and VNNI, and the AVX2 kernels (the AVX2 `i16` kernel takes one row).
const U8_512_ROWS: usize = 4;
const I16_512_ROWS: usize = 8;
const VNNI512_ROWS: usize = 4;
const AVX2_ROWS: usize = 2;

pub(super) fn kernels() -> Vec<Kernel> {
    let mut list = Vec::new();
    let has = |f: bool, k: Kernel| if f { Some(k) } else { None };
    let avx512 = is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512f");
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    let vnni = |name, tile, run| Kernel { name, offset: true, max_bits: 8, kgroup: 4, abytes: 1, tile, run };
    list.extend(has(avx512 && is_x86_feature_detected!("avx512vnni"), vnni("avx512vnni", VNNI512_ROWS, gemm_avx512vnni)));
    list.extend(has(avx2 && is_x86_feature_detected!("avxvnni"), vnni("avxvnni", AVX2_ROWS, gemm_avxvnni)));
    // Narrowest weights first: `pick` takes the first kernel exact for the codes.
    macro_rules! by_width {
        ($has:expr, $f:ident, $tile:expr, $($bits:literal => $name:literal),*) => {$(
            list.extend(has($has, Kernel {
                name: $name, offset: true, max_bits: $bits, kgroup: 4, abytes: 1, tile: $tile,
                run: $f::<{ super::i16_flush($bits) }>,
            }));
        )*};
    }
    by_width!(avx512, gemm_avx512_u8, U8_512_ROWS, 2 => "avx512bw-u8w2", 3 => "avx512bw-u8w3",
        4 => "avx512bw-u8w4", 5 => "avx512bw-u8w5", 6 => "avx512bw-u8w6", 7 => "avx512bw-u8w7");
    by_width!(avx2, gemm_avx2_u8, AVX2_ROWS, 2 => "avx2-u8w2", 3 => "avx2-u8w3", 4 => "avx2-u8w4",
        5 => "avx2-u8w5", 6 => "avx2-u8w6", 7 => "avx2-u8w7");
    // Every 8-bit code, −128 included: both sides widened to `i16`.
    let i16 = |name, abytes, tile, run| Kernel { name, offset: false, max_bits: 8, kgroup: 4, abytes, tile, run };
    list.extend(has(avx512, i16("avx512bw-i16", 2, I16_512_ROWS, gemm_avx512_i16)));
    list.extend(has(avx2, i16("avx2-i16", 1, 1, gemm_avx2_i16)));
    list
}

pub(super) fn float_kernels() -> Vec<super::FloatKernel> {
    let mut list = Vec::new();
    if is_x86_feature_detected!("avx512f") {
        list.push(super::FloatKernel { name: "avx512f", run: float_avx512 });
    }
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        list.push(super::FloatKernel { name: "avx2", run: float_avx2 });
    }
    list
}

/// The loop every x86 kernel shares, expanded inside each `#[target_feature]` function so that
/// its intrinsics inline: for each `panels` panels from `p0` (output columns from panel `base`)
/// and each tile of `rows` activation rows, per group: runs of 4 positions, `vecs` weight
/// vectors per panel and run (16 columns), `mac` into partial sums
/// that `widen` adds into exact `i32` sums after at most `flush` runs, then `finish` removes
/// the offset, converts and multiplies by the group's steps into float sums that `store`
/// writes. Activations are in tiles of `rows` interleaved rows ([`Kernel::tile`]); a short
/// last tile's missing rows are computed, never stored.
macro_rules! panels {
    ($a:expr, $w:expr, $p0:expr, $p1:expr, $base:expr, $m:expr, $out:expr, $ldo:expr,
     rows: $rows:expr, panels: $pt:expr, vecs: $vecs:expr, abytes: $abytes:expr,
     flush: $flush:expr, zero: $zero:expr, fzero: $fzero:expr,
     bcast: $bcast:expr, load: $load:expr, mac: $mac:expr, widen: $widen:expr,
     finish: $finish:expr, store: $store:expr) => {{
        const V: usize = $vecs;
        const AB: usize = $abytes;
        // Bytes of one vector of a run (16 columns × 4 codes = 64 bytes per run) and its
        // columns.
        const VB: usize = 4 * PANEL / V;
        const VC: usize = PANEL / V;
        let (a, w, p0, p1, base, m, out, ldo): (&[u8], &Packed, usize, usize, usize, usize, &mut [f32], usize) =
            ($a, $w, $p0, $p1, $base, $m, $out, $ldo);
        let op = out.as_mut_ptr();
        let mut p = p0;
        while p < p1 {
            let wp: [*const i8; $pt] = std::array::from_fn(|j| w.panel(p + j).as_ptr());
            let mut i = 0;
            while i < m {
                let rows = $rows.min(m - i);
                // The tile: run `t / 4` of row `r` at code `t·rows + 4r` (`i` is a multiple of
                // `rows`, a tile's first row).
                let ap = a.as_ptr().add(i * w.kp * AB);
                let mut accf = [[[$fzero; V]; $pt]; $rows];
                for q in 0..w.gpr {
                    let (t0, t1) = w.group_range(q);
                    let mut acc = [[[$zero; V]; $pt]; $rows];
                    let mut t = t0;
                    while t < t1 {
                        let end = (t + $flush * 4).min(t1);
                        let mut part = [[[$zero; V]; $pt]; $rows];
                        while t < end {
                            let mut wv = [[$zero; V]; $pt];
                            for j in 0..$pt {
                                for v in 0..V {
                                    wv[j][v] = $load(wp[j].add(t * PANEL + v * VB));
                                }
                            }
                            for r in 0..$rows {
                                let x = $bcast(ap.add((t * $rows + 4 * r) * AB));
                                for j in 0..$pt {
                                    for v in 0..V {
                                        part[r][j][v] = $mac(part[r][j][v], x, wv[j][v]);
                                    }
                                }
                            }
                            t += 4;
                        }
                        for r in 0..$rows {
                            for j in 0..$pt {
                                for v in 0..V {
                                    acc[r][j][v] = $widen(acc[r][j][v], part[r][j][v]);
                                }
                            }
                        }
                    }
                    for j in 0..$pt {
                        let (steps, corr) = w.group_data(p + j, q);
                        for v in 0..V {
                            let (sp, cp) = (steps.as_ptr().add(v * VC), corr.as_ptr().add(v * VC));
                            for r in 0..$rows {
                                accf[r][j][v] = $finish(accf[r][j][v], acc[r][j][v], cp, sp);
                            }
                        }
                    }
                }
                for r in 0..rows {
                    for j in 0..$pt {
                        for v in 0..V {
                            // In bounds: `Kernel::run` checked the output's extent.
                            $store(op.add((i + r) * ldo + (p + j - base) * PANEL + v * VC), accf[r][j][v]);
                        }
                    }
                }
                i += rows;
            }
            p += $pt;
        }
    }};
}

// AVX-512: one vector per run (16 columns × 4 codes).

#[target_feature(enable = "avx512f")]
unsafe fn load512<T>(p: *const T) -> __m512i {
    _mm512_loadu_si512(p as *const __m512i)
}

#[target_feature(enable = "avx512f")]
unsafe fn bcast512(p: *const u8) -> __m512i {
    _mm512_set1_epi32((p as *const i32).read_unaligned())
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn maddubs512(part: __m512i, x: __m512i, w: __m512i) -> __m512i {
    _mm512_add_epi16(part, _mm512_maddubs_epi16(x, w))
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn widen512(acc: __m512i, part: __m512i) -> __m512i {
    _mm512_add_epi32(acc, _mm512_madd_epi16(part, _mm512_set1_epi16(1)))
}

#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dpbusd512(part: __m512i, x: __m512i, w: __m512i) -> __m512i {
    _mm512_dpbusd_epi32(part, x, w)
}

/// `accf + steps · (acc − corr)`.
#[target_feature(enable = "avx512f")]
unsafe fn finish512(accf: __m512, acc: __m512i, corr: *const i32, steps: *const f32) -> __m512 {
    let exact = _mm512_sub_epi32(acc, _mm512_loadu_si512(corr as *const __m512i));
    _mm512_fmadd_ps(_mm512_cvtepi32_ps(exact), _mm512_loadu_ps(steps), accf)
}

#[target_feature(enable = "avx512f")]
unsafe fn store512(p: *mut f32, v: __m512) {
    _mm512_storeu_ps(p, v)
}

/// See [`super::Kernel::run`]; `FLUSH` runs summed in `i16`. Two panels per tile (an odd last
/// panel alone): 6 loads per 8 multiplies instead of 9, the load ports being the limit.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn gemm_avx512_u8<const FLUSH: usize>(a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    let pm = p0 + (p1 - p0) / 2 * 2;
    panels!(a, w, p0, pm, p0, m, out, ldo, rows: U8_512_ROWS, panels: 2, vecs: 1, abytes: 1, flush: FLUSH,
        zero: _mm512_setzero_si512(), fzero: _mm512_setzero_ps(), bcast: bcast512, load: load512,
        mac: maddubs512, widen: widen512, finish: finish512, store: store512);
    panels!(a, w, pm, p1, p0, m, out, ldo, rows: U8_512_ROWS, panels: 1, vecs: 1, abytes: 1, flush: FLUSH,
        zero: _mm512_setzero_si512(), fzero: _mm512_setzero_ps(), bcast: bcast512, load: load512,
        mac: maddubs512, widen: widen512, finish: finish512, store: store512)
}

/// See [`super::Kernel::run`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn gemm_avx512vnni(a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    panels!(a, w, p0, p1, p0, m, out, ldo, rows: VNNI512_ROWS, panels: 1, vecs: 1, abytes: 1, flush: usize::MAX / 8,
        zero: _mm512_setzero_si512(), fzero: _mm512_setzero_ps(), bcast: bcast512, load: load512,
        mac: dpbusd512, widen: _mm512_add_epi32, finish: finish512, store: store512)
}

/// A run of 4 signed codes stored as `i16` (the activation layout of `abytes: 2`), repeated
/// in every 64-bit lane: one broadcast load, where widening bytes here took two shuffles per
/// row and run on the port the multiplies need.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn bcast512_i16(p: *const u8) -> __m512i {
    _mm512_set1_epi64((p as *const i64).read_unaligned())
}

/// 8 columns × a run of 4 codes, widened to `i16`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn load512_i16<T>(p: *const T) -> __m512i {
    _mm512_cvtepi8_epi16(_mm256_loadu_si256(p as *const __m256i))
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn madd512(part: __m512i, x: __m512i, w: __m512i) -> __m512i {
    _mm512_add_epi32(part, _mm512_madd_epi16(x, w))
}

/// Adds each column's two pair sums (lanes `2c`, `2c + 1`), then `accf + steps · sums` for
/// the 8 columns.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn finish512_pairs(accf: __m256, acc: __m512i, _corr: *const i32, steps: *const f32) -> __m256 {
    let sums = _mm512_cvtepi64_epi32(_mm512_add_epi32(acc, _mm512_srli_epi64(acc, 32)));
    _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_loadu_ps(steps), accf)
}

/// See [`super::Kernel::run`]; 8 columns per vector, two vectors per run.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn gemm_avx512_i16(a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    panels!(a, w, p0, p1, p0, m, out, ldo, rows: I16_512_ROWS, panels: 1, vecs: 2, abytes: 2, flush: usize::MAX / 8,
        zero: _mm512_setzero_si512(), fzero: _mm256_setzero_ps(), bcast: bcast512_i16,
        load: load512_i16, mac: madd512, widen: _mm512_add_epi32, finish: finish512_pairs,
        store: store256)
}

// AVX2: two vectors per run (8 columns × 4 codes each).

#[target_feature(enable = "avx2")]
unsafe fn load256<T>(p: *const T) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

#[target_feature(enable = "avx2")]
unsafe fn bcast256(p: *const u8) -> __m256i {
    _mm256_set1_epi32((p as *const i32).read_unaligned())
}

#[target_feature(enable = "avx2")]
unsafe fn maddubs256(part: __m256i, x: __m256i, w: __m256i) -> __m256i {
    _mm256_add_epi16(part, _mm256_maddubs_epi16(x, w))
}

#[target_feature(enable = "avx2")]
unsafe fn widen256(acc: __m256i, part: __m256i) -> __m256i {
    _mm256_add_epi32(acc, _mm256_madd_epi16(part, _mm256_set1_epi16(1)))
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn dpbusd256(part: __m256i, x: __m256i, w: __m256i) -> __m256i {
    _mm256_dpbusd_avx_epi32(part, x, w)
}

#[target_feature(enable = "avx2,fma")]
unsafe fn finish256(accf: __m256, acc: __m256i, corr: *const i32, steps: *const f32) -> __m256 {
    let exact = _mm256_sub_epi32(acc, _mm256_loadu_si256(corr as *const __m256i));
    _mm256_fmadd_ps(_mm256_cvtepi32_ps(exact), _mm256_loadu_ps(steps), accf)
}

#[target_feature(enable = "avx2")]
unsafe fn store256(p: *mut f32, v: __m256) {
    _mm256_storeu_ps(p, v)
}

/// See [`super::Kernel::run`]; `FLUSH` runs summed in `i16`.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2_u8<const FLUSH: usize>(a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    panels!(a, w, p0, p1, p0, m, out, ldo, rows: AVX2_ROWS, panels: 1, vecs: 2, abytes: 1, flush: FLUSH,
        zero: _mm256_setzero_si256(), fzero: _mm256_setzero_ps(), bcast: bcast256, load: load256,
        mac: maddubs256, widen: widen256, finish: finish256, store: store256)
}

/// See [`super::Kernel::run`].
#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn gemm_avxvnni(a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    panels!(a, w, p0, p1, p0, m, out, ldo, rows: AVX2_ROWS, panels: 1, vecs: 2, abytes: 1, flush: usize::MAX / 8,
        zero: _mm256_setzero_si256(), fzero: _mm256_setzero_ps(), bcast: bcast256, load: load256,
        mac: dpbusd256, widen: _mm256_add_epi32, finish: finish256, store: store256)
}

/// The float kernels' loop: per panel, tiles of `rows` rows; per group, each position's 16
/// codes widened to `f32` once (`codes(p)`, `vecs` vectors) and multiplied by each row's
/// broadcast activation, then the group's float sum by its steps.
macro_rules! float_panels {
    ($x:expr, $w:expr, $p0:expr, $p1:expr, $m:expr, $out:expr, $ldo:expr,
     rows: $rows:expr, vecs: $vecs:expr, zero: $zero:expr, codes: $codes:expr, set1: $set1:expr,
     fma: $fma:expr, load: $load:expr, store: $store:expr) => {{
        const R: usize = $rows;
        const V: usize = $vecs;
        const VC: usize = PANEL / V;
        let (x, w, p0, p1, m, out, ldo): (&[f32], &Packed, usize, usize, usize, &mut [f32], usize) =
            ($x, $w, $p0, $p1, $m, $out, $ldo);
        let (k, op) = (w.cols, out.as_mut_ptr());
        for p in p0..p1 {
            let wp = w.panel(p).as_ptr();
            let mut i = 0;
            while i < m {
                let rows = R.min(m - i);
                let xp = super::tile_rows::<f32, R>(x, k, i, rows);
                let mut acc = [[$zero; V]; R];
                for q in 0..w.gpr {
                    let (t0, t1) = w.group_range(q);
                    let mut part = [[$zero; V]; R];
                    for t in t0..t1.min(k) {
                        let mut wv = [$zero; V];
                        for v in 0..V {
                            wv[v] = $codes(wp.add(t * PANEL + v * VC));
                        }
                        for r in 0..R {
                            let xv = $set1(*xp[r].add(t));
                            for v in 0..V {
                                part[r][v] = $fma(xv, wv[v], part[r][v]);
                            }
                        }
                    }
                    let (steps, _) = w.group_data(p, q);
                    for v in 0..V {
                        let s = $load(steps.as_ptr().add(v * VC));
                        for r in 0..R {
                            acc[r][v] = $fma(part[r][v], s, acc[r][v]);
                        }
                    }
                }
                for r in 0..rows {
                    for v in 0..V {
                        $store(op.add((i + r) * ldo + (p - p0) * PANEL + v * VC), acc[r][v]);
                    }
                }
                i += rows;
            }
        }
    }};
}

/// 16 codes as `f32`.
#[target_feature(enable = "avx512f")]
unsafe fn codes512(p: *const i8) -> __m512 {
    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p as *const __m128i)))
}

/// 8 codes as `f32`.
#[target_feature(enable = "avx2")]
unsafe fn codes256(p: *const i8) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p as *const __m128i)))
}

/// See [`super::FloatKernel::run`].
#[target_feature(enable = "avx512f")]
unsafe fn float_avx512(x: &[f32], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    float_panels!(x, w, p0, p1, m, out, ldo, rows: 8, vecs: 1, zero: _mm512_setzero_ps(),
        codes: codes512, set1: _mm512_set1_ps, fma: _mm512_fmadd_ps, load: _mm512_loadu_ps,
        store: store512)
}

/// See [`super::FloatKernel::run`].
#[target_feature(enable = "avx2,fma")]
unsafe fn float_avx2(x: &[f32], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    float_panels!(x, w, p0, p1, m, out, ldo, rows: 3, vecs: 2, zero: _mm256_setzero_ps(),
        codes: codes256, set1: _mm256_set1_ps, fma: _mm256_fmadd_ps, load: _mm256_loadu_ps,
        store: store256)
}

#[target_feature(enable = "avx2")]
unsafe fn bcast256_i16(p: *const u8) -> __m256i {
    let x = _mm_cvtepi8_epi16(_mm_cvtsi32_si128((p as *const i32).read_unaligned()));
    _mm256_broadcastq_epi64(x)
}

/// 4 columns × a run of 4 codes, widened to `i16`.
#[target_feature(enable = "avx2")]
unsafe fn load256_i16<T>(p: *const T) -> __m256i {
    _mm256_cvtepi8_epi16(_mm_loadu_si128(p as *const __m128i))
}

#[target_feature(enable = "avx2")]
unsafe fn madd256(part: __m256i, x: __m256i, w: __m256i) -> __m256i {
    _mm256_add_epi32(part, _mm256_madd_epi16(x, w))
}

#[target_feature(enable = "avx2,fma")]
unsafe fn finish256_pairs(accf: __m128, acc: __m256i, _corr: *const i32, steps: *const f32) -> __m128 {
    let pairs = _mm256_add_epi32(acc, _mm256_srli_epi64(acc, 32));
    let sums = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(pairs, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
    _mm_fmadd_ps(_mm_cvtepi32_ps(sums), _mm_loadu_ps(steps), accf)
}

#[target_feature(enable = "avx2")]
unsafe fn store128(p: *mut f32, v: __m128) {
    _mm_storeu_ps(p, v)
}

/// See [`super::Kernel::run`]; 4 columns per vector, four vectors per run.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2_i16(a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
    panels!(a, w, p0, p1, p0, m, out, ldo, rows: 1, panels: 1, vecs: 4, abytes: 1, flush: usize::MAX / 8,
        zero: _mm256_setzero_si256(), fzero: _mm_setzero_ps(), bcast: bcast256_i16,
        load: load256_i16, mac: madd256, widen: _mm256_add_epi32, finish: finish256_pairs,
        store: store128)
}
