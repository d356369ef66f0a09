//! `touchstone gen`: the dataset generator lives in its own crate (`touchstone-datagen`) so
//! that tests and benchmarks use it without the binary; this module only re-exports it.
pub use touchstone_datagen::{generate_to_dir, GenOptions};
// Named by no code here (main reads its fields), re-exported so the CLI's gen API is whole.
#[allow(unused_imports)]
pub use touchstone_datagen::GenSummary;
