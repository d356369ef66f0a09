//! placeholder
use crate::CommandResult;
pub async fn run(_what: crate::ReportCommand) -> CommandResult { Err("not yet".into()) }
