//! The client and local commands: `import`, `report` and `badges` call a running server's
//! API; `keys` writes the API keys file; `gen` writes example data.

pub mod badges;
pub mod r#gen;
pub mod import;
pub mod keys;
pub mod report;
