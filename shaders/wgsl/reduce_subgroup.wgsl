// Workgroup-wide reductions over 64 invocations with subgroup operations, for adapters with
// the SUBGROUP feature and subgroups of at most 64 (wgpu's WGSL front end takes the subgroup
// built-ins without an `enable` directive once the device has the feature). Each subgroup
// reduces in registers, then one value per subgroup goes through workgroup memory.
// Same interface as reduce_shared.wgsl. Assumes subgroup k of the 1-D workgroup holds local
// invocations [k·size, (k+1)·size), as every driver we know lays them out; GpuOptions can
// switch to reduce_shared.wgsl where that does not hold.

var<workgroup> red: array<f32, 64>;

fn wg_sum(v: f32, li: u32) -> f32 {
    let s = subgroupAdd(v);
    let size = subgroupAdd(1u);
    if (li % size == 0u) {
        red[li / size] = s;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < 64u / size; i++) {
        total += red[i];
    }
    workgroupBarrier();
    return total;
}

fn wg_max(v: f32, li: u32) -> f32 {
    let s = subgroupMax(v);
    let size = subgroupAdd(1u);
    if (li % size == 0u) {
        red[li / size] = s;
    }
    workgroupBarrier();
    var total = red[0];
    for (var i = 1u; i < 64u / size; i++) {
        total = max(total, red[i]);
    }
    workgroupBarrier();
    return total;
}
