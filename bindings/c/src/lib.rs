//! The C ABI of the bertling runtime (`bertling.h`, generated from this file by cbindgen).
//!
//! Conventions, as rustls-ffi has them: opaque handles, a status code from every call that can
//! fail, results through out-parameters and caller buffers with their lengths, NULL checked
//! everywhere, a per-thread last error message, and no panic ever unwinding into C. A failing
//! call writes nothing to its outputs.

mod status;

use std::ffi::{c_char, CStr};
use std::path::Path;

use bertling_runtime::{Backend, HeadKind, LoadOptions, Model};

pub use status::bertling_status;
use status::bertling_status::*;
use status::{guard, guard_value, last_error, Failure};

/// The version of this ABI. Programs compare `bertling_abi_version()` with the value they were
/// compiled against; a library with another value is not compatible.
pub const BERTLING_ABI_VERSION: u32 = 1;

/// `bertling_load_options.backend`: the native CPU backend.
pub const BERTLING_BACKEND_CPU: u32 = 0;
/// `bertling_load_options.backend`: a GPU through wgpu (any adapter, software ones included).
pub const BERTLING_BACKEND_WGPU: u32 = 1;
/// `bertling_load_options.backend`: a hardware GPU when there is one, else the CPU.
pub const BERTLING_BACKEND_AUTO: u32 = 2;

/// A loaded model. Opaque; every call on it is thread-safe.
#[allow(non_camel_case_types)]
pub struct bertling_model {
    model: Model,
}

/// How to load a model. Initialise it with `bertling_load_options_init`, then set fields.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug)]
pub struct bertling_load_options {
    /// `sizeof(bertling_load_options)` as the caller knows it (set by the init function); lets
    /// later versions add fields without breaking programs built against this one.
    pub struct_size: u32,
    /// `BERTLING_BACKEND_CPU`, `_WGPU` or `_AUTO`.
    pub backend: u32,
    /// Worker threads of the CPU backend; 0 = the machine's available parallelism.
    pub threads: u32,
}

const OPTIONS_V1_SIZE: usize = 12;

/// This library's ABI version (`BERTLING_ABI_VERSION` of the header it was built with).
#[no_mangle]
pub extern "C" fn bertling_abi_version() -> u32 {
    BERTLING_ABI_VERSION
}

/// The library's version, e.g. "0.1.0": a static NUL-terminated string (never freed).
#[no_mangle]
pub extern "C" fn bertling_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Fills `options` with the defaults: CPU backend, default threads. NULL is a no-op.
///
/// # Safety
/// `options` is NULL or points to a writable `bertling_load_options`.
#[no_mangle]
pub unsafe extern "C" fn bertling_load_options_init(options: *mut bertling_load_options) {
    if let Some(o) = options.as_mut() {
        *o = bertling_load_options {
            struct_size: std::mem::size_of::<bertling_load_options>() as u32,
            backend: BERTLING_BACKEND_CPU,
            threads: 0,
        };
    }
}

unsafe fn load_options(options: *const bertling_load_options) -> Result<LoadOptions, Failure> {
    let Some(o) = options.as_ref() else { return Ok(LoadOptions::default()) };
    if (o.struct_size as usize) < OPTIONS_V1_SIZE {
        return Err(Failure::new(
            BERTLING_ERR_INVALID_ARGUMENT,
            format!(
                "options.struct_size is {}; initialise the options with bertling_load_options_init",
                o.struct_size
            ),
        ));
    }
    let backend = match o.backend {
        BERTLING_BACKEND_CPU => Backend::Cpu,
        BERTLING_BACKEND_WGPU => Backend::Wgpu,
        BERTLING_BACKEND_AUTO => Backend::Auto,
        other => return Err(Failure::new(
            BERTLING_ERR_INVALID_ARGUMENT,
            format!(
                "options.backend is {other}; use BERTLING_BACKEND_CPU (0), _WGPU (1) or _AUTO (2)"
            ),
        )),
    };
    Ok(LoadOptions::new(backend, o.threads as usize))
}

unsafe fn store_model(model: Model, out: *mut *mut bertling_model) {
    *out = Box::into_raw(Box::new(bertling_model { model }));
}

/// Loads a bertling package file. On success `*out` holds the model (free it with
/// `bertling_model_free`); on failure `*out` is left as it was.
///
/// # Safety
/// `path` is a NUL-terminated string; `options` is NULL (defaults) or points to initialised
/// options; `out` points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn bertling_model_load_file(
    path: *const c_char,
    options: *const bertling_load_options,
    out: *mut *mut bertling_model,
) -> bertling_status {
    guard(|| {
        if path.is_null() {
            return Err(Failure::null("path"));
        }
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let path = CStr::from_ptr(path).to_str().map_err(|e| {
            Failure::new(BERTLING_ERR_INVALID_ARGUMENT, format!("path is not valid UTF-8: {e}"))
        })?;
        let options = load_options(options)?;
        let model = Model::load(Path::new(path), &options)?;
        store_model(model, out);
        Ok(())
    })
}

/// Loads a bertling package from memory (an app's asset). The bytes are read during the call
/// only: the caller may free them as soon as it returns.
///
/// # Safety
/// `data` points to `len` readable bytes (or is NULL with `len` 0, which fails as an invalid
/// model); `options` and `out` as for `bertling_model_load_file`.
#[no_mangle]
pub unsafe extern "C" fn bertling_model_load_bytes(
    data: *const u8,
    len: usize,
    options: *const bertling_load_options,
    out: *mut *mut bertling_model,
) -> bertling_status {
    guard(|| {
        if data.is_null() && len > 0 {
            return Err(Failure::null("data"));
        }
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let bytes = if len == 0 { &[][..] } else { std::slice::from_raw_parts(data, len) };
        let options = load_options(options)?;
        let model = Model::from_package_bytes(bytes, &options)?;
        store_model(model, out);
        Ok(())
    })
}

/// Frees a model. NULL is a no-op. No call on the model may be running or start afterwards.
///
/// # Safety
/// `model` is NULL or a pointer returned by a load function and not freed yet.
#[no_mangle]
pub unsafe extern "C" fn bertling_model_free(model: *mut bertling_model) {
    if !model.is_null() {
        guard_value((), || drop(Box::from_raw(model)));
    }
}

/// The length of one embedding (floats per text). 0 for NULL.
///
/// # Safety
/// `model` is NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn bertling_model_dim(model: *const bertling_model) -> usize {
    model.as_ref().map_or(0, |m| m.model.info().output_width)
}

/// What a model's head classifies (`bertling_model_head`).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum bertling_head {
    /// No head: embeddings only.
    BERTLING_HEAD_NONE = 0,
    /// A sequence-classification head: `bertling_classify`.
    BERTLING_HEAD_SEQUENCE = 1,
    /// A token-classification head: `bertling_tag`.
    BERTLING_HEAD_TOKEN = 2,
}

/// The model's head, a `bertling_head` value; `BERTLING_HEAD_NONE` for NULL.
///
/// # Safety
/// `model` is NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn bertling_model_head(model: *const bertling_model) -> u32 {
    let head = model.as_ref().and_then(|m| m.model.info().head);
    (match head {
        None => bertling_head::BERTLING_HEAD_NONE,
        Some(HeadKind::Sequence) => bertling_head::BERTLING_HEAD_SEQUENCE,
        Some(HeadKind::Token) => bertling_head::BERTLING_HEAD_TOKEN,
    }) as u32
}

/// The number of labels of the model's head (sequence or token); 0 when it has none (or for
/// NULL).
///
/// # Safety
/// `model` is NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn bertling_model_num_labels(model: *const bertling_model) -> usize {
    model.as_ref().map_or(0, |m| m.model.info().labels.as_ref().map_or(0, Vec::len))
}

/// Cancels every `bertling_embed` / `bertling_classify` / `bertling_tag` running on `model` at this moment, from
/// any thread: each returns `BERTLING_ERR_CANCELLED` at its next check (between blocks and
/// between batches). Calls started afterwards run normally. NULL is a no-op.
///
/// # Safety
/// `model` is NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn bertling_model_cancel(model: *const bertling_model) {
    if let Some(m) = model.as_ref() {
        guard_value((), || m.model.cancel());
    }
}

/// Borrows `n` NUL-terminated UTF-8 texts, checking each pointer and its encoding.
unsafe fn read_texts<'a>(texts: *const *const c_char, n: usize) -> Result<Vec<&'a str>, Failure> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if texts.is_null() {
        return Err(Failure::null("texts"));
    }
    let ptrs = std::slice::from_raw_parts(texts, n);
    ptrs.iter()
        .enumerate()
        .map(|(i, &p)| {
            if p.is_null() {
                return Err(Failure::null(&format!("texts[{i}]")));
            }
            CStr::from_ptr(p).to_str().map_err(|e| {
                Failure::new(
                    BERTLING_ERR_INVALID_ARGUMENT,
                    format!("texts[{i}] is not valid UTF-8 ({e}); pass UTF-8 text"),
                )
            })
        })
        .collect()
}

fn needed(n: usize, per: usize, what: &str) -> Result<usize, Failure> {
    n.checked_mul(per).ok_or_else(|| {
        Failure::new(BERTLING_ERR_INVALID_ARGUMENT, format!("{n} texts × {per} {what} overflows"))
    })
}

fn too_small(buffer: &str, len: usize, need: usize, n: usize, unit: &str) -> Failure {
    Failure::new(
        BERTLING_ERR_BUFFER_TOO_SMALL,
        format!("`{buffer}` holds {len} floats; {n} texts need {need} ({unit})"),
    )
}

/// Sentence embeddings of `n` texts: text `i`'s vector goes to
/// `out[i * dim .. (i + 1) * dim]` (`dim` = `bertling_model_dim`).
///
/// # Safety
/// `model` is a live model; `texts` points to `n` NUL-terminated strings (may be NULL when `n`
/// is 0); `out` points to `out_len` writable floats.
#[no_mangle]
pub unsafe extern "C" fn bertling_embed(
    model: *const bertling_model,
    texts: *const *const c_char,
    n: usize,
    out: *mut f32,
    out_len: usize,
) -> bertling_status {
    guard(|| {
        let m = model.as_ref().ok_or_else(|| Failure::null("model"))?;
        let texts = read_texts(texts, n)?;
        let dim = m.model.info().output_width;
        let need = needed(n, dim, "floats")?;
        if out.is_null() && need > 0 {
            return Err(Failure::null("out"));
        }
        if out_len < need {
            return Err(too_small("out", out_len, need, n, "n × bertling_model_dim"));
        }
        let vectors = m.model.embed(&texts)?;
        let dst = if need == 0 { &mut [][..] } else { std::slice::from_raw_parts_mut(out, need) };
        for (row, v) in dst.chunks_exact_mut(dim.max(1)).zip(&vectors) {
            row.copy_from_slice(v);
        }
        Ok(())
    })
}

/// Classifies `n` texts with the model's head: text `i`'s label probabilities go to
/// `probs[i * labels .. (i + 1) * labels]` (`labels` = `bertling_model_num_labels`; for a
/// regression head, its one score) and its most probable label to `label_ids[i]`.
///
/// # Safety
/// As `bertling_embed`; `probs` points to `probs_len` writable floats and `label_ids` to `n`
/// writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn bertling_classify(
    model: *const bertling_model,
    texts: *const *const c_char,
    n: usize,
    probs: *mut f32,
    probs_len: usize,
    label_ids: *mut u32,
) -> bertling_status {
    guard(|| {
        let m = model.as_ref().ok_or_else(|| Failure::null("model"))?;
        let texts = read_texts(texts, n)?;
        if m.model.info().head != Some(HeadKind::Sequence) {
            return Err(Failure::from(bertling_runtime::Error::NoClassificationHead));
        }
        let labels = m.model.info().labels.as_ref().map_or(0, Vec::len);
        let need = needed(n, labels, "labels")?;
        if labels > 0 && n > 0 {
            if probs.is_null() {
                return Err(Failure::null("probs"));
            }
            if label_ids.is_null() {
                return Err(Failure::null("label_ids"));
            }
            if probs_len < need {
                return Err(too_small(
                    "probs",
                    probs_len,
                    need,
                    n,
                    "n × bertling_model_num_labels",
                ));
            }
        }
        let results = m.model.classify(&texts)?;
        if n == 0 {
            return Ok(());
        }
        let dst = std::slice::from_raw_parts_mut(probs, need);
        let ids = std::slice::from_raw_parts_mut(label_ids, n);
        for ((row, id), c) in dst.chunks_exact_mut(labels).zip(ids.iter_mut()).zip(&results) {
            row.copy_from_slice(&c.probs);
            *id = c.label_id as u32;
        }
        Ok(())
    })
}

/// One word's tag from `bertling_tag`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug)]
pub struct bertling_word_tag {
    /// `[start, end)`: the word's bytes in the text.
    pub start: usize,
    pub end: usize,
    /// The label (`bertling_label_name`).
    pub label_id: u32,
    /// The label's probability.
    pub prob: f32,
}

/// Tags the words of `text` (split as the model's tokenizer pre-tokenizes) with the model's
/// token head: word `i`'s byte range, label and probability go to `tags[i]`. `*n_words` is
/// always set: the number of words on success and on `BERTLING_ERR_BUFFER_TOO_SMALL` (then
/// nothing is written to `tags`), 0 on any other failure. A text has at most `strlen(text)`
/// words, so a buffer of that many entries always suffices. A model whose head is not
/// `BERTLING_HEAD_TOKEN` gives `BERTLING_ERR_NO_CLASSIFICATION_HEAD`; a text longer than the
/// model's maximum length `BERTLING_ERR_INVALID_ARGUMENT` (split it into sentences).
///
/// # Safety
/// `model` is a live model; `text` a NUL-terminated string; `tags` points to `tags_len`
/// writable entries (or is NULL with `tags_len` 0); `n_words` points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn bertling_tag(
    model: *const bertling_model,
    text: *const c_char,
    tags: *mut bertling_word_tag,
    tags_len: usize,
    n_words: *mut usize,
) -> bertling_status {
    if let Some(n) = n_words.as_mut() {
        *n = 0;
    }
    guard(|| {
        let m = model.as_ref().ok_or_else(|| Failure::null("model"))?;
        let n_words = n_words.as_mut().ok_or_else(|| Failure::null("n_words"))?;
        let texts = read_texts(&text, 1).map_err(|f| match f.status {
            BERTLING_ERR_NULL_ARGUMENT => Failure::null("text"),
            _ => Failure::new(f.status, f.message.replace("texts[0]", "text")),
        })?;
        if tags.is_null() && tags_len > 0 {
            return Err(Failure::null("tags"));
        }
        let words = m.model.tag(texts[0])?;
        *n_words = words.len();
        if tags_len < words.len() {
            return Err(Failure::new(
                BERTLING_ERR_BUFFER_TOO_SMALL,
                format!("`tags` holds {tags_len} entries; the text has {} words", words.len()),
            ));
        }
        if !words.is_empty() {
            let dst = std::slice::from_raw_parts_mut(tags, words.len());
            for (d, w) in dst.iter_mut().zip(&words) {
                *d = bertling_word_tag {
                    start: w.start,
                    end: w.end,
                    label_id: w.label_id as u32,
                    prob: w.prob,
                };
            }
        }
        Ok(())
    })
}

/// Copies `src` and a NUL into `buf` when it fits in `buf_len` bytes; returns the bytes needed.
unsafe fn copy_c_string(src: &str, buf: *mut c_char, buf_len: usize) -> (usize, bool) {
    let need = src.len() + 1;
    if buf.is_null() || buf_len < need {
        return (need, false);
    }
    std::ptr::copy_nonoverlapping(src.as_ptr(), buf.cast::<u8>(), src.len());
    *buf.add(src.len()) = 0;
    (need, true)
}

/// The name of label `label_id`, NUL-terminated, into `buf`. `*needed` (when not NULL) gets
/// the bytes the name needs, NUL included, on success and on `BERTLING_ERR_BUFFER_TOO_SMALL`,
/// so a caller can ask with `buf_len` 0 first.
///
/// # Safety
/// `model` is a live model; `buf` points to `buf_len` writable bytes (or is NULL with
/// `buf_len` 0); `needed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bertling_label_name(
    model: *const bertling_model,
    label_id: usize,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> bertling_status {
    guard(|| {
        let m = model.as_ref().ok_or_else(|| Failure::null("model"))?;
        let labels = m
            .model
            .info()
            .labels
            .as_ref()
            .ok_or_else(|| Failure::from(bertling_runtime::Error::NoClassificationHead))?;
        let name = labels.get(label_id).ok_or_else(|| {
            Failure::new(
                BERTLING_ERR_INVALID_ARGUMENT,
                format!(
                    "label_id {label_id} is out of range: the model has {} labels",
                    labels.len()
                ),
            )
        })?;
        if buf.is_null() && buf_len > 0 {
            return Err(Failure::null("buf"));
        }
        let (need, copied) = copy_c_string(name, buf, buf_len);
        if let Some(n) = needed.as_mut() {
            *n = need;
        }
        if !copied {
            return Err(Failure::new(
                BERTLING_ERR_BUFFER_TOO_SMALL,
                format!("`buf` holds {buf_len} bytes; label {label_id}'s name needs {need}"),
            ));
        }
        Ok(())
    })
}

/// This thread's last error message (set by the last call that returned a status other than
/// `BERTLING_OK`; every call that returns a status resets it), NUL-terminated and cut to
/// `buf_len` bytes at a character boundary. Returns the bytes the whole message needs, NUL
/// included, or 0 when there is none. `buf` may be NULL with `buf_len` 0 to ask for the size.
///
/// # Safety
/// `buf` points to `buf_len` writable bytes, or is NULL.
#[no_mangle]
pub unsafe extern "C" fn bertling_last_error_message(buf: *mut c_char, buf_len: usize) -> usize {
    guard_value(0, || {
        let Some(msg) = last_error() else { return 0 };
        if !buf.is_null() && buf_len > 0 {
            let mut cut = msg.len().min(buf_len - 1);
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), cut);
            *buf.add(cut) = 0;
        }
        msg.len() + 1
    })
}
