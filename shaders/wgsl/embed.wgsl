// x[t, :] += table[row(t) - row0, :] for every token whose row falls in this table chunk
// (tables too large for one storage binding are split into chunks of rows).
// row(t): FIELD 0 the token id, 1 the position in its sentence, 2 the segment id.
// Dispatch (t, 1, 1); 64 threads stride over the width. Table decoding: weights.wgsl.

override FIELD: u32 = 0u;

struct Params {
    tokens: u32,
    width: u32,
    row0: u32,
    rows: u32,
    wpr: u32,
    gpr: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Per token: (id, segment id, first token of its sentence, sentence length).
@group(0) @binding(1) var<storage, read> tokens: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = wg.x;
    if (t >= p.tokens) {
        return;
    }
    let info = tokens[t];
    var row = info.x;
    if (FIELD == 1u) {
        row = t - info.z;
    } else if (FIELD == 2u) {
        row = info.y;
    }
    if (row < p.row0 || row >= p.row0 + p.rows) {
        return;
    }
    let r = row - p.row0;
    for (var c = li; c < p.width; c += 64u) {
        x[t * p.width + c] += weight(r, c, p.width, p.wpr, p.gpr);
    }
}
