// Activation functions shared by matmul.wgsl and sepconv.wgsl (prepended at build time).

// erf by the rational approximation of the CPU backend (absolute error < 1e-6).
fn erf_approx(v: f32) -> f32 {
    let x = clamp(v, -4.0, 4.0);
    let x2 = x * x;
    var a = -2.7261423e-10;
    a = a * x2 + 2.7706814e-8;
    a = a * x2 - 2.101024e-6;
    a = a * x2 - 5.6925064e-5;
    a = a * x2 - 7.3499063e-4;
    a = a * x2 - 2.9546001e-3;
    a = a * x2 - 1.6096033e-2;
    var b = -1.4566072e-5;
    b = b * x2 - 2.1337406e-4;
    b = b * x2 - 1.682827e-3;
    b = b * x2 - 7.3733292e-3;
    b = b * x2 - 1.426474e-2;
    return select(x * a / b, sign(x), abs(x) >= 4.0);
}

// GELU with the exact error function: x · (1 + erf(x / √2)) / 2.
fn gelu(v: f32) -> f32 {
    return 0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752));
}
