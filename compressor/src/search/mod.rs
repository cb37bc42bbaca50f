//! NAS-BERT architecture search (`../shared/papers/NOTES.md`): the search space scaled to a
//! teacher ([`space`]) and candidates' latency predicted from the table `bertling profile`
//! measured on the target device ([`latency`]); the weight-sharing supernet trained block-wise
//! against the teacher ([`supernet`]), the exact search under budgets ([`select`]) and the
//! family it makes ([`family`]), how well the supernet ranks ([`verify`]); and the genetic layer-mapping search ([`mapping`]).

pub mod family;
mod inherit;
pub mod latency;
pub(crate) mod linalg;
pub mod mapping;
mod plot;
pub mod select;
pub mod space;
pub mod supernet;
pub mod train;
pub mod verify;

pub use family::{search_family, FamilyPlan, FamilyReport};
pub use inherit::inherit;
pub use latency::{LatencyModel, RunSettings};
pub use mapping::{map_search, proxy_score, MapSearchConfig, MapSearchReport};
pub use select::{search, Budget, Costs, Found};
pub use space::{Arch, Op, SearchSpace, Stage};
pub use supernet::Supernet;
pub use train::{train_supernet, HeldOut, SupernetConfig, TrainedSupernet};
pub use verify::{Verification, Verified, Verify};
