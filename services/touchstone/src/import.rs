//! placeholder
use crate::CommandResult;
pub async fn run(_what: crate::ImportCommand) -> CommandResult { Err("not yet".into()) }
