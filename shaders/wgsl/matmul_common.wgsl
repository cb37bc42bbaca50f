// What every matmul kernel shares (prepended to matmul.wgsl and matmul_int.wgsl): the
// parameters, the activation, bias and output bindings, and the epilogue.
// EPILOGUE 0: none, 1: GELU (exact erf, activations.wgsl), 2: tanh.

override EPILOGUE: u32 = 0u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    wpr: u32,
    gpr: u32,
    // Per-tensor step of quantized activations (matmul_int.wgsl).
    act_step: f32,
    // 1 / act_step, computed on the host so that x · (1 / step) rounds exactly as on the CPU.
    act_inv: f32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

fn epilogue(v: f32) -> f32 {
    if (EPILOGUE == 1u) {
        return gelu(v);
    }
    if (EPILOGUE == 2u) {
        return tanh(v);
    }
    return v;
}

const TM: u32 = 32u;
const TN: u32 = 32u;
const TK: u32 = 16u;
