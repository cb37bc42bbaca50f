//! A small deterministic random number generator (xorshift64) for synthetic inputs, random
//! weights of profiling models and students, and sampling: the same seed gives the same
//! numbers on every platform.

/// xorshift64 (Marsaglia 2003).
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from any seed (mixed so that nearby seeds give unrelated streams).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [-scale, scale).
    pub fn symmetric(&mut self, scale: f32) -> f32 {
        (self.unit() * 2.0 - 1.0) * scale
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let (mut a, mut b) = (XorShift::new(7), XorShift::new(7));
        let xs: Vec<f32> = (0..1000).map(|_| a.symmetric(2.0)).collect();
        assert_eq!(xs, (0..1000).map(|_| b.symmetric(2.0)).collect::<Vec<_>>());
        assert!(xs.iter().all(|v| (-2.0..2.0).contains(v)));
        let mean = xs.iter().sum::<f32>() / 1000.0;
        assert!(mean.abs() < 0.15, "mean {mean}");
        assert_ne!(XorShift::new(8).next_u64(), XorShift::new(7).next_u64());
        assert!((0..100).all(|_| a.below(5) < 5));
    }
}
