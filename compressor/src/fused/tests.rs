//! The fused kernels against the composed forms of `lsq::composed` and burn's GELU (a second
//! implementation each), forward values and gradients, on the Flex device with autodiff.

use burn::prelude::*;

use crate::lsq::composed;

fn vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// Deterministic values in about `[-scale, scale]`, with exact zeros and ties sprinkled in.
fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            match i % 29 {
                0 => 0.0,
                7 => 0.5 * scale / 8.0,
                _ => (x as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale,
            }
        })
        .collect()
}

fn input<const D: usize>(v: Vec<f32>, shape: [usize; D], dev: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), dev).require_grad()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol * b.abs().max(1.0), "{what}[{i}]: {a} vs {b}");
    }
}

#[test]
fn per_token_quantization_equals_the_composed_form() {
    let dev = Device::flex().autodiff();
    let shape = [3, 5, 40];
    for bits in 2..=8u8 {
        let mut x = values(600, bits as u32, 3.0);
        x[40..80].iter_mut().for_each(|v| *v = 0.0); // a row of zeros
        let weights = Tensor::<3>::from_data(TensorData::new(values(600, 99, 1.0), shape), &dev);
        let (a, b) = (input(x.clone(), shape, &dev), input(x, shape, &dev));
        let fa = super::fake_quant_rows(a.clone(), bits);
        let fb = composed::fake_quant_act_per_token(b.clone(), bits);
        assert_eq!(vec(fa.clone()), vec(fb.clone()), "bits {bits}: forward");
        let ga = (fa * weights.clone()).sum().backward();
        let gb = (fb * weights).sum().backward();
        // The composed gradient is `g · s · (1/s)` (rounded); the fused one is `g`.
        assert_close(&vec(a.grad(&ga).unwrap()), &vec(b.grad(&gb).unwrap()), 1e-6, &format!("bits {bits}: gradient"));
    }
}

#[test]
fn grouped_quantization_equals_the_composed_form() {
    let dev = Device::flex().autodiff();
    // 50 columns in groups of 32 leave a partial group; group 50 is one step per row.
    for (bits, group) in (2..=8u8).flat_map(|b| [(b, 32usize), (b, 50), (b, 1)]) {
        let (rows, cols) = (7usize, 50usize);
        let groups = cols.div_ceil(group);
        let w = values(rows * cols, 7 + bits as u32, 1.0);
        // Steps small enough that some values clip at every width.
        let s: Vec<f32> = values(rows * groups, 3, 1.0).iter().map(|v| 0.02 + 0.1 * v.abs()).collect();
        let weights = Tensor::<2>::from_data(TensorData::new(values(rows * cols, 5, 1.0), [rows, cols]), &dev);
        let (wa, sa) = (input(w.clone(), [rows, cols], &dev), input(s.clone(), [rows, groups], &dev));
        let (wb, sb) = (input(w, [rows, cols], &dev), input(s, [rows, groups], &dev));
        let fa = super::fake_quant_groups(wa.clone(), sa.clone(), bits, group);
        let fb = composed::fake_quant_expanded(wb.clone(), sb.clone(), bits, group);
        let what = format!("bits {bits} group {group}");
        assert_close(&vec(fa.clone()), &vec(fb.clone()), 1e-6, &format!("{what}: forward"));
        let ga = (fa * weights.clone()).sum().backward();
        let gb = (fb * weights).sum().backward();
        assert_close(&vec(wa.grad(&ga).unwrap()), &vec(wb.grad(&gb).unwrap()), 1e-6, &format!("{what}: dw"));
        assert_close(&vec(sa.grad(&ga).unwrap()), &vec(sb.grad(&gb).unwrap()), 1e-4, &format!("{what}: ds"));
    }
}

#[test]
fn gelu_equals_the_erf_form() {
    let dev = Device::flex().autodiff();
    let mut x = values(4000, 11, 6.0);
    x.extend([0.0, -0.0, 1e-8, -1e-8, 9.0, -9.0, 15.0, -15.0, 40.0, -40.0, 100.0, -100.0]);
    let n = x.len();
    let weights = Tensor::<1>::from_data(TensorData::new(values(n, 13, 1.0), [n]), &dev);
    let (a, b) = (input(x.clone(), [n], &dev), input(x, [n], &dev));
    let fa = super::gelu(a.clone());
    let fb = burn::tensor::activation::gelu(b.clone());
    // A&S 7.1.26 is good to 1.5e-7 in erf: |x| · 0.75e-7 in GELU.
    assert_close(&vec(fa.clone()), &vec(fb.clone()), 4e-7, "forward");
    let ga = (fa * weights.clone()).sum().backward();
    let gb = (fb * weights).sum().backward();
    assert_close(&vec(a.grad(&ga).unwrap()), &vec(b.grad(&gb).unwrap()), 1e-6, "gradient");
}

#[test]
fn without_autodiff_the_kernels_give_the_same_values() {
    let dev = Device::flex();
    let x = values(320, 21, 2.0);
    let t = Tensor::<2>::from_data(TensorData::new(x, [8, 40]), &dev);
    assert_eq!(vec(super::fake_quant_rows(t.clone(), 4)), vec(composed::fake_quant_act_per_token(t.clone(), 4)));
    assert_close(&vec(super::gelu(t.clone())), &vec(burn::tensor::activation::gelu(t)), 4e-7, "gelu");
}

#[test]
fn softmax_equals_burns() {
    let dev = Device::flex().autodiff();
    let shape = [2, 3, 5, 37];
    let n = shape.iter().product();
    let mut x = values(n, 17, 8.0);
    x[37..74].iter_mut().for_each(|v| *v = -1e4); // a row of masked keys, as the key bias makes
    x[100] = -1e4;
    let weights = Tensor::<4>::from_data(TensorData::new(values(n, 19, 1.0), shape), &dev);
    let (a, b) = (input(x.clone(), shape, &dev), input(x, shape, &dev));
    let fa = super::softmax(a.clone());
    let fb = burn::tensor::activation::softmax(b.clone(), 3);
    assert_close(&vec(fa.clone()), &vec(fb.clone()), 2e-6, "forward");
    let ga = (fa * weights.clone()).sum().backward();
    let gb = (fb * weights).sum().backward();
    assert_close(&vec(a.grad(&ga).unwrap()), &vec(b.grad(&gb).unwrap()), 2e-6, "gradient");
}

#[test]
fn layer_norm_equals_the_composed_form() {
    let dev = Device::flex().autodiff();
    let shape = [3, 7, 48];
    let n = shape.iter().product();
    let mut x = values(n, 23, 4.0);
    x[..48].iter_mut().for_each(|v| *v = 0.25); // a constant row: variance 0, eps decides
    let weights = Tensor::<3>::from_data(TensorData::new(values(n, 29, 1.0), shape), &dev);
    let param = |seed, off: f32| input(values(48, seed, 0.5).iter().map(|v| v + off).collect(), [48], &dev);
    let (ga_, ba_) = (param(31, 1.0), param(37, 0.0));
    let (gb_, bb_) = (param(31, 1.0), param(37, 0.0));
    let (a, b) = (input(x.clone(), shape, &dev), input(x, shape, &dev));
    let fa = super::layer_norm(a.clone(), ga_.clone(), ba_.clone(), 1e-12);
    let fb = super::composed_layer_norm(b.clone(), gb_.clone(), bb_.clone(), 1e-12);
    assert_close(&vec(fa.clone()), &vec(fb.clone()), 2e-6, "forward");
    let ga = (fa * weights.clone()).sum().backward();
    let gb = (fb * weights).sum().backward();
    assert_close(&vec(a.grad(&ga).unwrap()), &vec(b.grad(&gb).unwrap()), 1e-4, "dx");
    assert_close(&vec(ga_.grad(&ga).unwrap()), &vec(gb_.grad(&gb).unwrap()), 1e-5, "dgamma");
    assert_close(&vec(ba_.grad(&ga).unwrap()), &vec(bb_.grad(&gb).unwrap()), 1e-5, "dbeta");
}

#[test]
fn smoothed_per_token_quantization_equals_the_composed_form() {
    let dev = Device::flex().autodiff();
    let shape = [2, 6, 40];
    for bits in [2u8, 4, 8] {
        let x = values(480, 41 + bits as u32, 3.0);
        let m: Vec<f32> = values(40, 43, 1.0).iter().map(|v| 0.5 + v.abs()).collect();
        let weights = Tensor::<3>::from_data(TensorData::new(values(480, 47, 1.0), shape), &dev);
        let (xa, ma) = (input(x.clone(), shape, &dev), input(m.clone(), [40], &dev));
        let (xb, mb) = (input(x, shape, &dev), input(m, [40], &dev));
        let fa = super::smooth_quant_rows(xa.clone(), ma.clone(), bits);
        let fb = composed::fake_quant_act_per_token(xb.clone() * mb.clone().unsqueeze::<3>(), bits);
        assert_eq!(vec(fa.clone()), vec(fb.clone()), "bits {bits}: forward");
        let ga = (fa * weights.clone()).sum().backward();
        let gb = (fb * weights).sum().backward();
        assert_close(&vec(xa.grad(&ga).unwrap()), &vec(xb.grad(&gb).unwrap()), 1e-6, &format!("bits {bits}: dx"));
        assert_close(&vec(ma.grad(&ga).unwrap()), &vec(mb.grad(&gb).unwrap()), 1e-5, &format!("bits {bits}: dm"));
    }
}
