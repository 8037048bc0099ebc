//! Desired + observed → `Plan` (pure), and the plan's renderings.
//!
//! Owns: deciding what to do. Must not: perform I/O; `observe` reads the world and `apply`
//! changes it.

pub mod comment;
#[cfg(test)]
mod coverage;
pub mod describe;
pub mod diff;
pub mod group;
mod keys;
pub mod model;
pub mod ownership;
pub mod render;

pub use describe::{Description, describe};
pub use diff::{Desired, FrontendDesired, PlanOptions, plan, plan_client};
pub use model::*;
