//! Small-model tests: a random BERT classifier from transformers (BF16 weights, `bert.` prefix,
//! 3-label head), heterogeneous architectures against an independent padded-batch reference,
//! quantized packages at every width, and error handling.

mod common;

use bertling_runtime::data::ActStep;
use bertling_runtime::spec::BlockSpec;
use bertling_runtime::{cosine, load_hf_dir, read_package, write_package, Error, Input, LoadOptions, Model, ModelData, Precision, TensorData};
use common::{fixtures, hetero, light_tagger, max_abs_diff, with_description, Rng};

fn tiny_dir() -> std::path::PathBuf {
    fixtures().join("tiny_cls")
}

fn golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(tiny_dir().join("golden.json")).unwrap()).unwrap()
}

fn softmax(l: &[f64]) -> Vec<f64> {
    let m = l.iter().cloned().fold(f64::MIN, f64::max);
    let e: Vec<f64> = l.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn classifier_matches_transformers() {
    let model = Model::load(tiny_dir(), &LoadOptions::default()).unwrap();
    assert_eq!(model.info().labels.as_deref(), Some(&["negative".to_string(), "neutral".into(), "positive".into()][..]));
    let g = golden();
    for case in g["singles"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(model.tokenize(&[text]).unwrap()[0].ids, ids);
        let want = softmax(&floats(&case["logits"]));
        let got = &model.classify(&[text]).unwrap()[0];
        for (a, b) in got.probs.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-5, "{text:?}: {:?} vs {want:?}", got.probs);
        }
        let best = want.iter().enumerate().max_by(|a, b| a.1.partial_cmp(b.1).unwrap()).unwrap().0;
        assert_eq!(got.label_id, best);
        assert_eq!(got.label, ["negative", "neutral", "positive"][best]);
    }
    for case in g["pairs"].as_array().unwrap() {
        let (a, b) = (case["a"].as_str().unwrap(), case["b"].as_str().unwrap());
        let inp = &model.tokenize_pairs(&[(a, b)]).unwrap()[0];
        let type_ids: Vec<u32> = case["type_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(inp.type_ids, type_ids);
        let want = softmax(&floats(&case["logits"]));
        let got = &model.classify_pairs(&[(a, b)]).unwrap()[0];
        for (x, y) in got.probs.iter().zip(&want) {
            assert!((*x as f64 - y).abs() < 1e-5);
        }
    }
}

/// An independent reference: a padded batch with an attention mask, in f64, written
/// directly from the block definitions in FORMAT.md.
/// Returns each input's pooled embedding, its sequence head's logits (with a pooler and
/// classifier; else none) and its final token states.
fn reference(m: &ModelData, inputs: &[Input]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let t = |n: &str| -> Vec<f64> { m.tensors[n].to_f32().iter().map(|&v| v as f64).collect() };
    let l_max = inputs.iter().map(|i| i.ids.len()).max().unwrap();
    let b = inputs.len();
    let eps = m.spec.layer_norm_eps as f64;
    let mask: Vec<Vec<bool>> = inputs.iter().map(|i| (0..l_max).map(|p| p < i.ids.len()).collect()).collect();
    let ln = |x: &mut [f64], w: usize, g: &[f64], bb: &[f64]| {
        for row in x.chunks_mut(w) {
            let mean = row.iter().sum::<f64>() / w as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / w as f64;
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - mean) / (var + eps).sqrt() * g[j] + bb[j];
            }
        }
    };
    let lin = |x: &[f64], name: &str, inp: usize, out: usize| -> Vec<f64> {
        let w = t(&format!("{name}.weight"));
        let bias = t(&format!("{name}.bias"));
        let mut x = x.to_vec();
        if let Some(TensorData::Quant { act: Some(a), .. }) = m.tensors.get(&format!("{name}.weight")) {
            // The stored weights are W / m: the input is multiplied by m, then quantized with
            // one step per tensor or each row's max / Q_P.
            let (lo, hi) = (-(1i64 << (a.bits - 1)) as f64, ((1i64 << (a.bits - 1)) - 1) as f64);
            let smooth: Vec<f64> = a.smooth.as_ref().map_or(vec![1.0; inp], |m| m.iter().map(|&v| v as f64).collect());
            for row in x.chunks_mut(inp) {
                row.iter_mut().zip(&smooth).for_each(|(v, m)| *v *= m);
                let step = match a.step {
                    ActStep::Tensor(s) => s as f64,
                    ActStep::Token => row.iter().fold(0f64, |acc, v| acc.max(v.abs())) / hi,
                };
                for v in row.iter_mut() {
                    *v = if step > 0.0 { (*v / step).round_ties_even().clamp(lo, hi) * step } else { 0.0 };
                }
            }
        }
        let rows = x.len() / inp;
        let mut y = vec![0f64; rows * out];
        for r in 0..rows {
            for o in 0..out {
                y[r * out + o] = bias[o] + (0..inp).map(|k| x[r * inp + k] * w[o * inp + k]).sum::<f64>();
            }
        }
        y
    };
    let gelu = |v: f64| 0.5 * v * (1.0 + libm::erf(v / 2f64.sqrt()));
    let mut w = m.spec.embeddings.width;
    let (we, pe, te) = (t("embeddings.word"), t("embeddings.position"), t("embeddings.token_type"));
    let mut x = vec![0f64; b * l_max * w];
    for (s, inp) in inputs.iter().enumerate() {
        for p in 0..l_max {
            let (id, tt) = if p < inp.ids.len() { (inp.ids[p] as usize, inp.type_ids[p] as usize) } else { (0, 0) };
            for j in 0..w {
                x[(s * l_max + p) * w + j] = we[id * w + j] + pe[p * w + j] + te[tt * w + j];
            }
        }
    }
    ln(&mut x, w, &t("embeddings.ln.weight"), &t("embeddings.ln.bias"));
    for (i, blk) in m.spec.blocks.iter().enumerate() {
        let p = format!("blocks.{i}");
        match *blk {
            BlockSpec::Attention { heads, head_dim, .. } => {
                let inner = heads * head_dim;
                let qkv = lin(&x, &format!("{p}.attn.qkv"), w, 3 * inner);
                let mut ctx = vec![0f64; b * l_max * inner];
                for s in 0..b {
                    for h in 0..heads {
                        for qi in 0..l_max {
                            let row = |pos: usize, part: usize, d: usize| qkv[(s * l_max + pos) * 3 * inner + part * inner + h * head_dim + d];
                            let scores: Vec<f64> = (0..l_max)
                                .map(|kj| {
                                    let dot: f64 = (0..head_dim).map(|d| row(qi, 0, d) * row(kj, 1, d)).sum();
                                    dot / (head_dim as f64).sqrt() + if mask[s][kj] { 0.0 } else { f32::MIN as f64 }
                                })
                                .collect();
                            let pr = softmax(&scores);
                            for d in 0..head_dim {
                                ctx[(s * l_max + qi) * inner + h * head_dim + d] = (0..l_max).map(|kj| pr[kj] * row(kj, 2, d)).sum();
                            }
                        }
                    }
                }
                let o = lin(&ctx, &format!("{p}.attn.out"), inner, w);
                x.iter_mut().zip(o).for_each(|(a, b)| *a += b);
                ln(&mut x, w, &t(&format!("{p}.ln.weight")), &t(&format!("{p}.ln.bias")));
            }
            BlockSpec::FeedForward { inner, .. } => {
                let h: Vec<f64> = lin(&x, &format!("{p}.ffn.in"), w, inner).into_iter().map(gelu).collect();
                let o = lin(&h, &format!("{p}.ffn.out"), inner, w);
                x.iter_mut().zip(o).for_each(|(a, b)| *a += b);
                ln(&mut x, w, &t(&format!("{p}.ln.weight")), &t(&format!("{p}.ln.bias")));
            }
            BlockSpec::SepConv { kernel, .. } => {
                let (dw, db) = (t(&format!("{p}.conv.depthwise.weight")), t(&format!("{p}.conv.depthwise.bias")));
                let mut c = vec![0f64; x.len()];
                for s in 0..b {
                    for pos in 0..l_max {
                        for ch in 0..w {
                            let mut acc = db[ch];
                            for j in 0..kernel {
                                let src = pos as i64 + j as i64 - (kernel / 2) as i64;
                                // Padding positions are zeroed before the convolution.
                                if src >= 0 && (src as usize) < l_max && mask[s][src as usize] {
                                    acc += dw[ch * kernel + j] * x[(s * l_max + src as usize) * w + ch];
                                }
                            }
                            c[(s * l_max + pos) * w + ch] = gelu(acc);
                        }
                    }
                }
                let o = lin(&c, &format!("{p}.conv.pointwise"), w, w);
                x.iter_mut().zip(o).for_each(|(a, b)| *a += b);
                ln(&mut x, w, &t(&format!("{p}.ln.weight")), &t(&format!("{p}.ln.bias")));
            }
            BlockSpec::BiConv { kernel, .. } => {
                // The first half of the channels reads tokens back, the second ahead.
                let (dw, db) = (t(&format!("{p}.conv.depthwise.weight")), t(&format!("{p}.conv.depthwise.bias")));
                let half = w / 2;
                let mut c = vec![0f64; x.len()];
                for s in 0..b {
                    for pos in 0..l_max {
                        for ch in 0..w {
                            let mut acc = db[ch];
                            for j in 0..kernel {
                                let src = if ch < half { pos as i64 - j as i64 } else { pos as i64 + j as i64 };
                                if src >= 0 && (src as usize) < l_max && mask[s][src as usize] {
                                    acc += dw[ch * kernel + j] * x[(s * l_max + src as usize) * w + ch];
                                }
                            }
                            c[(s * l_max + pos) * w + ch] = gelu(acc);
                        }
                    }
                }
                // One pointwise map and norm for both streams: rows of `half`.
                let o = lin(&c, &format!("{p}.conv.pointwise"), half, half);
                x.iter_mut().zip(o).for_each(|(a, b)| *a += b);
                ln(&mut x, half, &t(&format!("{p}.ln.weight")), &t(&format!("{p}.ln.bias")));
            }
            BlockSpec::Identity { .. } => {}
            BlockSpec::Projection { output, .. } => {
                x = lin(&x, &format!("{p}.proj"), w, output);
                w = output;
            }
        }
    }
    let mut pooled = Vec::new();
    let mut logits = Vec::new();
    let mut states = Vec::new();
    for (s, inp) in inputs.iter().enumerate() {
        states.push(x[s * l_max * w..(s * l_max + inp.ids.len()) * w].to_vec());
        let n = inp.ids.len();
        let mut v = vec![0f64; w];
        for pos in 0..n {
            for j in 0..w {
                v[j] += x[(s * l_max + pos) * w + j] / n as f64;
            }
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        pooled.push(v.iter().map(|a| a / norm).collect());
        if m.tensors.contains_key("head.pooler.weight") {
            let cls = &x[s * l_max * w..(s * l_max + 1) * w];
            let pooled_cls: Vec<f64> = lin(cls, "head.pooler", w, w).into_iter().map(f64::tanh).collect();
            logits.push(lin(&pooled_cls, "head.classifier", w, 2));
        }
    }
    (pooled, logits, states)
}

fn sample_inputs(model: &Model) -> Vec<Input> {
    let mut inputs = model.tokenize(&["good movie", "", "the plot was not very good, but the music! i love it and the ending", "fun ?"]).unwrap();
    let mut rng = Rng(7);
    let ids: Vec<u32> = (0..48).map(|_| (rng.next_u64() % 44) as u32).collect();
    inputs.push(Input { type_ids: (0..48).map(|i| (i >= 20) as u32).collect(), ids });
    inputs
}

#[test]
fn heterogeneous_blocks_match_padded_reference() {
    let data = hetero(1);
    for threads in [1, 2] {
        let model = Model::from_data(data.clone(), &LoadOptions { threads: Some(threads), ..Default::default() }).unwrap();
        let inputs = sample_inputs(&model);
        let (want_emb, want_logits, _) = reference(&data, &inputs);
        let emb = model.embed_inputs(&inputs).unwrap();
        let cls = model.classify_inputs(&inputs).unwrap();
        for i in 0..inputs.len() {
            let we: Vec<f32> = want_emb[i].iter().map(|&v| v as f32).collect();
            assert!(max_abs_diff(&emb[i], &we) < 1e-4, "input {i}: {:?} vs {:?}", &emb[i][..4], &we[..4]);
            let wp: Vec<f32> = softmax(&want_logits[i]).iter().map(|&v| v as f32).collect();
            assert!(max_abs_diff(&cls[i].probs, &wp) < 1e-4);
        }
        assert_eq!(model.info().output_width, 24);
    }
}

/// The light tagger's two-stream convolutions (`bi_conv`): each token's final state against the
/// padded f64 reference, float and with 8-bit per-token activations on the integer kernels;
/// and the views are what they say: the first half of a token's state does not change when a
/// later token does, the second half when an earlier one does.
#[test]
fn bi_conv_streams_match_padded_reference_and_see_one_side() {
    for (quantized, tol) in [(false, 1e-4), (true, 1e-4)] {
        let data = light_tagger(3, quantized);
        let model = Model::from_data(data.clone(), &LoadOptions { threads: Some(2), ..Default::default() }).unwrap();
        let inputs = sample_inputs(&model);
        let (_, _, want) = reference(&data, &inputs);
        let got = model.token_states(&inputs).unwrap();
        assert_eq!(got.len(), inputs.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.len(), w.len(), "input {i}");
            let w: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            assert!(max_abs_diff(g, &w) < tol, "quantized {quantized}, input {i}");
        }
        // Change token 5 of the long input: tokens before it keep their forward half, tokens
        // after it their backward half; the other half changes within the receptive field
        // (kernels 3 and 4: 2 + 3 tokens).
        let long = inputs.last().unwrap().clone();
        let mut other = long.clone();
        other.ids[5] = (other.ids[5] + 1) % 44;
        let states = model.token_states(&[long.clone(), other]).unwrap();
        let half = 12;
        for pos in 0..long.ids.len() {
            let (a, b) = (&states[0][pos * 24..(pos + 1) * 24], &states[1][pos * 24..(pos + 1) * 24]);
            if pos < 5 {
                assert_eq!(a[..half], b[..half], "forward stream at {pos}");
                assert_ne!(a[half..], b[half..], "backward stream at {pos} sees token 5");
            } else if pos > 5 {
                assert_eq!(a[half..], b[half..], "backward stream at {pos}");
                assert_eq!(a[..half] == b[..half], pos > 10, "forward stream at {pos} sees token 5 from 5 tokens on");
            }
        }
    }
}

#[test]
fn quantized_packages_every_width_match_dequantized_floats() {
    let data = load_hf_dir(&tiny_dir()).unwrap();
    let texts = ["good movie", "the plot was not very good, but the music!", "", "i hate this boring film ."];
    let float = Model::from_data(data.clone(), &LoadOptions::default()).unwrap().embed(&texts).unwrap();
    for bits in 2..=8u8 {
        for group in [None, Some(32)] {
            let q = data.convert(Precision::Quantized { bits, group, embedding_bits: bits }).unwrap();
            let bytes = write_package(&q).unwrap();
            let qm = Model::from_package_bytes(&bytes, &LoadOptions::default()).unwrap();
            assert_eq!(qm.info().matrix_bits, vec![bits]);
            // The same weights, dequantized ahead of time and run as floats.
            let deq = Model::from_data(q.convert(Precision::F32).unwrap(), &LoadOptions::default()).unwrap();
            let (a, b) = (qm.embed(&texts).unwrap(), deq.embed(&texts).unwrap());
            for (x, y) in a.iter().zip(&b) {
                assert!(max_abs_diff(x, y) < 1e-5, "bits {bits} group {group:?}");
            }
            if bits == 8 {
                for (x, y) in a.iter().zip(&float) {
                    assert!(cosine(x, y) > 0.99, "8-bit stays close to float");
                }
            }
        }
    }
}

/// Students with quantized activations (every weight width, per-row and group steps, A8, A4
/// and smoothing) run on the integer kernels give what the package defines: fake-quantized
/// activations times dequantized weights, computed in float (`Encoder::new_dequantized`).
#[test]
fn integer_kernels_match_the_dequantize_path_on_whole_models() {
    use bertling_runtime::cpu::{Encoder, Team};
    use bertling_runtime::ActQuant;
    let team = Team::new(2).unwrap();
    let inputs: Vec<Input> = [5usize, 17, 1, 40]
        .iter()
        .enumerate()
        .map(|(s, &len)| Input { ids: (0..len).map(|i| ((i * 7 + s * 3) % 44) as u32).collect(), type_ids: (0..len).map(|i| (i % 2) as u32).collect() })
        .collect();
    let mut rng = Rng(11);
    let mut flips = Vec::new();
    for bits in [2u8, 4, 5, 8] {
        for group in [None, Some(16), Some(32)] {
            let mut q = hetero(3).convert(Precision::Quantized { bits, group, embedding_bits: 8 }).unwrap();
            let names: Vec<String> = q.tensors.keys().filter(|n| n.starts_with("blocks.")).cloned().collect();
            for (i, name) in names.iter().enumerate() {
                let Some(TensorData::Quant { matrix, act }) = q.tensors.get_mut(name) else { continue };
                // Steps at odd fractions keep the inputs away from rounding ties: a code that
                // flips on float noise would move a value by a whole step.
                let abits = if i % 3 == 2 { 4 } else { 8 };
                let step = if abits == 4 { 0.3007 } else { 0.02131 };
                let smooth = (i % 2 == 1).then(|| rng.vec(matrix.cols, 0.5).iter().map(|v| 1.0 + v).collect::<Vec<f32>>());
                let step = if i % 4 == 3 { ActStep::Token } else { ActStep::Tensor(step) };
                let spec = q.spec.quantized.get_mut(name).unwrap();
                spec.act_bits = Some(abits);
                spec.act_smooth = smooth.is_some();
                spec.act_per_token = step == ActStep::Token;
                *act = Some(ActQuant { bits: abits, step, smooth });
            }
            let want = Encoder::new_dequantized(q.clone()).unwrap().forward(&inputs, &team, true);
            let got = Encoder::new(q).unwrap().forward(&inputs, &team, true);
            let worst = got.hidden.iter().zip(&want.hidden).map(|(g, w)| max_abs_diff(g, w)).fold(0f32, f32::max);
            if worst >= 1e-4 {
                // Float noise may still put one activation on the other side of a rounding
                // boundary: that moves it by one step, a few 1e-3 here. Any real difference
                // (a wrong step, group or bias) shows in every configuration and is larger.
                assert!(worst < 0.05, "w{bits} {group:?}: hidden states differ by {worst}");
                flips.push(format!("w{bits} {group:?}: {worst}"));
            }
        }
    }
    assert!(flips.len() <= 2, "more than rounding differences: {flips:?}");
}

#[test]
fn export_is_reproducible_and_round_trips() {
    let data = hetero(3);
    let a = write_package(&data).unwrap();
    let b = write_package(&data).unwrap();
    assert_eq!(a, b, "the same model writes the same bytes");
    let back = read_package(&a).unwrap();
    assert_eq!(back.spec, data.spec);
    assert_eq!(back.tensors, data.tensors);
    assert_eq!(write_package(&back).unwrap(), a);
}

/// Step sizes are stored as F16 exactly when every one of a matrix's steps is an f16 value,
/// and read back unchanged either way.
#[test]
fn steps_are_stored_as_f16_only_when_lossless() {
    let data = load_hf_dir(&tiny_dir()).unwrap();
    let mut q = data.convert(Precision::Quantized { bits: 4, group: Some(32), embedding_bits: 8 }).unwrap();
    let name = "blocks.1.ffn.in.weight";
    let TensorData::Quant { matrix, .. } = q.tensors.get_mut(name).unwrap() else { panic!("quantized") };
    for s in matrix.scales.iter_mut() {
        *s = half::f16::from_f32(*s).to_f32();
    }
    let bytes = write_package(&q).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header[format!("{name}.scales")]["dtype"], "F16");
    // Absmax steps of round-to-nearest are not f16 values (checked, not assumed).
    let TensorData::Quant { matrix: other, .. } = &q.tensors["blocks.1.ffn.out.weight"] else { panic!("quantized") };
    assert!(other.scales.iter().any(|&s| half::f16::from_f32(s).to_f32() != s));
    assert_eq!(header["blocks.1.ffn.out.weight.scales"]["dtype"], "F32");
    assert_eq!(read_package(&bytes).unwrap().tensors, q.tensors);
}

#[test]
fn bad_packages_are_clear_errors() {
    let good = write_package(&hetero(5)).unwrap();
    assert!(read_package(&good).is_ok());
    for cut in [0, 7, 8, 100, good.len() / 2, good.len() - 1] {
        let err = read_package(&good[..cut]).unwrap_err();
        assert!(matches!(err, Error::Container { .. }), "cut at {cut}: {err}");
    }
    let newer = bertling_runtime::spec::FORMAT_VERSION + 1;
    let future = with_description(&good, |d| d["format_version"] = newer.into());
    let err = read_package(&future).unwrap_err();
    assert!(matches!(err, Error::UnsupportedVersion { .. }), "{err}");
    assert!(err.to_string().contains(&format!("version {newer}")), "{err}");
    // A per-token matrix whose per-tensor step is missing once the description drops the flag.
    let stepless = with_description(&good, |d| d["quantized"]["blocks.3.ffn.out.weight"]["act_per_token"] = false.into());
    let err = read_package(&stepless).unwrap_err();
    assert!(err.to_string().contains("blocks.3.ffn.out.weight.act_step"), "{err}");
    let shapes = with_description(&good, |d| d["blocks"][3]["inner"] = 41.into());
    let err = read_package(&shapes).unwrap_err();
    assert!(err.to_string().contains("blocks.3.ffn"), "{err}");
    let chain = with_description(&good, |d| d["blocks"][2]["output"] = 30.into());
    assert!(matches!(read_package(&chain).unwrap_err(), Error::Package(_)));
    // Activation smoothing announced but not stored; factors of the wrong length or value.
    let smooth = with_description(&good, |d| d["quantized"]["blocks.3.ffn.in.weight"]["act_smooth"] = true.into());
    let err = read_package(&smooth).unwrap_err();
    assert!(err.to_string().contains("blocks.3.ffn.in.weight.act_smooth"), "{err}");
    for (factors, says) in [(vec![1.0; 3], "3 smoothing factors for 24 input columns"), (vec![0.0; 24], "smoothing factor 0 must be finite and non-zero")] {
        let mut m = hetero(5);
        let Some(TensorData::Quant { act: Some(a), .. }) = m.tensors.get_mut("blocks.3.ffn.in.weight") else { panic!("the fixture quantizes blocks.3.ffn.in") };
        a.smooth = Some(factors);
        m.spec.quantized.get_mut("blocks.3.ffn.in.weight").unwrap().act_smooth = true;
        let err = write_package(&m).unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
    // Non-finite float weights, stored as f32 or as f16.
    for (half, bad) in [(false, f32::NAN), (true, f32::INFINITY)] {
        let mut m = hetero(5);
        let t = m.tensors.get_mut("embeddings.ln.bias").unwrap();
        let mut v = t.to_f32();
        v[1] = bad;
        *t = if half {
            TensorData::F16 { shape: t.shape(), data: v.iter().map(|&x| half::f16::from_f32(x)).collect() }
        } else {
            TensorData::F32 { shape: t.shape(), data: v }
        };
        let err = write_package(&m).unwrap_err();
        assert!(err.to_string().contains("embeddings.ln.bias") && err.to_string().contains("non-finite"), "{err}");
    }
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    assert!(read_package(&garbage).is_err());
    assert!(Model::from_package_bytes(&garbage, &LoadOptions::default()).is_err());
    // A model file that is not a package at all.
    let dir = tempdir();
    let path = dir.join("x.bin");
    std::fs::write(&path, b"hello").unwrap();
    assert!(matches!(Model::load(&path, &LoadOptions::default()).unwrap_err(), Error::UnknownModelPath { .. }));
    assert!(matches!(Model::load(dir.join("missing"), &LoadOptions::default()).unwrap_err(), Error::Io { .. }));
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("bertling-test-{}-{}", std::process::id(), Rng(0).next_u64() % 1000));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn bad_inputs_and_directories_are_clear_errors() {
    let dir = tempdir().join("hf");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(tiny_dir().join(f), dir.join(f)).unwrap();
    }
    let err = Model::load(&dir, &LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("tokenizer.json is missing"), "{err}");
    std::fs::copy(tiny_dir().join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    std::fs::write(dir.join("config.json"), "{\"hidden_size\": 32").unwrap();
    assert!(matches!(Model::load(&dir, &LoadOptions::default()).unwrap_err(), Error::Json { .. }));

    let model = Model::from_data(hetero(2), &LoadOptions::default()).unwrap();
    let bad = Input { ids: vec![2, 999, 3], type_ids: vec![0; 3] };
    assert!(matches!(model.embed_inputs(&[bad]).unwrap_err(), Error::InvalidArgument(_)));
    let long = Input { ids: vec![5; 49], type_ids: vec![0; 49] };
    assert!(model.embed_inputs(&[long]).is_err());
    assert!(model.embed_inputs(&[]).unwrap().is_empty());
    let mut no_head = hetero(2);
    no_head.spec.head = None;
    no_head.tensors.retain(|k, _| !k.starts_with("head."));
    let m = Model::from_data(no_head, &LoadOptions::default()).unwrap();
    assert!(matches!(m.classify(&["x"]).unwrap_err(), Error::NoClassificationHead));
    assert!(Model::from_data(hetero(2), &LoadOptions { threads: Some(0), ..Default::default() }).is_err());
    // Long texts are truncated to the model's maximum, not rejected.
    let long_text = "good ".repeat(200);
    assert_eq!(model.tokenize(&[&long_text]).unwrap()[0].ids.len(), 48);
    assert_eq!(model.embed(&[&long_text]).unwrap().len(), 1);
}

#[test]
fn model_is_send_and_sync_and_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Model>();
    let model = std::sync::Arc::new(Model::from_data(hetero(4), &LoadOptions { threads: Some(2), ..Default::default() }).unwrap());
    let want = model.embed(&["good movie"]).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = model.clone();
            std::thread::spawn(move || m.embed(&["good movie"]).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
}
