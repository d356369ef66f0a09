//! A Cassandra 5 for the CQL section when no cluster is given: started by the project's own
//! `deploy/cassandra/start.sh` (jars from Maven Central, Java 17) on ports of its own, and
//! stopped and wiped on drop. Started only for that section, so the JVM does not share the
//! cores with the other measurements.

use crate::BenchResult;
use std::path::{Path, PathBuf};
use std::process::Command;

const PORT: &str = "19142";
const STORAGE_PORT: &str = "17100";

pub struct LocalCassandra {
    state: PathBuf,
    pub nodes: String,
}

impl LocalCassandra {
    pub fn start(work: &Path) -> BenchResult<LocalCassandra> {
        let state = std::path::absolute(work.join("cassandra"))?;
        println!("starting Cassandra 5 on 127.0.0.1:{PORT} (deploy/cassandra/start.sh) ...");
        let status = script("deploy/cassandra/start.sh", &state).status()?;
        if !status.success() {
            return Err("deploy/cassandra/start.sh failed".into());
        }
        Ok(LocalCassandra { state, nodes: format!("127.0.0.1:{PORT}") })
    }
}

impl Drop for LocalCassandra {
    fn drop(&mut self) {
        let _ = script("deploy/cassandra/stop.sh", &self.state).arg("--wipe").status();
    }
}

fn script(path: &str, state: &Path) -> Command {
    let mut command = Command::new(path);
    command
        .env("CASSANDRA_PORT", PORT)
        .env("CASSANDRA_STORAGE_PORT", STORAGE_PORT)
        .env("CASSANDRA_DIR", state)
        .env("CASSANDRA_HEAP", "2g");
    command
}
