//! The public surface that the bindings build on: cancellation, batching, error kinds,
//! loading from bytes.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bertling_runtime::{write_package, Backend, Error, ErrorKind, Input, LoadOptions, Model};
use common::{hetero, max_abs_diff};

fn long_inputs(n: usize) -> Vec<Input> {
    (0..n)
        .map(|i| {
            let ids: Vec<u32> = (0..48).map(|j| ((i * 7 + j * 3) % 40 + 2) as u32).collect();
            Input { type_ids: vec![0; ids.len()], ids }
        })
        .collect()
}

#[test]
fn cancel_stops_a_call_in_flight_and_later_calls_run() {
    let model = Arc::new(Model::from_data(hetero(3), &LoadOptions { threads: Some(2), ..Default::default() }).unwrap());
    // 40,000 inputs of 48 tokens: about 470 batches, far longer than the cancel loop's period.
    let inputs = Arc::new(long_inputs(40_000));
    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let (model, inputs, done) = (model.clone(), inputs.clone(), done.clone());
        std::thread::spawn(move || {
            let r = model.embed_inputs(&inputs);
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    // Cancel until the call returns: whichever cancel lands after the call started stops it.
    while !done.load(Ordering::SeqCst) {
        model.cancel();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let err = worker.join().unwrap().unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    // A call started after the cancellations runs to the end.
    let few = &inputs[..3];
    assert_eq!(model.embed_inputs(few).unwrap().len(), 3);
}

#[test]
fn batches_give_the_vectors_of_single_inputs() {
    let model = Model::from_data(hetero(5), &LoadOptions { threads: Some(2), ..Default::default() }).unwrap();
    // 200 inputs of 48 tokens span three CPU batches.
    let inputs = long_inputs(200);
    let all = model.embed_inputs(&inputs).unwrap();
    for (i, input) in inputs.iter().enumerate().step_by(37) {
        let one = model.embed_inputs(std::slice::from_ref(input)).unwrap();
        assert!(max_abs_diff(&one[0], &all[i]) < 1e-5, "input {i}");
    }
    let hidden = model.hidden_states_inputs(&inputs).unwrap();
    let single = model.hidden_states_inputs(&inputs[199..]).unwrap();
    for (a, b) in hidden[199].layers.iter().zip(&single[0].layers) {
        assert!(max_abs_diff(a, b) < 1e-5);
    }
}

#[test]
fn errors_have_stable_kinds() {
    let missing = Model::load("/nonexistent/model.bertling", &LoadOptions::default()).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Io, "{missing}");
    let garbage = Model::from_package_bytes(b"not a package at all", &LoadOptions::default()).unwrap_err();
    assert_eq!(garbage.kind(), ErrorKind::InvalidModel, "{garbage}");
    let threads = Model::from_data(hetero(1), &LoadOptions { threads: Some(0), ..Default::default() }).unwrap_err();
    assert_eq!(threads.kind(), ErrorKind::InvalidArgument);
    let mut no_head = hetero(1);
    no_head.spec.head = None;
    no_head.tensors.retain(|k, _| !k.starts_with("head."));
    let model = Model::from_data(no_head, &LoadOptions::default()).unwrap();
    assert_eq!(model.classify(&["x"]).unwrap_err().kind(), ErrorKind::NoClassificationHead);
    let bad_id = Input { ids: vec![2, 999], type_ids: vec![0, 0] };
    assert_eq!(model.embed_inputs(&[bad_id]).unwrap_err().kind(), ErrorKind::InvalidArgument);
    let backend = "tpu".parse::<Backend>().unwrap_err();
    assert_eq!(backend.kind(), ErrorKind::InvalidArgument);
}

#[cfg(not(feature = "gpu"))]
#[test]
fn a_cpu_only_build_refuses_the_gpu_and_falls_back_on_auto() {
    let err = Model::from_data(hetero(1), &LoadOptions { backend: Backend::Wgpu, ..Default::default() }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Gpu, "{err}");
    let auto = Model::from_data(hetero(1), &LoadOptions { backend: Backend::Auto, ..Default::default() }).unwrap();
    assert!(auto.device().starts_with("cpu"));
}

#[test]
fn bytes_and_data_load_the_same_model() {
    let data = hetero(7);
    let bytes = write_package(&data).unwrap();
    let texts = ["good movie", "a b c d", ""];
    let from_data = Model::from_data(data, &LoadOptions::default()).unwrap().embed(&texts).unwrap();
    let from_bytes = Model::from_package_bytes(&bytes, &LoadOptions::default()).unwrap().embed(&texts).unwrap();
    assert_eq!(from_data, from_bytes);
}
