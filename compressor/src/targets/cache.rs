//! The target cache: per training text, the teacher tensors the losses read, stored as f16 in
//! an append-only file that is read through a memory map.
//!
//! Layout under the root the user names: `<root>/<key>/<store>/{meta.json, targets.bin}`, where
//! `key` hashes what makes targets valid (the teacher's tensors, its tokenizer, the corpus, the
//! maximum length) and `store` what is kept (hidden states, attention blocks, logits). A run
//! reads any store of its key that keeps at least what it needs. Each record of `targets.bin`
//! is a 40-byte header — magic `BTR1`, tokens (u32), payload bytes (u64), the first 16 bytes
//! of SHA-256 of the input's token and segment ids, the first 8 bytes of SHA-256 of the
//! payload — then the payload: each hidden state (`tokens × width` f16), each attention block
//! (`heads × tokens × tokens` f16), then the logits (f32), all little-endian.
//!
//! A record cut off by a kill is dropped when the cache is opened (and rebuilt when a run needs
//! it); a record whose checksum fails is recomputed and written again; a `meta.json` that does
//! not match its directory is refused.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bertling_runtime::{Input, ModelData, TargetRequest};
use half::f16;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Record;
use crate::error::{CompressError, Result};

const MAGIC: &[u8; 4] = b"BTR1";
const HEADER: usize = 40;
/// Bumped when the record layout changes: old caches then live under another key.
const FORMAT: u32 = 1;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What makes a teacher's targets valid for a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    /// SHA-256 of the teacher as a package (its tensors, spec and tokenizer).
    pub teacher_sha256: String,
    pub tokenizer_sha256: String,
    /// SHA-256 of the corpus file (or of the task's training file).
    pub corpus_sha256: String,
    /// Tokens per text, special tokens included.
    pub max_len: usize,
    pub format: u32,
}

impl CacheKey {
    /// The key of `teacher`'s targets on `corpus` cut to `max_len` tokens.
    pub fn new(teacher: &ModelData, corpus: &Path, max_len: usize) -> Result<CacheKey> {
        let bytes = bertling_runtime::write_package(teacher)?;
        let corpus_bytes = std::fs::read(corpus).map_err(|source| CompressError::Io {
            what: "cannot read the corpus to key the target cache",
            path: corpus.into(),
            source,
        })?;
        Ok(CacheKey {
            teacher_sha256: hex(&Sha256::digest(&bytes)),
            tokenizer_sha256: hex(&Sha256::digest(teacher.tokenizer_json.as_bytes())),
            corpus_sha256: hex(&Sha256::digest(&corpus_bytes)),
            max_len,
            format: FORMAT,
        })
    }

    fn dir_name(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        hex(&Sha256::digest(json.as_bytes())[..8])
    }
}

/// A store's description (`meta.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Meta {
    key: CacheKey,
    stored: TargetRequest,
    /// Width of each stored hidden state, heads of each stored attention block, labels.
    widths: Vec<usize>,
    heads: Vec<usize>,
    labels: usize,
}

impl Meta {
    fn store_name(&self) -> String {
        let json = serde_json::to_string(&self.stored).unwrap_or_default();
        hex(&Sha256::digest(json.as_bytes())[..8])
    }

    fn payload_len(&self, tokens: usize) -> usize {
        let hidden: usize = self.widths.iter().map(|w| tokens * w * 2).sum();
        let attention: usize = self.heads.iter().map(|h| h * tokens * tokens * 2).sum();
        hidden + attention + if self.stored.logits { self.labels * 4 } else { 0 }
    }
}

use super::request_covers as covers;

/// Counts of a run's lookups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Records whose checksum failed, computed and written again.
    pub rebuilt: u64,
    /// Records in the cache now.
    pub records: u64,
    pub bytes: u64,
}

/// An open target cache (one store of one key).
pub struct TargetCache {
    dir: PathBuf,
    meta: Meta,
    file: File,
    map: Option<memmap2::Mmap>,
    /// Input hash -> (payload offset, tokens).
    index: HashMap<[u8; 16], (u64, usize)>,
    len: u64,
    stats: CacheStats,
    /// What opening found and did (a dropped partial record), for the user.
    pub notes: Vec<String>,
}

fn input_hash(input: &Input) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update((input.ids.len() as u32).to_le_bytes());
    for v in input.ids.iter().chain(&input.type_ids) {
        h.update(v.to_le_bytes());
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

impl TargetCache {
    /// Opens (or creates) under `root` the store of `key` that keeps at least `request`, for a
    /// teacher of the given hidden-state widths (all of them, embedding output first), attention
    /// heads (per attention block) and labels.
    pub fn open(
        root: &Path,
        key: &CacheKey,
        request: &TargetRequest,
        hidden_widths: &[usize],
        attention_heads: &[usize],
        labels: usize,
    ) -> Result<TargetCache> {
        let base = root.join(key.dir_name());
        let err = |dir: &Path, what: String| CompressError::TargetCache { dir: dir.into(), what };
        let io = |dir: &Path, e: std::io::Error| err(dir, e.to_string());
        // A store of this key that keeps what the run needs, if there is one.
        let mut chosen = None;
        if let Ok(entries) = std::fs::read_dir(&base) {
            let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            dirs.sort();
            for dir in dirs {
                let Ok(text) = std::fs::read_to_string(dir.join("meta.json")) else { continue };
                let meta: Meta = serde_json::from_str(&text).map_err(|e| {
                    err(&dir, format!("meta.json is not readable ({e}): delete this directory"))
                })?;
                if meta.key != *key
                    || dir.file_name().map(|n| n.to_string_lossy().into_owned())
                        != Some(meta.store_name())
                {
                    return Err(err(
                        &dir,
                        "meta.json does not describe this directory (a stale or moved cache): \
                         delete it"
                            .into(),
                    ));
                }
                if covers(&meta.stored, request) {
                    chosen = Some((dir, meta));
                    break;
                }
            }
        }
        let mut notes = Vec::new();
        let (dir, meta) = match chosen {
            Some(c) => c,
            None => {
                let meta = Meta {
                    key: key.clone(),
                    stored: request.clone(),
                    widths: request.hidden.iter().map(|&h| hidden_widths[h]).collect(),
                    heads: request.attention.iter().map(|&a| attention_heads[a]).collect(),
                    labels,
                };
                let dir = base.join(meta.store_name());
                std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
                let text = serde_json::to_string_pretty(&meta).unwrap_or_default();
                std::fs::write(dir.join("meta.json"), text).map_err(|e| io(&dir, e))?;
                notes.push(format!("new target cache {}", dir.display()));
                (dir, meta)
            }
        };
        let path = dir.join("targets.bin");
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io(&dir, e))?;
        let file_len = file.metadata().map_err(|e| io(&dir, e))?.len();
        // Scan the headers; anything past the last whole, well-formed record is cut off.
        let mut index = HashMap::new();
        let mut at = 0u64;
        let mut header = [0u8; HEADER];
        let mut bytes = 0;
        while at + HEADER as u64 <= file_len {
            file.read_exact_at(&mut header, at).map_err(|e| io(&dir, e))?;
            let tokens = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default()) as usize;
            let len = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
            let whole = at + HEADER as u64 + len <= file_len;
            if &header[..4] != MAGIC || len != meta.payload_len(tokens) as u64 || !whole {
                break;
            }
            let mut h = [0u8; 16];
            h.copy_from_slice(&header[16..32]);
            index.insert(h, (at + HEADER as u64, tokens));
            at += HEADER as u64 + len;
            bytes += len;
        }
        if at < file_len {
            notes.push(format!(
                "target cache {}: {} bytes after the last whole record dropped (an interrupted \
                 run); those texts are computed again",
                dir.display(),
                file_len - at
            ));
            file.set_len(at).map_err(|e| io(&dir, e))?;
        }
        // SAFETY: the file is only appended to while mapped (by this process; one writer per
        // store), so the mapped prefix never changes.
        let map = if at > 0 {
            Some(unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io(&dir, e))?)
        } else {
            None
        };
        let stats = CacheStats { records: index.len() as u64, bytes, ..CacheStats::default() };
        Ok(TargetCache { dir, meta, file, map, index, len: at, stats, notes })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// What the store keeps for each text.
    pub fn stored(&self) -> &TargetRequest {
        &self.meta.stored
    }

    /// Whether this store keeps everything `request` asks for.
    pub fn covers(&self, request: &TargetRequest) -> bool {
        covers(&self.meta.stored, request)
    }

    /// `input`'s targets restricted to `request`, if the cache has them (a record whose checksum
    /// fails counts as missing and is written again by [`TargetCache::put`]).
    pub(crate) fn get(&mut self, input: &Input, request: &TargetRequest) -> Result<Option<Record>> {
        let key = input_hash(input);
        let Some(&(offset, tokens)) = self.index.get(&key) else {
            self.stats.misses += 1;
            return Ok(None);
        };
        let len = self.meta.payload_len(tokens);
        let mut owned = Vec::new();
        let payload: &[u8] = match &self.map {
            Some(m) if offset as usize + len <= m.len() => {
                &m[offset as usize..offset as usize + len]
            }
            _ => {
                owned.resize(len, 0);
                self.file.read_exact_at(&mut owned, offset).map_err(|e| {
                    CompressError::TargetCache { dir: self.dir.clone(), what: e.to_string() }
                })?;
                &owned
            }
        };
        let mut header = [0u8; HEADER];
        self.file.read_exact_at(&mut header, offset - HEADER as u64).map_err(|e| {
            CompressError::TargetCache { dir: self.dir.clone(), what: e.to_string() }
        })?;
        if header[32..40] != Sha256::digest(payload)[..8] {
            self.index.remove(&key);
            self.stats.rebuilt += 1;
            self.stats.misses += 1;
            return Ok(None);
        }
        let record = self.decode(payload, tokens, request);
        self.stats.hits += 1;
        Ok(Some(record))
    }

    fn decode(&self, payload: &[u8], tokens: usize, request: &TargetRequest) -> Record {
        let halves = |bytes: &[u8]| -> Vec<f32> {
            bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
        };
        let m = &self.meta;
        let mut at = 0;
        let mut hidden = vec![Vec::new(); request.hidden.len()];
        for (&h, w) in m.stored.hidden.iter().zip(&m.widths) {
            let n = tokens * w * 2;
            if let Some(k) = request.hidden.iter().position(|&x| x == h) {
                hidden[k] = halves(&payload[at..at + n]);
            }
            at += n;
        }
        let mut attention = vec![Vec::new(); request.attention.len()];
        for (&a, heads) in m.stored.attention.iter().zip(&m.heads) {
            let n = heads * tokens * tokens * 2;
            if let Some(k) = request.attention.iter().position(|&x| x == a) {
                attention[k] = halves(&payload[at..at + n]);
            }
            at += n;
        }
        let logits = (m.stored.logits && request.logits).then(|| {
            payload[at..at + m.labels * 4]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        });
        Record { hidden, attention, logits }
    }

    /// Adds `input`'s targets (`record`, in the order of [`TargetCache::stored`]) unless the
    /// cache has them.
    pub(crate) fn put(&mut self, input: &Input, record: &Record) -> Result<()> {
        let key = input_hash(input);
        if self.index.contains_key(&key) {
            return Ok(());
        }
        let tokens = input.ids.len();
        let mut payload = Vec::with_capacity(self.meta.payload_len(tokens));
        for v in record.hidden.iter().chain(&record.attention) {
            for x in v {
                payload.extend_from_slice(&f16::from_f32(*x).to_le_bytes());
            }
        }
        if self.meta.stored.logits {
            for x in record.logits.iter().flatten() {
                payload.extend_from_slice(&x.to_le_bytes());
            }
        }
        if payload.len() != self.meta.payload_len(tokens) {
            return Err(CompressError::TargetCache {
                dir: self.dir.clone(),
                what: format!(
                    "a record of {} bytes where the store's layout gives {}: the teacher does not \
                     match the cache's description",
                    payload.len(),
                    self.meta.payload_len(tokens)
                ),
            });
        }
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&(tokens as u32).to_le_bytes());
        header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        header.extend_from_slice(&key);
        header.extend_from_slice(&Sha256::digest(&payload)[..8]);
        header.extend_from_slice(&payload);
        self.file.write_all(&header).map_err(|e| CompressError::TargetCache {
            dir: self.dir.clone(),
            what: format!("writing: {e}"),
        })?;
        self.index.insert(key, (self.len + HEADER as u64, tokens));
        self.len += (HEADER + payload.len()) as u64;
        self.stats.records += 1;
        self.stats.bytes += payload.len() as u64;
        Ok(())
    }
}
