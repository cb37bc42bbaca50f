//! Package integrity: the checksum checked against an independent SHA-256, version-1 and -2
//! packages still read, a hand-made deflate stream read as version 3's tokenizer, and seeded
//! mutations of a small package, first as they are (every one
//! must be refused) and then resealed with a valid checksum (the parser, validation, model
//! construction and an embedding behind the checksum must return Ok or Err, never panic).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use bertling_runtime::package::{reseal, CHECKSUM_KEY, METADATA_KEY, TOKENIZER_DEFLATE_TENSOR, TOKENIZER_TENSOR};
use bertling_runtime::{read_package, write_package, Backend, Error, LoadOptions, Model, Precision, TextTokenizer};
use common::{hetero, Rng};
use sha2::{Digest, Sha256};

fn header(bytes: &[u8]) -> (usize, serde_json::Value) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (n, serde_json::from_slice(&bytes[8..8 + n]).unwrap())
}

/// Replaces the header of a container (data offsets are relative to the data, so they stay).
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let (n, mut h) = header(bytes);
    edit(&mut h);
    let h = serde_json::to_vec(&h).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(&bytes[8 + n..]);
    out
}

/// The container rebuilt with the deflated tokenizer stored as plain text under its version-2
/// name, as a version-2 writer wrote it (resealed).
fn as_version_2(v3: &[u8], tokenizer_json: &str) -> Vec<u8> {
    let (n, h) = header(v3);
    let data = &v3[8 + n..];
    let mut tensors: Vec<(String, serde_json::Value)> =
        h.as_object().unwrap().iter().filter(|(k, _)| *k != "__metadata__").map(|(k, v)| (k.clone(), v.clone())).collect();
    tensors.sort_by_key(|(_, v)| v["data_offsets"][0].as_u64().unwrap());
    let mut out_header = serde_json::Map::new();
    let mut meta = h["__metadata__"].clone();
    description_of(&mut meta, |d| d["format_version"] = 2.into());
    out_header.insert("__metadata__".into(), meta);
    let mut out_data = Vec::new();
    for (name, mut info) in tensors {
        let (a, b) = (info["data_offsets"][0].as_u64().unwrap() as usize, info["data_offsets"][1].as_u64().unwrap() as usize);
        let (name, bytes) = if name == TOKENIZER_DEFLATE_TENSOR {
            info["shape"] = serde_json::json!([tokenizer_json.len()]);
            (TOKENIZER_TENSOR.to_string(), tokenizer_json.as_bytes())
        } else {
            (name, &data[a..b])
        };
        info["data_offsets"] = serde_json::json!([out_data.len(), out_data.len() + bytes.len()]);
        out_data.extend_from_slice(bytes);
        out_header.insert(name, info);
    }
    let h = serde_json::to_vec(&serde_json::Value::Object(out_header)).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(out_data);
    assert!(reseal(&mut out));
    out
}

fn description_of(meta: &mut serde_json::Value, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut d: serde_json::Value = serde_json::from_str(meta[METADATA_KEY].as_str().unwrap()).unwrap();
    edit(&mut d);
    meta[METADATA_KEY] = d.to_string().into();
}

fn description(h: &mut serde_json::Value, edit: impl FnOnce(&mut serde_json::Value)) {
    description_of(&mut h["__metadata__"], edit)
}

#[test]
fn checksum_is_the_sha256_of_the_file_with_the_checksum_zeroed() {
    let bytes = write_package(&hetero(1)).unwrap();
    let (_, h) = header(&bytes);
    let meta = h["__metadata__"].as_object().unwrap();
    assert_eq!(meta.len(), 2, "{meta:?}");
    let stated = meta[CHECKSUM_KEY].as_str().unwrap();
    let d: serde_json::Value = serde_json::from_str(meta[METADATA_KEY].as_str().unwrap()).unwrap();
    assert_eq!(d["format_version"], 6);
    // FORMAT.md's recipe: the checksum's 64 characters read as '0', the SHA-256 of everything.
    let at = bytes.windows(64).position(|w| w == stated.as_bytes()).unwrap();
    let mut zeroed = bytes.clone();
    zeroed[at..at + 64].fill(b'0');
    let want: String = Sha256::digest(&zeroed).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(stated, want);
    // Resealing an intact package changes nothing.
    let mut again = bytes.clone();
    assert!(reseal(&mut again));
    assert_eq!(again, bytes);
}

#[test]
fn damaged_packages_are_refused() {
    let bytes = write_package(&hetero(2)).unwrap();
    let (n, _) = header(&bytes);
    assert!(read_package(&bytes).is_ok());
    // One flipped bit in a weight, in the tokenizer, in the description, in the checksum itself.
    let tokenizer = tokenizer_range(&bytes).start + 40;
    let hex = bytes.windows(CHECKSUM_KEY.len()).position(|w| w == CHECKSUM_KEY.as_bytes()).unwrap() + CHECKSUM_KEY.len() + 3;
    let layer_norm = bytes.windows(14).position(|w| w == b"layer_norm_eps").unwrap();
    for at in [bytes.len() - 3, 8 + n + 100, tokenizer + 3, layer_norm + 2, hex + 10] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x04;
        let err = read_package(&bad).unwrap_err();
        assert!(matches!(err, Error::Damaged(_)), "byte {at}: {err}");
        assert!(err.to_string().contains("checksum mismatch") && err.to_string().contains("re-download or re-export"), "{err}");
        assert!(Model::from_package_bytes(&bad, &LoadOptions::default()).is_err());
    }
    // A version-3 package without its checksum, or a version-1 package with one (its version
    // was altered), or a checksum that is not 64 hex digits.
    let missing = with_header(&bytes, |h| {
        h["__metadata__"].as_object_mut().unwrap().remove(CHECKSUM_KEY);
    });
    let err = read_package(&missing).unwrap_err();
    assert!(matches!(err, Error::Damaged(_)) && err.to_string().contains("missing"), "{err}");
    let v1_with_checksum = with_header(&bytes, |h| description(h, |d| d["format_version"] = 1.into()));
    assert!(matches!(read_package(&v1_with_checksum).unwrap_err(), Error::Damaged(_)));
    let short = with_header(&bytes, |h| h["__metadata__"][CHECKSUM_KEY] = "abc".into());
    let err = read_package(&short).unwrap_err();
    assert!(matches!(err, Error::Damaged(_)) && err.to_string().contains("64 lowercase hex digits"), "{err}");
}

/// The tokenizer stream is plain RFC 1951: one stored block written by hand (BFINAL=1, BTYPE=00,
/// LEN, NLEN, the bytes) is read like the writer's compressed one; damaged streams are errors.
#[test]
fn the_tokenizer_is_a_raw_deflate_stream() {
    let model = hetero(6);
    let text = model.tokenizer_json.as_bytes();
    assert!(text.len() < 65536);
    let mut stored = vec![0x01];
    stored.extend((text.len() as u16).to_le_bytes());
    stored.extend((!(text.len() as u16)).to_le_bytes());
    stored.extend(text);
    let written = write_package(&model).unwrap();
    let r = tokenizer_range(&written);
    assert!(r.len() < text.len() / 2, "{} deflated bytes for {} of text", r.len(), text.len());
    // The same container with another stream in place of the writer's: the tensors after it
    // move by the difference in length.
    let with_stream = |stream: &[u8]| {
        let mut out = written[..r.start].to_vec();
        out.extend(stream);
        out.extend(&written[r.end..]);
        let shift = stream.len() as i64 - r.len() as i64;
        let mut out = with_header(&out, |h| {
            let [start, end] = [0, 1].map(|k| h[TOKENIZER_DEFLATE_TENSOR]["data_offsets"][k].as_i64().unwrap());
            for (name, info) in h.as_object_mut().unwrap().iter_mut() {
                if name == TOKENIZER_DEFLATE_TENSOR {
                    info["data_offsets"] = serde_json::json!([start, end + shift]);
                    info["shape"] = serde_json::json!([stream.len()]);
                } else if info["data_offsets"][0].as_i64().is_some_and(|o| o >= end) {
                    let [a, b] = [0, 1].map(|k| info["data_offsets"][k].as_i64().unwrap() + shift);
                    info["data_offsets"] = serde_json::json!([a, b]);
                }
            }
        });
        assert!(reseal(&mut out));
        out
    };
    let back = read_package(&with_stream(&stored)).unwrap();
    assert_eq!(back.tokenizer_json, model.tokenizer_json);
    assert_eq!(back.tensors, model.tensors);
    let truncated = read_package(&with_stream(&stored[..stored.len() - 10])).unwrap_err();
    assert!(truncated.to_string().contains(TOKENIZER_DEFLATE_TENSOR), "{truncated}");
    let mut bad_type = stored.clone();
    bad_type[0] = 0x07; // BTYPE=11 is reserved
    let err = read_package(&with_stream(&bad_type)).unwrap_err();
    assert!(err.to_string().contains("not a valid deflate stream"), "{err}");
}

/// A version-1 package is what a version-1 writer wrote: one metadata key, version 1, no checksum,
/// the tokenizer as plain text.
fn as_version_1(v2: &[u8]) -> Vec<u8> {
    with_header(v2, |h| {
        h["__metadata__"].as_object_mut().unwrap().remove(CHECKSUM_KEY);
        description(h, |d| d["format_version"] = 1.into());
    })
}

#[test]
fn version_1_and_2_packages_are_still_read_and_rewritten_in_the_newest_version() {
    let model = hetero(3).convert(Precision::Quantized { bits: 4, group: Some(16), embedding_bits: 8 }).unwrap();
    let v3 = write_package(&model).unwrap();
    let v2 = as_version_2(&v3, &model.tokenizer_json);
    let back = read_package(&v2).unwrap();
    assert_eq!(back.spec.format_version, 2);
    assert_eq!((&back.tensors, &back.tokenizer_json), (&model.tensors, &model.tokenizer_json));
    assert_eq!(write_package(&back).unwrap(), v3, "the writer always writes the newest version");
    let v1 = as_version_1(&v2);
    let back = read_package(&v1).unwrap();
    assert_eq!(back.spec.format_version, 1);
    assert_eq!((&back.tensors, &back.tokenizer_json), (&model.tensors, &model.tokenizer_json));
    assert_eq!(write_package(&back).unwrap(), v3, "the writer always writes the newest version");
    // A version-3 description over a plain tokenizer, or a version-2 one over a deflated one, is
    // a package some tool mislabelled: refused with the tensor it lacks.
    for (bytes, version, missing) in [(&v2, 3, TOKENIZER_DEFLATE_TENSOR), (&v3, 2, TOKENIZER_TENSOR)] {
        let mut relabelled = with_header(bytes, |h| description(h, |d| d["format_version"] = version.into()));
        assert!(reseal(&mut relabelled));
        let err = read_package(&relabelled).unwrap_err();
        assert!(err.to_string().contains(missing) && err.to_string().contains("missing"), "{err}");
    }
    // Version 1 has no checksum to catch damage: the reader still validates what it can.
    let mut bad = v1.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(read_package(&bad).is_ok(), "a version-1 package cannot detect a flipped weight bit");
    let (n, _) = header(&v1);
    assert!(read_package(&v1[..8 + n]).is_err());
}

/// Per-token activation steps (version 4) store no step tensor; a description that claims them
/// without quantized activations is refused.
#[test]
fn per_token_activation_steps_store_no_step() {
    let model = hetero(5);
    assert!(model.spec.quantized["blocks.3.ffn.out.weight"].act_per_token);
    let bytes = write_package(&model).unwrap();
    let (_, h) = header(&bytes);
    assert!(h.get("blocks.3.ffn.out.weight.act_step").is_none());
    assert!(h.get("blocks.3.ffn.out.weight.act_smooth").is_some());
    assert!(h.get("blocks.3.ffn.in.weight.act_step").is_some(), "per-tensor steps are still stored");
    assert_eq!(read_package(&bytes).unwrap().tensors, model.tensors);
    let mut bad = with_header(&bytes, |h| {
        description(h, |d| {
            let q = d["quantized"]["blocks.3.ffn.out.weight"].as_object_mut().unwrap();
            q.remove("act_bits");
            q.remove("act_smooth");
        })
    });
    assert!(reseal(&mut bad));
    let err = read_package(&bad).unwrap_err().to_string();
    assert!(err.contains("per-token activation steps without activation quantization"), "{err}");
}

/// A tokenizer.json corruption found by mutating tokenizer.json files (fuzz/README.md): the
/// post-processor's template names a special token its `special_tokens` table lacks, and the
/// tokenizers crate panics ("no entry found for key") when it encodes. The runtime must return
/// an error instead. Applied to all-MiniLM-L6-v2's real tokenizer.json.
#[test]
fn tokenizer_panics_are_errors() {
    let path = common::minilm_dir().join("tokenizer.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["post_processor"]["special_tokens"].as_object_mut().unwrap().remove("[CLS]");
    let text = json.to_string();
    let raw = catch_unwind(|| tokenizers::Tokenizer::from_bytes(text.as_bytes()).map(|t| t.encode("hello world", true).map(|e| e.get_ids().len())));
    assert!(raw.is_err(), "the reference: tokenizers itself panics on this tokenizer.json");
    let tokenizer = TextTokenizer::new(&text, 16).unwrap();
    let err = tokenizer.encode(&["hello world"]).unwrap_err();
    assert!(matches!(err, Error::Tokenizer(_)) && err.to_string().contains("damaged"), "{err}");
    assert!(matches!(tokenizer.encode_pairs(&[("a", "b")]), Err(Error::Tokenizer(_))));
    // The same through a model: loading succeeds (the tokenizer parses), embedding fails cleanly,
    // and the model keeps working for calls that do not reach the broken part.
    let mut model = hetero(4);
    model.tokenizer_json = text;
    let opts = LoadOptions { backend: Backend::Cpu, threads: Some(1), ..Default::default() };
    let m = Model::from_data(model, &opts).unwrap();
    assert!(matches!(m.embed(&["hello world"]), Err(Error::Tokenizer(_))));
    let input = bertling_runtime::Input { ids: vec![2, 7, 3], type_ids: vec![0; 3] };
    assert_eq!(m.embed_inputs(&[input]).unwrap().len(), 1);
}

/// Where the tokenizer tensor's bytes (deflated or plain) are in the file.
fn tokenizer_range(bytes: &[u8]) -> std::ops::Range<usize> {
    let (n, h) = header(bytes);
    let name = if h.get(TOKENIZER_TENSOR).is_some() { TOKENIZER_TENSOR } else { TOKENIZER_DEFLATE_TENSOR };
    let off = &h[name]["data_offsets"];
    8 + n + off[0].as_u64().unwrap() as usize..8 + n + off[1].as_u64().unwrap() as usize
}

const NUMBERS: [&str; 8] = ["0", "1", "7", "255", "65536", "4294967296", "1099511627776", "18446744073709551615"];

/// One seeded mutation. Edits inside the header keep its length prefix right, so that they reach
/// the JSON and the description rather than only the container's framing.
fn mutate(bytes: &[u8], rng: &mut Rng) -> (Vec<u8>, String) {
    let mut b = bytes.to_vec();
    let (n, _) = header(bytes);
    let below = |rng: &mut Rng, k: usize| (rng.next_u64() % k.max(1) as u64) as usize;
    let kind = below(rng, 10);
    let what = match kind {
        0 => {
            let at = below(rng, b.len());
            let bit = below(rng, 8);
            b[at] ^= 1 << bit;
            format!("flip bit {bit} of byte {at}")
        }
        1 => {
            let at = below(rng, b.len());
            let v = rng.next_u64() as u8;
            b[at] = v;
            format!("byte {at} = {v}")
        }
        2 => {
            let len = below(rng, b.len());
            b.truncate(len);
            format!("truncate to {len}")
        }
        3 => {
            let at = below(rng, b.len() + 1);
            let k = 1 + below(rng, 8);
            let ins: Vec<u8> = (0..k).map(|_| rng.next_u64() as u8).collect();
            b.splice(at..at, ins);
            format!("insert {k} bytes at {at}")
        }
        4 => {
            let at = below(rng, b.len());
            let k = 1 + below(rng, 16).min(b.len() - at - 1);
            b.drain(at..at + k);
            format!("delete {k} bytes at {at}")
        }
        5 | 6 => {
            // A digit of the header (a dimension, a shape, an offset, a step) becomes another.
            let digits: Vec<usize> = (8..8 + n).filter(|&i| b[i].is_ascii_digit()).collect();
            let at = digits[below(rng, digits.len())];
            let d = b'0' + below(rng, 10) as u8;
            b[at] = d;
            format!("header digit at {at} = {}", d as char)
        }
        7 => {
            // A whole number of the header becomes an extreme one (vocab 2^40, offsets past the end).
            let starts: Vec<usize> = (8..8 + n).filter(|&i| b[i].is_ascii_digit() && !b[i - 1].is_ascii_digit()).collect();
            let at = starts[below(rng, starts.len())];
            let end = (at..8 + n).find(|&i| !b[i].is_ascii_digit()).unwrap_or(8 + n);
            let num = NUMBERS[below(rng, NUMBERS.len())];
            b.splice(at..end, num.bytes());
            let new_n = n + num.len() - (end - at);
            b[..8].copy_from_slice(&(new_n as u64).to_le_bytes());
            format!("header number at {at} = {num}")
        }
        8 => {
            // Header punctuation or letters: keys, kinds, booleans, brackets.
            let at = 8 + below(rng, n);
            let v = b"{}[]\",:tfn0aekz \\"[below(rng, 16)];
            b[at] = v;
            format!("header byte {at} = {:?}", v as char)
        }
        _ if !tokenizer_range(bytes).is_empty() && header(bytes).1.get(TOKENIZER_DEFLATE_TENSOR).is_some() => {
            // A byte of the deflate stream changes.
            let r = tokenizer_range(bytes);
            let at = r.start + below(rng, r.len());
            let v = rng.next_u64() as u8;
            b[at] = v;
            format!("deflated tokenizer byte {at} = {v}")
        }
        _ => {
            // A printable character of the tokenizer becomes another (the text stays UTF-8).
            let r = tokenizer_range(bytes);
            let at = r.start + below(rng, r.len());
            let v = if b[at].is_ascii_digit() { b'0' + below(rng, 10) as u8 } else { b" \"{}[],:0123abAZ#\\"[below(rng, 18)] };
            if b[at].is_ascii() {
                b[at] = v;
            }
            format!("tokenizer byte {at} = {:?}", v as char)
        }
    };
    (b, what)
}

/// Packages as the writer writes them (version 3, deflated tokenizer), and one as a version-2
/// writer did, whose plain tokenizer text the mutations can edit.
fn packages() -> Vec<(&'static str, Vec<u8>)> {
    let float = hetero(11);
    let quant = hetero(12).convert(Precision::Quantized { bits: 3, group: Some(16), embedding_bits: 5 }).unwrap();
    let v2 = as_version_2(&write_package(&quant).unwrap(), &quant.tokenizer_json);
    vec![("float", write_package(&float).unwrap()), ("quantized", write_package(&quant).unwrap()), ("quantized, version 2", v2)]
}

/// Without resealing, every mutation must be refused: the checksum covers every byte.
#[test]
fn every_mutation_is_refused() {
    for (name, good) in packages() {
        let mut rng = Rng(0x5eed_0001);
        let mut tried = 0;
        let mut damaged = 0;
        while tried < 2000 {
            let (bad, what) = mutate(&good, &mut rng);
            if bad == good {
                continue;
            }
            tried += 1;
            let outcome = catch_unwind(|| read_package(&bad).map(|_| ()));
            match outcome {
                Err(_) => panic!("{name}: {what}: read_package panicked"),
                Ok(Ok(())) => panic!("{name}: {what}: a damaged package was accepted"),
                Ok(Err(e)) => damaged += matches!(e, Error::Damaged(_)) as usize,
            }
        }
        // Many mutations leave the container readable and are caught only by the checksum (the
        // others break the container's framing: truncations, shifted offsets).
        assert!(damaged > tried / 4, "{name}: only {damaged} of {tried} refused by the checksum");
    }
}

/// Resealed mutations reach everything behind the checksum: each must end in Ok or Err.
#[test]
fn resealed_mutations_never_panic() {
    let opts = LoadOptions { backend: Backend::Cpu, threads: Some(1), ..Default::default() };
    for (name, good) in packages() {
        let mut rng = Rng(0x5eed_0002);
        let (mut read, mut built, mut embedded) = (0, 0, 0);
        let mut panics = Vec::new();
        let cases = 1500;
        for _ in 0..cases {
            let (mut bad, what) = mutate(&good, &mut rng);
            reseal(&mut bad);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let data = read_package(&bad)?;
                read += 1;
                let m = Model::from_data(data, &opts)?;
                built += 1;
                let e = m.embed(&["a short text to embed", "x"])?;
                embedded += 1;
                Ok::<_, Error>(e)
            }));
            if outcome.is_err() {
                panics.push(what);
            }
        }
        assert!(panics.is_empty(), "{name}: {} of {cases} resealed mutations panicked, e.g. {:?}", panics.len(), &panics[..panics.len().min(5)]);
        // The mutations must get past the parser often enough to exercise the model.
        assert!(read > cases / 10 && built > cases / 10 && embedded > cases / 10, "{name}: read {read}, built {built}, embedded {embedded} of {cases}");
    }
}
