//! The teacher's targets from the runtime's kernels and the target cache, against burn's
//! forward pass of the same teacher (a second implementation of the model).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use bertling_compressor::convert::{encoder_from_data, quantize, QuantPlan};
use bertling_compressor::corpus::Corpus;
use bertling_compressor::distill::{
    distill, distill_loss, layer_outputs, pair_layers, trainee, DistillConfig, LayerMap, Losses,
};
use bertling_compressor::student::{Batch, Encoder};
use bertling_compressor::targets::{distill_request, full_request, Targets, TeacherSource};
use bertling_runtime::{Input, ModelData, TargetRequest};
use burn::prelude::*;

fn teacher_data() -> ModelData {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls");
    bertling_runtime::load_hf_dir(&dir).unwrap()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bertling-targets-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Lines of varied length over the tiny vocabulary (so batches are padded).
fn corpus(dir: &Path) -> PathBuf {
    let words = ["the", "a", "good", "bad", "movie", "plot", "not", "very", "i", "love", "it"];
    // Line k: 1 + k mod 11 words, picked by a fixed stride through the list.
    let text: String = (0..120usize)
        .map(|k| {
            let line: Vec<&str> = (0..1 + k % 11).map(|j| words[(k * 7 + j * 3 + j * j) % words.len()]).collect();
            line.join(" ") + "\n"
        })
        .collect();
    let p = dir.join("corpus.txt");
    std::fs::write(&p, text).unwrap();
    p
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// Largest |a − b| over the positions where `mask` (per value) is set.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Zeroes burn's values at padding (the runtime's targets are zero there; the losses mask them).
fn masked_hidden(t: Tensor<3>, mask: &Tensor<2>) -> Vec<f32> {
    floats(t * mask.clone().unsqueeze_dim::<3>(2))
}

fn masked_attention(t: Tensor<4>, mask: &Tensor<2>) -> Vec<f32> {
    let [b, _, s, _] = t.dims();
    let q = mask.clone().reshape([b, 1, s, 1]);
    floats(t * q)
}

/// Every hidden state, attention map and the logits of the runtime's teacher equal burn's
/// forward pass of the same model on a padded batch, and so does every loss computed from them.
#[test]
fn runtime_targets_equal_burns_teacher_for_every_loss() {
    let data = teacher_data();
    let plain = Device::flex();
    let teacher = encoder_from_data(&data, &plain).unwrap();
    let dir = tmpdir("equal");
    let mut c = Corpus::open(&corpus(&dir), &data.tokenizer_json, 32).unwrap();
    let inputs = c.next_batch(9).unwrap();
    assert!(inputs.iter().map(|i| i.ids.len()).min() < inputs.iter().map(|i| i.ids.len()).max());
    let batch = Batch::new(&inputs, &plain);
    let full = full_request(&teacher);
    assert_eq!(full.hidden, [0, 2, 4], "the embedding output and both layer outputs");
    assert_eq!(full.attention, [0, 1]);
    assert!(full.logits);
    let mut source = TeacherSource::new(&data, full.clone(), 0).unwrap();
    let ours = source.targets(&inputs, &plain).unwrap();
    let burn = Targets::from_outputs(teacher.forward(&batch));
    for &h in &full.hidden {
        let d = max_diff(&masked_hidden(ours.hidden(h), &batch.mask), &masked_hidden(burn.hidden(h), &batch.mask));
        assert!(d < 1e-4, "hidden state {h}: {d}");
    }
    for &a in &full.attention {
        let (x, y) = (masked_attention(ours.attention(a), &batch.mask), masked_attention(burn.attention(a), &batch.mask));
        assert!(max_diff(&x, &y) < 1e-5, "attention {a}: {}", max_diff(&x, &y));
    }
    let d = max_diff(&floats(ours.logits.clone().unwrap()), &floats(burn.logits.clone().unwrap()));
    assert!(d < 1e-4, "logits: {d}");

    // Every loss of a student with a head (a 2-bit copy of the teacher), all weights on.
    let device = plain.clone().autodiff();
    let student = quantize(teacher.clone(), &QuantPlan::weights(2, None), &BTreeMap::new()).unwrap();
    let cfg = DistillConfig { max_len: 32, ..Default::default() };
    let t = trainee(student, &teacher, &cfg, &device).unwrap();
    let pairs = pair_layers(&LayerMap::Uniform, layer_outputs(&t.student).len(), layer_outputs(&teacher).len()).unwrap();
    let need = distill_request(&t.student, &teacher, &pairs, &cfg.weights);
    assert_eq!(need, full, "a same-shape student reads everything");
    let train_batch = Batch::new(&inputs, &device);
    let (_, a) = distill_loss(&t, &ours, &teacher, &train_batch, &pairs, &cfg.weights);
    let (_, b) = distill_loss(&t, &burn, &teacher, &train_batch, &pairs, &cfg.weights);
    let parts = |l: &Losses| [l.total, l.hidden, l.attention, l.embedding, l.logits, l.sentence];
    for (x, y) in parts(&a).iter().zip(parts(&b)) {
        assert!(*x > 0.0 && (x - y).abs() <= 1e-4 * y.abs().max(1e-3), "{a:?} vs {b:?}");
    }
}

/// What a narrower student's losses read: its paired layers only, no attention without weight.
#[test]
fn a_request_holds_only_what_the_losses_read() {
    let data = teacher_data();
    let teacher = encoder_from_data(&data, &Device::flex()).unwrap();
    let mut one_layer = teacher.clone();
    one_layer.blocks.truncate(2);
    one_layer.head = None;
    let pairs = pair_layers(&LayerMap::Uniform, 1, 2).unwrap();
    let weights = bertling_compressor::distill::LossWeights::default();
    let r = distill_request(&one_layer, &teacher, &pairs, &weights);
    assert_eq!(r, TargetRequest { hidden: vec![0, 4], attention: vec![1], logits: false });
    let no_att = bertling_compressor::distill::LossWeights { attention: 0.0, embedding: 0.0, ..weights };
    let r = distill_request(&one_layer, &teacher, &pairs, &no_att);
    assert_eq!(r, TargetRequest { hidden: vec![4], attention: vec![], logits: false });
    // A source cannot serve a request the teacher does not have.
    let bad = TargetRequest { hidden: vec![9], ..Default::default() };
    assert!(TeacherSource::new(&data, bad, 0).is_err());
}

fn all_floats(t: &Targets, r: &TargetRequest) -> Vec<Vec<f32>> {
    let mut v: Vec<Vec<f32>> = r.hidden.iter().map(|&h| floats(t.hidden(h))).collect();
    v.extend(r.attention.iter().map(|&a| floats(t.attention(a))));
    v.extend(t.logits.clone().map(floats));
    v
}

/// The cache gives the live targets to f16 precision, is found again by a later run (also by
/// one that reads less), drops a record cut off by a kill, recomputes a damaged one, and refuses
/// a directory its description does not match.
#[test]
fn the_cache_keeps_targets_and_survives_kills_and_damage() {
    let data = teacher_data();
    let plain = Device::flex();
    let teacher = encoder_from_data(&data, &plain).unwrap();
    let dir = tmpdir("cache");
    let corpus_path = corpus(&dir);
    let root = dir.join("cache");
    let full = full_request(&teacher);
    let mut c = Corpus::open(&corpus_path, &data.tokenizer_json, 32).unwrap();
    let batches: Vec<Vec<Input>> = (0..3).map(|_| c.next_batch(6).unwrap()).collect();
    let mut live = TeacherSource::new(&data, full.clone(), 0).unwrap();
    let want: Vec<Vec<Vec<f32>>> =
        batches.iter().map(|b| all_floats(&live.targets(b, &plain).unwrap(), &full)).collect();
    let close = |got: &[Vec<f32>], want: &[Vec<f32>]| {
        for (g, w) in got.iter().zip(want) {
            for (x, y) in g.iter().zip(w) {
                assert!((x - y).abs() <= 2e-3 * y.abs().max(0.5), "{x} vs {y}");
            }
        }
    };
    let open = |req: &TargetRequest| {
        TeacherSource::new(&data, req.clone(), 0).unwrap().cached(&data, &root, &corpus_path, 32, &full).unwrap()
    };
    // First run: every text is new; the targets are the live ones (rounded to f16).
    let (mut first, notes) = open(&full);
    assert!(notes.iter().any(|n| n.contains("new target cache")), "{notes:?}");
    for (b, w) in batches.iter().zip(&want) {
        close(&all_floats(&first.targets(b, &plain).unwrap(), &full), w);
    }
    let s = first.cache_stats();
    let texts: usize = batches.iter().map(Vec::len).sum();
    let distinct = batches.iter().flatten().map(|i| (i.ids.clone(), i.type_ids.clone())).collect::<std::collections::HashSet<_>>().len();
    assert_eq!((s.hits + s.misses) as usize, texts);
    assert_eq!(s.records as usize, distinct);
    drop(first);
    // Second run, reading only the last layer: all hits, the same values.
    let last = TargetRequest { hidden: vec![4], attention: vec![1], logits: false };
    let (mut second, notes) = open(&last);
    assert!(notes.is_empty(), "{notes:?}");
    let got = second.targets(&batches[1], &plain).unwrap();
    let mut live_last = TeacherSource::new(&data, last.clone(), 0).unwrap();
    close(&all_floats(&got, &last), &all_floats(&live_last.targets(&batches[1], &plain).unwrap(), &last));
    assert_eq!(second.cache_stats().misses, 0);
    assert_eq!(second.cache_stats().hits as usize, batches[1].len());
    drop(second);

    let store = std::fs::read_dir(std::fs::read_dir(&root).unwrap().next().unwrap().unwrap().path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bin = store.join("targets.bin");
    // A kill in the middle of a record: the partial record is dropped with a note, and rebuilt.
    let whole = std::fs::metadata(&bin).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&bin).unwrap();
    f.set_len(whole - 100).unwrap();
    drop(f);
    let (mut third, notes) = open(&full);
    assert!(notes.iter().any(|n| n.contains("dropped")), "{notes:?}");
    let before = third.cache_stats().records;
    assert_eq!(before as usize, distinct - 1);
    for (b, w) in batches.iter().zip(&want) {
        close(&all_floats(&third.targets(b, &plain).unwrap(), &full), w);
    }
    assert_eq!(third.cache_stats().misses, 1);
    assert_eq!(third.cache_stats().records as usize, distinct);
    drop(third);
    // A flipped byte inside the first record's payload: its checksum fails, it is recomputed.
    let mut bytes = std::fs::read(&bin).unwrap();
    bytes[40 + 7] ^= 0x55;
    std::fs::write(&bin, &bytes).unwrap();
    let (mut fourth, _) = open(&full);
    for (b, w) in batches.iter().zip(&want) {
        close(&all_floats(&fourth.targets(b, &plain).unwrap(), &full), w);
    }
    assert_eq!(fourth.cache_stats().rebuilt, 1);
    drop(fourth);
    // Another corpus is another key: a new cache, nothing read from this one.
    let other = dir.join("other.txt");
    std::fs::write(&other, "i love it\n").unwrap();
    let (_, notes) = TeacherSource::new(&data, full.clone(), 0).unwrap().cached(&data, &root, &other, 32, &full).unwrap();
    assert!(notes.iter().any(|n| n.contains("new target cache")));
    // A description that does not match its directory (copied from elsewhere) is refused.
    let meta = store.join("meta.json");
    let text = std::fs::read_to_string(&meta).unwrap().replace("\"max_len\": 32", "\"max_len\": 31");
    std::fs::write(&meta, text).unwrap();
    let err = TeacherSource::new(&data, full.clone(), 0).unwrap().cached(&data, &root, &corpus_path, 32, &full).err().unwrap();
    assert!(err.to_string().contains("delete it"), "{err}");
}

/// A short distillation whose teacher is read from the cache follows the live run's losses.
#[test]
fn a_run_from_the_cache_follows_the_live_run() {
    let data = teacher_data();
    let plain = Device::flex();
    let device = plain.clone().autodiff();
    let teacher = encoder_from_data(&data, &plain).unwrap();
    let dir = tmpdir("run");
    let corpus_path = corpus(&dir);
    let root = dir.join("cache");
    let cfg = DistillConfig { steps: 6, batch_size: 8, lr: 3e-3, warmup: 2, max_len: 32, checkpoint_every: 0, ..Default::default() };
    let student = || -> Encoder {
        let mut s = teacher.clone();
        s.blocks.truncate(2);
        s.head = None;
        s
    };
    let run = |cached: bool| -> (Vec<Losses>, u64) {
        let t = trainee(student(), &teacher, &cfg, &device).unwrap();
        let mut source = TeacherSource::for_distill(&data, &t.student, &teacher, &cfg, 0).unwrap();
        if cached {
            source = source.cached(&data, &root, &corpus_path, 32, &full_request(&teacher)).unwrap().0;
        }
        let mut c = Corpus::open(&corpus_path, &data.tokenizer_json, 32).unwrap();
        let mut losses = Vec::new();
        let mut hits = 0;
        distill(t, &teacher, &mut source, &mut c, &cfg, None, &device, None, None, |p| {
            losses.push(p.losses);
            hits = p.cache.map_or(0, |c| c.hits);
            ControlFlow::Continue(())
        })
        .unwrap();
        (losses, hits)
    };
    let (live, _) = run(false);
    let (filling, _) = run(true);
    let (from_cache, hits) = run(true);
    assert_eq!(hits, 6 * 8, "the second cached run reads every text from the cache");
    assert!(live.last().unwrap().total < live[0].total, "the student learns");
    for (a, b) in live.iter().zip(&filling).chain(live.iter().zip(&from_cache)) {
        for (x, y) in [(a.total, b.total), (a.hidden, b.hidden), (a.attention, b.attention), (a.sentence, b.sentence)] {
            assert!((x - y).abs() <= 1e-2 * y.abs().max(1e-3), "live {a:?}\ncached {b:?}");
        }
    }
}
