// Packed 8-bit integer arithmetic with WGSL's packed_4x8_integer_dot_product built-ins
// (prepended to matmul_int.wgsl where the adapter has them).

fn pack4(v: vec4<i32>) -> u32 {
    return pack4xI8(v);
}

fn dot4(a: u32, b: u32) -> i32 {
    return dot4I8Packed(a, b);
}
