//! The conformance suite against the embedded backend, each check on a fresh store in a
//! temporary folder.

use std::ops::Deref;
use tempfile::TempDir;
use touchstone_store::EmbeddedStore;

/// A store and the folder it lives in, removed when the check ends.
struct Fixture {
    store: EmbeddedStore,
    _dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("creating a temporary folder");
        let store = EmbeddedStore::open(dir.path()).expect("opening the embedded store");
        Fixture { store, _dir: dir }
    }
}

impl Deref for Fixture {
    type Target = EmbeddedStore;

    fn deref(&self) -> &EmbeddedStore {
        &self.store
    }
}

touchstone_store::conformance_suite!(embedded, async { Fixture::new() });

/// Beyond the shared suite: this backend keeps the log as the archive.
#[tokio::test]
async fn commits_keep_the_log_as_the_archive() -> touchstone_store::Result<()> {
    touchstone_store::conformance::commits_keep_the_log_as_the_archive(&*Fixture::new()).await
}
