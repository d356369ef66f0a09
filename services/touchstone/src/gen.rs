//! placeholder
use std::path::Path;
pub struct GenOptions { pub scale: u32, pub seed: u64 }
pub struct GenSummary { pub tenants: usize, pub messages: usize, pub records: usize }
pub fn generate_to_dir(_options: &GenOptions, _dir: &Path) -> std::io::Result<GenSummary> { Err(std::io::Error::other("not yet")) }
