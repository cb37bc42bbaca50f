// One vector per sentence: MODE 0 its first token's state ([CLS]), 1 the mean over its
// tokens; NORMALIZE 1 scales it to unit L2 norm. One workgroup of 64 threads per sentence;
// dispatch (sentences, 1, 1).

override MODE: u32 = 1u;
override NORMALIZE: u32 = 0u;

struct Params {
    sentences: u32,
    width: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// Per sentence: (first token, length).
@group(0) @binding(2) var<storage, read> sents: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let s = wg.x;
    if (s >= p.sentences) {
        return;
    }
    let start = sents[s].x;
    let len = sents[s].y;
    var sq = 0.0;
    for (var c = li; c < p.width; c += 64u) {
        var v = x[start * p.width + c];
        if (MODE == 1u) {
            v = 0.0;
            for (var t = 0u; t < len; t++) {
                v += x[(start + t) * p.width + c];
            }
            v /= f32(len);
        }
        out[s * p.width + c] = v;
        sq += v * v;
    }
    if (NORMALIZE == 0u) {
        return;
    }
    let norm = sqrt(wg_sum(sq, li));
    if (norm > 0.0) {
        for (var c = li; c < p.width; c += 64u) {
            out[s * p.width + c] /= norm;
        }
    }
}
