//! A model as data: its description plus named tensors. Both the Hugging Face loader and the
//! package reader produce it; the package writer and the backends consume it.

use std::collections::BTreeMap;

use half::f16;

use crate::error::{Error, Result};
use crate::quant::QuantMatrix;
use crate::spec::{ModelSpec, QuantSpec, TensorRole};

/// One tensor's values.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32 {
        shape: Vec<usize>,
        data: Vec<f32>,
    },
    F16 {
        shape: Vec<usize>,
        data: Vec<f16>,
    },
    /// A quantized matrix `[rows, cols]`, with an optional per-tensor activation step.
    Quant {
        matrix: QuantMatrix,
        act: Option<ActQuant>,
    },
}

/// Activation quantization of a matrix's input:
/// `a_j = clamp(round_half_even((x_j · m_j) · (1 / s)))`, with `m_j = 1` unless the matrix
/// carries smoothing (the compressor moved activation outliers into the weights: the stored
/// weights are `W ⊙ (1/m)` by columns, so `(x ⊙ m) · (W ⊙ (1/m))ᵀ = x · Wᵀ`), and `s` the
/// step ([`ActStep`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ActQuant {
    pub bits: u8,
    pub step: ActStep,
    /// Per-input-channel multipliers `m` (`[cols]`), or none.
    pub smooth: Option<Vec<f32>>,
}

/// Where an activation step comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActStep {
    /// One step for every row, stored in the package (`<name>.act_step`).
    Tensor(f32),
    /// Each row (token) its own step, `max_j |x_j · m_j| / Q_P`, computed as the row arrives
    /// (format version 4): a two-token input is not quantized with a step fitted to sentences.
    Token,
}

impl ActQuant {
    /// Plain per-tensor quantization (no smoothing).
    pub fn new(bits: u8, step: f32) -> ActQuant {
        ActQuant { bits, step: ActStep::Tensor(step), smooth: None }
    }

    /// Per-token quantization (no smoothing).
    pub fn per_token(bits: u8) -> ActQuant {
        ActQuant { bits, step: ActStep::Token, smooth: None }
    }

    /// The per-tensor step, `None` for per-token steps.
    pub fn tensor_step(&self) -> Option<f32> {
        match self.step {
            ActStep::Tensor(s) => Some(s),
            ActStep::Token => None,
        }
    }

    /// The step of one input row: the per-tensor step, or the row's own.
    #[inline]
    pub fn row_step(&self, row: &[f32]) -> f32 {
        match self.step {
            ActStep::Tensor(s) => s,
            ActStep::Token => crate::quant::token_step(row, self.smooth.as_deref(), self.bits),
        }
    }

    /// Quantizes rows of `x` (row length `cols`, the matrix's input width) in place.
    pub fn apply(&self, x: &mut [f32], cols: usize) {
        for row in x.chunks_mut(cols.max(1)) {
            let step = self.row_step(row);
            crate::quant::fake_quantize_row(row, self.smooth.as_deref(), step, self.bits);
        }
    }
}

impl TensorData {
    /// The logical shape.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            TensorData::F32 { shape, .. } | TensorData::F16 { shape, .. } => shape.clone(),
            TensorData::Quant { matrix, .. } => vec![matrix.rows, matrix.cols],
        }
    }

    /// Number of logical elements.
    pub fn numel(&self) -> usize {
        self.shape().iter().product()
    }

    /// Bytes the tensor's data takes in memory (codes + f32 steps for quantized matrices; a
    /// package file stores steps as F16 where that is lossless, so it can be smaller).
    pub fn stored_bytes(&self) -> usize {
        match self {
            TensorData::F32 { data, .. } => data.len() * 4,
            TensorData::F16 { data, .. } => data.len() * 2,
            TensorData::Quant { matrix, act } => {
                matrix.codes.len() * 4
                    + matrix.scales.len() * 4
                    + act.as_ref().map_or(0, |a| 4 * a.tensor_step().is_some() as usize + 4 * a.smooth.as_ref().map_or(0, Vec::len))
            }
        }
    }

    /// Bits per weight as stored (32, 16 or the code width).
    pub fn bits(&self) -> u8 {
        match self {
            TensorData::F32 { .. } => 32,
            TensorData::F16 { .. } => 16,
            TensorData::Quant { matrix, .. } => matrix.bits,
        }
    }

    /// The values as `f32` (dequantized when quantized).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            TensorData::F32 { data, .. } => data.clone(),
            TensorData::F16 { data, .. } => data.iter().map(|v| v.to_f32()).collect(),
            TensorData::Quant { matrix, .. } => matrix.dequantize(),
        }
    }
}

/// A complete model: description plus tensors by name.
#[derive(Clone, Debug)]
pub struct ModelData {
    pub spec: ModelSpec,
    pub tensors: BTreeMap<String, TensorData>,
    /// The tokenizer, as the full `tokenizer.json` text.
    pub tokenizer_json: String,
}

/// What `ModelData::convert` turns the weights into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    F16,
    /// Round-to-nearest quantization of every matrix at `bits`, with `group` columns per step
    /// (`None` = per output channel), and of the embedding tables at `embedding_bits`.
    Quantized {
        bits: u8,
        group: Option<usize>,
        embedding_bits: u8,
    },
}

impl ModelData {
    /// Checks the description and that every required tensor is present with the right shape
    /// and storage, and that nothing else is.
    pub fn validate(&self) -> Result<()> {
        self.spec.validate()?;
        let expected = self.spec.expected_tensors();
        for t in &expected {
            let Some(d) = self.tensors.get(&t.name) else {
                return Err(Error::tensor(&t.name, "is missing from the model"));
            };
            if d.shape() != t.shape {
                return Err(Error::tensor(&t.name, format!("has shape {:?}; the architecture needs {:?}", d.shape(), t.shape)));
            }
            match (d, self.spec.quantized.get(&t.name)) {
                (TensorData::Quant { matrix, act }, Some(q)) => {
                    matrix.validate(&t.name)?;
                    let smoothed = act.as_ref().is_some_and(|a| a.smooth.is_some());
                    if matrix.bits != q.bits
                        || matrix.group != q.group
                        || act.as_ref().map(|a| a.bits) != q.act_bits
                        || smoothed != q.act_smooth
                        || act.as_ref().is_some_and(|a| a.step == ActStep::Token) != q.act_per_token
                    {
                        return Err(Error::tensor(&t.name, "quantization differs from the package description"));
                    }
                    if let Some(a) = act {
                        if let ActStep::Tensor(step) = a.step {
                            if !(step > 0.0 && step.is_finite()) {
                                return Err(Error::tensor(&t.name, format!("activation step {step} must be positive")));
                            }
                        }
                        if let Some(m) = &a.smooth {
                            if m.len() != matrix.cols {
                                return Err(Error::tensor(&t.name, format!("has {} smoothing factors for {} input columns", m.len(), matrix.cols)));
                            }
                            if let Some(bad) = m.iter().find(|v| !(v.is_finite() && **v != 0.0)) {
                                return Err(Error::tensor(&t.name, format!("smoothing factor {bad} must be finite and non-zero")));
                            }
                        }
                    }
                }
                (TensorData::Quant { .. }, None) => return Err(Error::tensor(&t.name, "is quantized but not listed as quantized in the description")),
                (_, Some(_)) => return Err(Error::tensor(&t.name, "is listed as quantized but stored as floats")),
                (TensorData::F32 { data, .. }, None) => {
                    if let Some(bad) = data.iter().find(|v| !v.is_finite()) {
                        return Err(Error::tensor(&t.name, format!("contains the non-finite value {bad}")));
                    }
                }
                (TensorData::F16 { data, .. }, None) => {
                    if let Some(bad) = data.iter().find(|v| !v.is_finite()) {
                        return Err(Error::tensor(&t.name, format!("contains the non-finite value {bad}")));
                    }
                }
            }
        }
        if self.tensors.len() != expected.len() {
            let extra: Vec<&String> = self.tensors.keys().filter(|k| !expected.iter().any(|t| &t.name == *k)).collect();
            return Err(Error::Package(format!("unexpected tensors not used by the architecture: {extra:?}")));
        }
        Ok(())
    }

    /// Parameter count (logical elements of all tensors).
    pub fn parameters(&self) -> usize {
        self.tensors.values().map(TensorData::numel).sum()
    }

    /// Bytes of all tensors' data in memory ([`TensorData::stored_bytes`]).
    pub fn stored_bytes(&self) -> usize {
        self.tensors.values().map(TensorData::stored_bytes).sum()
    }

    /// Quantizes the activations entering every quantized matrix (not the embedding tables) at
    /// `bits` with per-token steps, which need no calibration: how the compressor's W·A8
    /// students run (the integer kernels). For timing and for untrained models.
    pub fn with_token_activations(mut self, bits: u8) -> Result<ModelData> {
        if !matches!(bits, 4 | 8) {
            return Err(Error::InvalidArgument(format!("{bits}-bit activations: use 8 or 4")));
        }
        for t in self.spec.expected_tensors() {
            if t.role != TensorRole::Matrix {
                continue;
            }
            if let (Some(q), Some(TensorData::Quant { act, .. })) = (self.spec.quantized.get_mut(&t.name), self.tensors.get_mut(&t.name)) {
                q.act_bits = Some(bits);
                q.act_per_token = true;
                q.act_smooth = false;
                *act = Some(ActQuant::per_token(bits));
            }
        }
        self.validate()?;
        Ok(self)
    }

    /// Re-encodes every weight at the given precision (from the current values, dequantized if
    /// needed). Biases, norms, convolution taps and head weights stay `f32`.
    pub fn convert(&self, precision: Precision) -> Result<ModelData> {
        let roles: BTreeMap<String, TensorRole> = self.spec.expected_tensors().into_iter().map(|t| (t.name, t.role)).collect();
        let mut spec = self.spec.clone();
        spec.quantized.clear();
        let mut tensors = BTreeMap::new();
        for (name, t) in &self.tensors {
            let role = roles.get(name).copied().unwrap_or(TensorRole::Other);
            let shape = t.shape();
            let values = t.to_f32();
            let new = match (precision, role) {
                (_, TensorRole::Other) | (Precision::F32, _) => TensorData::F32 { shape, data: values },
                (Precision::F16, _) => TensorData::F16 { shape, data: values.iter().map(|&v| f16::from_f32(v)).collect() },
                (Precision::Quantized { bits, group, embedding_bits }, role) => {
                    let bits = if role == TensorRole::Embedding { embedding_bits } else { bits };
                    let matrix = QuantMatrix::quantize_rtn(&values, shape[0], shape[1], bits, group).map_err(|e| Error::tensor(name, e.to_string()))?;
                    spec.quantized.insert(name.clone(), QuantSpec { bits, group, act_bits: None, act_smooth: false, act_per_token: false });
                    TensorData::Quant { matrix, act: None }
                }
            };
            tensors.insert(name.clone(), new);
        }
        let out = ModelData { spec, tensors, tokenizer_json: self.tokenizer_json.clone() };
        out.validate()?;
        Ok(out)
    }
}
