//! The bertling model package, version 6 (FORMAT.md): one safetensors container whose header
//! metadata holds the model description under the key `bertling` and the file's SHA-256 under
//! `bertling_sha256`, and whose tensors hold the weights (float, or packed codes plus step sizes)
//! and the deflated tokenizer. Version-2 (tokenizer not compressed) and version-1 packages (no
//! checksum either) are still read.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use half::f16;
use safetensors::tensor::{Dtype, SafeTensors, View};
use sha2::{Digest, Sha256};

use crate::data::{ActQuant, ActStep, ModelData, TensorData};
use crate::error::{Error, Result};
use crate::quant::{groups_per_row, words_per_row, QuantMatrix};
use crate::spec::{names, ModelSpec, FORMAT_VERSION, OLDEST_FORMAT_VERSION};

/// The header metadata key that holds the model description.
pub const METADATA_KEY: &str = "bertling";
/// The header metadata key that holds the package's checksum (format version 2): the hex
/// SHA-256 of the whole file with this value replaced by 64 `0` characters.
pub const CHECKSUM_KEY: &str = "bertling_sha256";
/// The tensor that holds the tokenizer in packages of format versions 1 and 2 (UTF-8
/// `tokenizer.json`, dtype U8).
pub const TOKENIZER_TENSOR: &str = "tokenizer.json";
/// The tensor that holds the tokenizer from format version 3 on: `tokenizer.json` compressed as
/// a raw deflate stream (RFC 1951), dtype U8. A WordPiece vocabulary of 30k tokens shrinks from
/// 466 to 191 KB, 5% of a 2-bit package of all-MiniLM-L6-v2.
pub const TOKENIZER_DEFLATE_TENSOR: &str = "tokenizer.json.deflate";
/// The first format version whose tokenizer is deflated.
const DEFLATED_TOKENIZER_SINCE: u64 = 3;
/// The largest tokenizer.json a package may inflate to; a damaged or hostile stream stops here
/// instead of filling memory.
pub const MAX_TOKENIZER_BYTES: usize = 64 << 20;

/// The checksum key as it appears in the header JSON, followed by the opening quote of its value.
const CHECKSUM_FIELD: &[u8] = b"\"bertling_sha256\":\"";
const HEX_DIGITS: usize = 64;

/// True when the bytes start like a safetensors container whose metadata names bertling.
pub fn looks_like_package(bytes: &[u8]) -> bool {
    SafeTensors::read_metadata(bytes).map(|(_, m)| m.metadata().as_ref().is_some_and(|m| m.contains_key(METADATA_KEY))).unwrap_or(false)
}

/// Reads a package from a file.
pub fn read_package_file(path: &Path) -> Result<ModelData> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_package(&bytes)
}

/// Reads and validates a package: a version-2 package's checksum is verified before anything
/// else is read from it.
pub fn read_package(bytes: &[u8]) -> Result<ModelData> {
    let container = |detail: String| Error::Container { what: "bertling package".into(), detail };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| container(e.to_string()))?;
    let metadata = meta.metadata().as_ref();
    let Some(text) = metadata.and_then(|m| m.get(METADATA_KEY)) else {
        return Err(Error::Package(format!(
            "the safetensors file has no `{METADATA_KEY}` metadata: it is not a bertling package (a Hugging Face model is loaded from its directory)"
        )));
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|source| Error::Json { what: "package description".into(), source })?;
    let version = match value.get("format_version").and_then(|v| v.as_u64()) {
        Some(v) if (OLDEST_FORMAT_VERSION as u64..=FORMAT_VERSION as u64).contains(&v) => v,
        other => {
            let found = other.map_or_else(|| "missing".to_string(), |v| v.to_string());
            return Err(Error::UnsupportedVersion { found, supported: FORMAT_VERSION });
        }
    };
    match (version, metadata.and_then(|m| m.get(CHECKSUM_KEY))) {
        (1, None) => {}
        // A version-1 writer never wrote a checksum: the version number itself was altered.
        (1, Some(_)) => return Err(Error::Damaged("it says format version 1 but carries a version-2 checksum".into())),
        (_, None) => return Err(Error::Damaged(format!("its `{CHECKSUM_KEY}` checksum is missing"))),
        (_, Some(stated)) => verify_checksum(bytes, stated)?,
    }
    let spec: ModelSpec = serde_json::from_value(value).map_err(|source| Error::Json { what: "package description".into(), source })?;
    spec.validate()?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| container(e.to_string()))?;

    let mut used = 0usize;
    let mut get = |name: &str| {
        used += 1;
        st.tensor(name).map_err(|_| Error::tensor(name, "is missing from the package"))
    };
    let tok_name = if version >= DEFLATED_TOKENIZER_SINCE { TOKENIZER_DEFLATE_TENSOR } else { TOKENIZER_TENSOR };
    let tok = get(tok_name)?;
    if tok.dtype() != Dtype::U8 {
        return Err(Error::tensor(tok_name, "must be U8 bytes"));
    }
    let text = if version >= DEFLATED_TOKENIZER_SINCE { inflate_tokenizer(tok.data())? } else { tok.data().to_vec() };
    let tokenizer_json = String::from_utf8(text).map_err(|_| Error::tensor(tok_name, "does not hold valid UTF-8"))?;

    let mut tensors = BTreeMap::new();
    for t in spec.expected_tensors() {
        let data = match spec.quantized.get(&t.name) {
            None => read_float(&t.name, &get(&t.name)?, &t.shape)?,
            Some(q) => {
                let (rows, cols) = (t.shape[0], t.shape[1]);
                let cname = names::codes(&t.name);
                let codes = get(&cname)?;
                expect(&cname, &codes, &[Dtype::U32], &[rows, words_per_row(cols, q.bits)])?;
                let sname = names::scales(&t.name);
                let scales = get(&sname)?;
                let scales = match read_float(&sname, &scales, &[rows, groups_per_row(cols, q.group)])? {
                    TensorData::F32 { data, .. } => data,
                    TensorData::F16 { data, .. } => data.iter().map(|v| v.to_f32()).collect(),
                    TensorData::Quant { .. } => unreachable!("read_float returns floats"),
                };
                let act = match q.act_bits {
                    None => None,
                    Some(bits) => {
                        let step = if q.act_per_token {
                            ActStep::Token
                        } else {
                            let aname = names::act_step(&t.name);
                            let a = get(&aname)?;
                            expect(&aname, &a, &[Dtype::F32], &[1])?;
                            ActStep::Tensor(f32s(a.data())[0])
                        };
                        let smooth = if q.act_smooth {
                            let mname = names::act_smooth(&t.name);
                            let m = get(&mname)?;
                            expect(&mname, &m, &[Dtype::F32], &[cols])?;
                            Some(f32s(m.data()))
                        } else {
                            None
                        };
                        Some(ActQuant { bits, step, smooth })
                    }
                };
                let matrix = QuantMatrix { rows, cols, bits: q.bits, group: q.group, codes: u32s(codes.data()), scales };
                TensorData::Quant { matrix, act }
            }
        };
        tensors.insert(t.name, data);
    }
    if used != st.len() {
        return Err(Error::Package(format!("the package holds {} tensors but its description uses {used}; it was written by an incompatible tool", st.len())));
    }
    let model = ModelData { spec, tensors, tokenizer_json };
    model.validate()?;
    Ok(model)
}

/// The tokenizer.json text of a version-3 package, from its raw deflate stream.
fn inflate_tokenizer(stream: &[u8]) -> Result<Vec<u8>> {
    use miniz_oxide::inflate::{decompress_to_vec_with_limit, TINFLStatus};
    decompress_to_vec_with_limit(stream, MAX_TOKENIZER_BYTES).map_err(|e| {
        let why = match e.status {
            TINFLStatus::HasMoreOutput => format!("inflates to more than the {MAX_TOKENIZER_BYTES} bytes a tokenizer may have"),
            TINFLStatus::FailedCannotMakeProgress => "is a truncated deflate stream".to_string(),
            _ => "is not a valid deflate stream".to_string(),
        };
        Error::tensor(TOKENIZER_DEFLATE_TENSOR, &why)
    })
}

/// Where the checksum's 64 hex digits start: just after the checksum key, which must appear
/// exactly once in the header. `None` when it does not.
fn checksum_offset(bytes: &[u8]) -> Option<usize> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header = bytes.get(8..8usize.checked_add(n)?)?;
    let mut found = header.windows(CHECKSUM_FIELD.len()).enumerate().filter(|(_, w)| *w == CHECKSUM_FIELD).map(|(i, _)| i);
    let at = 8 + found.next()? + CHECKSUM_FIELD.len();
    (found.next().is_none() && at + HEX_DIGITS <= 8 + n).then_some(at)
}

/// SHA-256 of the file with the 64 bytes at `at` read as `0` characters, hashed in place.
fn digest(bytes: &[u8], at: usize) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(&bytes[..at]);
    h.update([b'0'; HEX_DIGITS]);
    h.update(&bytes[at + HEX_DIGITS..]);
    h.finalize().into()
}

fn hex(digest: &[u8; 32]) -> [u8; HEX_DIGITS] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; HEX_DIGITS];
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
    out
}

fn verify_checksum(bytes: &[u8], stated: &str) -> Result<()> {
    // The parsed value must be the bytes at the one place the key is written, so that what is
    // zeroed for hashing is exactly the recorded checksum.
    let Some(at) = checksum_offset(bytes).filter(|&at| &bytes[at..at + HEX_DIGITS] == stated.as_bytes()) else {
        return Err(Error::Damaged(format!("its `{CHECKSUM_KEY}` checksum is not written once as 64 lowercase hex digits")));
    };
    if hex(&digest(bytes, at)) != stated.as_bytes() {
        return Err(Error::Damaged("checksum mismatch".into()));
    }
    Ok(())
}

/// Recomputes and rewrites a package's checksum in place, so that tests and the fuzz target can
/// reach the parser behind it with arbitrary bytes. Returns false when the bytes hold no single
/// checksum field to rewrite.
#[doc(hidden)]
pub fn reseal(bytes: &mut [u8]) -> bool {
    let Some(at) = checksum_offset(bytes) else { return false };
    let digits = hex(&digest(bytes, at));
    bytes[at..at + HEX_DIGITS].copy_from_slice(&digits);
    true
}

fn expect(name: &str, t: &safetensors::tensor::TensorView<'_>, dtypes: &[Dtype], shape: &[usize]) -> Result<()> {
    if !dtypes.contains(&t.dtype()) {
        return Err(Error::tensor(name, format!("has dtype {:?}; expected one of {dtypes:?}", t.dtype())));
    }
    if t.shape() != shape {
        return Err(Error::tensor(name, format!("has shape {:?}; expected {shape:?}", t.shape())));
    }
    Ok(())
}

fn read_float(name: &str, t: &safetensors::tensor::TensorView<'_>, shape: &[usize]) -> Result<TensorData> {
    expect(name, t, &[Dtype::F32, Dtype::F16], shape)?;
    let shape = shape.to_vec();
    Ok(match t.dtype() {
        Dtype::F32 => TensorData::F32 { shape, data: f32s(t.data()) },
        _ => TensorData::F16 { shape, data: t.data().chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]])).collect() },
    })
}

pub(crate) fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn u32s(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// A tensor ready to be written.
struct Out {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Out {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn le_bytes<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

/// Serialises a model as a package of the newest version (whatever version its description came from). The
/// output is byte-for-byte reproducible.
pub fn write_package(model: &ModelData) -> Result<Vec<u8>> {
    model.validate()?;
    let mut outs: BTreeMap<String, Out> = BTreeMap::new();
    // Level 9 of miniz_oxide is deterministic: the same text always gives the same stream.
    let tokenizer = miniz_oxide::deflate::compress_to_vec(model.tokenizer_json.as_bytes(), 9);
    outs.insert(TOKENIZER_DEFLATE_TENSOR.into(), Out { dtype: Dtype::U8, shape: vec![tokenizer.len()], bytes: tokenizer });
    for (name, t) in &model.tensors {
        match t {
            TensorData::F32 { shape, data } => {
                outs.insert(name.clone(), Out { dtype: Dtype::F32, shape: shape.clone(), bytes: le_bytes(data, f32::to_le_bytes) });
            }
            TensorData::F16 { shape, data } => {
                outs.insert(name.clone(), Out { dtype: Dtype::F16, shape: shape.clone(), bytes: le_bytes(data, f16::to_le_bytes) });
            }
            TensorData::Quant { matrix: m, act } => {
                outs.insert(names::codes(name), Out { dtype: Dtype::U32, shape: vec![m.rows, m.words_per_row()], bytes: le_bytes(&m.codes, u32::to_le_bytes) });
                // Steps go in as F16 when that loses nothing (the compressor's learned steps are
                // f16 values), as F32 otherwise.
                let shape = vec![m.rows, m.groups_per_row()];
                let halves: Option<Vec<f16>> = m.scales.iter().map(|&s| Some(f16::from_f32(s)).filter(|h| h.to_f32() == s)).collect();
                let scales = match halves {
                    Some(h) => Out { dtype: Dtype::F16, shape, bytes: le_bytes(&h, f16::to_le_bytes) },
                    None => Out { dtype: Dtype::F32, shape, bytes: le_bytes(&m.scales, f32::to_le_bytes) },
                };
                outs.insert(names::scales(name), scales);
                if let Some(a) = act {
                    if let Some(step) = a.tensor_step() {
                        let bytes = step.to_le_bytes().to_vec();
                        outs.insert(names::act_step(name), Out { dtype: Dtype::F32, shape: vec![1], bytes });
                    }
                    if let Some(m) = &a.smooth {
                        outs.insert(names::act_smooth(name), Out { dtype: Dtype::F32, shape: vec![m.len()], bytes: le_bytes(m, f32::to_le_bytes) });
                    }
                }
            }
        }
    }
    let spec = ModelSpec { format_version: FORMAT_VERSION, ..model.spec.clone() };
    let description = serde_json::to_string(&spec).map_err(|source| Error::Json { what: "package description".into(), source })?;
    let metadata = HashMap::from([(METADATA_KEY.to_string(), description)]);
    let unsealed = safetensors::serialize(outs.iter().map(|(k, v)| (k.as_str(), v)), Some(metadata))
        .map_err(|e| Error::Container { what: "writing the package".into(), detail: e.to_string() })?;
    seal(&unsealed)
}

/// Adds the checksum to a freshly serialised container. safetensors writes its metadata from a
/// hash map, in no fixed order, so the checksum is not handed to it but spliced in as the first
/// metadata key: the file stays byte-reproducible.
fn seal(unsealed: &[u8]) -> Result<Vec<u8>> {
    const OPEN: &[u8] = b"{\"__metadata__\":{";
    let layout = || Error::Container { what: "writing the package".into(), detail: "safetensors wrote an unexpected header layout".into() };
    let n = unsealed.get(..8).and_then(|b| usize::try_from(u64::from_le_bytes(b.try_into().ok()?)).ok()).ok_or_else(layout)?;
    let (header, data) = (unsealed.get(8..).ok_or_else(layout)?).split_at_checked(n).ok_or_else(layout)?;
    let rest = header.strip_prefix(OPEN).ok_or_else(layout)?;
    let rest = rest.trim_ascii_end();
    let mut sealed_header = Vec::with_capacity(n + 96);
    sealed_header.extend_from_slice(OPEN);
    sealed_header.extend_from_slice(CHECKSUM_FIELD);
    sealed_header.extend_from_slice(&[b'0'; HEX_DIGITS]);
    sealed_header.extend_from_slice(b"\",");
    sealed_header.extend_from_slice(rest);
    // safetensors pads the header with spaces so that the data stays 8-byte aligned.
    sealed_header.resize(sealed_header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + sealed_header.len() + data.len());
    out.extend_from_slice(&(sealed_header.len() as u64).to_le_bytes());
    out.extend_from_slice(&sealed_header);
    out.extend_from_slice(data);
    if !reseal(&mut out) {
        return Err(layout());
    }
    Ok(out)
}

/// Writes a package to a file atomically (a temporary file renamed into place), so that a
/// failed write never leaves a half-written package behind. Returns the file's size in bytes.
pub fn write_package_file(model: &ModelData, path: &Path) -> Result<usize> {
    let bytes = write_package(model)?;
    let tmp = path.with_extension("bertling.partial");
    std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(bytes.len())
}
