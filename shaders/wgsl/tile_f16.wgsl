enable f16;

// Element type of the tiled matmul's workgroup tiles: f16 (adapters with SHADER_F16; opt-in,
// about 1e-3 relative error).
alias T = f16;

