// Weight decoding shared by every kernel that reads a matrix or an embedding table.
// Prepended to matmul.wgsl and embed.wgsl at build time (WGSL has no includes).
//
// A matrix [rows, cols] is bound as `w` (u32 words) plus `scales`:
//   WFORMAT 0: f32 values, row-major, one per word (bitcast);
//   WFORMAT 1: f16 values, row-major, two per word (low half first);
//   WFORMAT 2: signed BITS-bit codes, rows of `wpr` words, floor(32 / BITS) codes per word from
//              bit 0 up; step per row (GROUP 0) or per GROUP columns, `gpr` steps per row.

override WFORMAT: u32 = 0u;
override BITS: u32 = 8u;
override GROUP: u32 = 0u;

@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;

// The signed code of element (row, col) of a packed matrix.
fn weight_code(row: u32, col: u32, wpr: u32) -> i32 {
    let cpw = 32u / max(BITS, 1u);
    let word = w[row * wpr + col / cpw];
    return extractBits(bitcast<i32>(word), (col % cpw) * BITS, BITS);
}

// The step size of element (row, col) of a packed matrix.
fn weight_step(row: u32, col: u32, gpr: u32) -> f32 {
    // max(): the division must be valid even in the GROUP = 0 specialisation, where it is unused.
    let g = select(0u, col / max(GROUP, 1u), GROUP != 0u);
    return scales[row * gpr + g];
}

// The real value of element (row, col) of a matrix with `cols` columns.
fn weight(row: u32, col: u32, cols: u32, wpr: u32, gpr: u32) -> f32 {
    if (WFORMAT == 0u) {
        return bitcast<f32>(w[row * cols + col]);
    }
    if (WFORMAT == 1u) {
        let i = row * cols + col;
        let pair = unpack2x16float(w[i / 2u]);
        return select(pair.x, pair.y, (i & 1u) == 1u);
    }
    return f32(weight_code(row, col, wpr)) * weight_step(row, col, gpr);
}
