//! The query parameters of the console's pages, one struct for all: each page reads its own.

use serde::Deserialize;

/// Every page's query parameters (each page reads its own).
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    pub from: Option<String>,
    pub to: Option<String>,
    pub sort: Option<String>,
    pub dir: Option<String>,
    pub tz: Option<String>,
    pub goal: Option<String>,
    pub key: Option<String>,
    pub customer: Option<String>,
    pub page: Option<String>,
}
