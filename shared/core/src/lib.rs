//! The domain core of Touchstone: plain Rust, no I/O, used by every service.
//!
//! - [`model`]: the records (messages, touches, app events, order status records, badge
//!   events) and exact decimal values.
//! - [`validate`]: what a record (and every other request field) must hold to be accepted:
//!   the limits the API edge applies.
//! - [`error`]: the kinds of failure ([`error::ErrorKind`]) that every crate's errors map to.
//! - [`badge_stats`]: per-badge analytics (earned per day, holders at any moment) from counters.
//! - [`badges`]: badge definitions, rule earns, expiries, the timeline, holding and the trophy case.
//! - [`currency`]: ISO 4217 codes and their minor units.
//! - [`config`]: tenant configuration and the rules for changing it (goal limits, immutable goals).
//! - [`goals`]: which records convert for which goal.
//! - [`attribution`]: the crediting rules (explicit, last touch, unattributed) and their explanation.
//! - [`lift`]: holdout assignment (SHA-256 of the ids) and the lift of a campaign over its
//!   control group.
//! - [`models`]: every attribution model (last and first touch, linear, position-based, time
//!   decay) as exact ppm shares and credited values.
//! - [`fold`]: attribution as a pure fold per commit window over order and customer state (by month).
//! - [`rollup`]: report counters ("cells") and how a range splits into buckets and raw edges.
//! - [`report`]: turning summed cells into campaign, message and goal rows.
//! - [`files`]: the bulk file formats of SPEC section 7.
//! - `reference` (feature `testsuite`): a brute-force evaluation of SPEC sections 4 and 5, written apart from
//!   the engine, that tests compare the engine against.
//! - `reference_badges` (feature `testsuite`): the same for SPEC section 6 (badges), written apart from [`badges`].

pub mod attribution;
pub mod badge_stats;
pub mod badges;
pub mod config;
pub mod currency;
pub mod error;
pub mod files;
pub mod fold;
pub mod goals;
pub mod lift;
pub mod model;
pub mod models;
#[cfg(feature = "testsuite")]
pub mod reference;
#[cfg(feature = "testsuite")]
pub mod reference_badges;
pub mod report;
pub mod rollup;
pub mod validate;
