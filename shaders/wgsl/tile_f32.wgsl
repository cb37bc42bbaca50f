// Element type of the tiled matmul's workgroup tiles: f32 (every adapter).
alias T = f32;

