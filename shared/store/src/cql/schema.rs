//! The CQL schema of `deploy/cql/` as statements ready to run: placeholders filled in,
//! split one statement each. The CQL backend ([`super::CqlStore::migrate`]) applies
//! these in order; keeping the `.cql` files the single source means operators can read and
//! run them by hand too.

/// The migrations, by number, in the order they apply.
pub const MIGRATIONS: &[(u32, &str)] = &[(1, include_str!("../../../../deploy/cql/0001_init.cql"))];

/// Two years, the default retention of time-partitioned tables.
pub const DEFAULT_RETENTION_SECONDS: u64 = 2 * 365 * 24 * 3600;

/// What a deployment chooses when applying the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaParams {
    pub keyspace: String,
    pub replication_factor: u32,
    pub retention_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("keyspace {0:?} must be 1-48 characters of lower-case letters, digits and '_', starting with a letter")]
    BadKeyspace(String),
    #[error("replication factor must be at least 1")]
    BadReplication,
    #[error("retention must be between 1 second and 20 years (the TTL limit of both engines), not {0} s")]
    BadRetention(u64),
}

impl SchemaParams {
    fn check(&self) -> Result<(), SchemaError> {
        let k = self.keyspace.as_bytes();
        let keyspace_ok = !k.is_empty()
            && k.len() <= 48
            && k[0].is_ascii_lowercase()
            && k.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        if !keyspace_ok {
            return Err(SchemaError::BadKeyspace(self.keyspace.clone()));
        }
        if self.replication_factor == 0 {
            return Err(SchemaError::BadReplication);
        }
        if !(1..=20 * 365 * 24 * 3600).contains(&self.retention_seconds) {
            return Err(SchemaError::BadRetention(self.retention_seconds));
        }
        Ok(())
    }
}

/// The statements of one migration file with `params` filled in, comments dropped.
pub fn render(cql: &str, params: &SchemaParams) -> Result<Vec<String>, SchemaError> {
    params.check()?;
    let replication =
        format!("{{'class': 'NetworkTopologyStrategy', 'replication_factor': {}}}", params.replication_factor);
    let text: String = cql
        .lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("{keyspace}", &params.keyspace)
        .replace("{replication}", &replication)
        .replace("{retention_seconds}", &params.retention_seconds.to_string());
    Ok(text
        .split(';')
        .map(|statement| statement.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|statement| !statement.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SchemaParams {
        SchemaParams { keyspace: "touchstone".into(), replication_factor: 3, retention_seconds: DEFAULT_RETENTION_SECONDS }
    }

    #[test]
    fn every_placeholder_is_filled_and_each_statement_stands_alone() {
        for (_, cql) in MIGRATIONS {
            let statements = render(cql, &params()).unwrap();
            assert!(statements[0].starts_with("CREATE KEYSPACE IF NOT EXISTS touchstone WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 3}"));
            for statement in &statements {
                assert!(statement.starts_with("CREATE "), "{statement}");
                assert!(!statement.contains("{keyspace}") && !statement.contains("{retention_seconds}"), "{statement}");
                assert!(!statement.contains("--"), "comment left in {statement}");
            }
            let tables = statements.iter().filter(|s| s.starts_with("CREATE TABLE IF NOT EXISTS touchstone.")).count();
            assert_eq!(tables, statements.len() - 1);
        }
    }

    #[test]
    fn time_partitioned_tables_expire_after_the_retention() {
        let statements = render(MIGRATIONS[0].1, &SchemaParams { retention_seconds: 86_400, ..params() }).unwrap();
        let touches = statements.iter().find(|s| s.contains("touchstone.records_by_day ")).unwrap();
        assert!(touches.ends_with("WITH default_time_to_live = 86400"), "{touches}");
        // Neither the config of a tenant nor what attribution set aside ever expires.
        for table in ["configs", "set_aside", "badge_books"] {
            let statement = statements.iter().find(|s| s.contains(&format!("touchstone.{table} "))).unwrap();
            assert!(!statement.contains("default_time_to_live"), "{statement}");
        }
    }

    #[test]
    fn bad_parameters_are_refused() {
        let bad = |p: SchemaParams| render(MIGRATIONS[0].1, &p).unwrap_err();
        assert_eq!(bad(SchemaParams { keyspace: "Touch-Stone".into(), ..params() }), SchemaError::BadKeyspace("Touch-Stone".into()));
        assert_eq!(bad(SchemaParams { keyspace: "ks; DROP".into(), ..params() }), SchemaError::BadKeyspace("ks; DROP".into()));
        assert_eq!(bad(SchemaParams { replication_factor: 0, ..params() }), SchemaError::BadReplication);
        assert_eq!(bad(SchemaParams { retention_seconds: 0, ..params() }), SchemaError::BadRetention(0));
    }
}
