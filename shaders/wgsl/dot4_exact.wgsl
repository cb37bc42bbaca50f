// Packed 8-bit integer arithmetic without the packed_4x8_integer_dot_product built-ins: the
// same results, exactly, from shifts and integer multiply-adds.

fn pack4(v: vec4<i32>) -> u32 {
    return (u32(v.x) & 0xffu) | ((u32(v.y) & 0xffu) << 8u) | ((u32(v.z) & 0xffu) << 16u) | ((u32(v.w) & 0xffu) << 24u);
}

fn dot4(a: u32, b: u32) -> i32 {
    var s = 0;
    for (var i = 0u; i < 4u; i++) {
        s += extractBits(bitcast<i32>(a), i * 8u, 8u) * extractBits(bitcast<i32>(b), i * 8u, 8u);
    }
    return s;
}
