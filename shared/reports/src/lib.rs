//! Report replies as people and programs read them, shared by the CLI (`touchstone
//! report`) and the console's exports: one reading of the wire types, and one writer per
//! format.
//!
//! - [`rows`]: the replies checked and read into plain rows (exact decimals parsed once,
//!   unset sub-messages read as zeros), shared by the writers.
//! - [`json`], [`export`] (CSV), [`table`]: campaign, message and goal reports, one writer
//!   each; JSON and CSV keep exact minor units and every column, tables fit a terminal.
//! - [`explain`], [`lift`], [`models`]: one conversion's explanation, a campaign's lift,
//!   every attribution model side by side.

pub mod explain;
pub mod export;
pub mod json;
pub mod lift;
pub mod models;
pub mod rows;
pub mod table;
