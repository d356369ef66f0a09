//! API keys: the keys file and the ring a server checks keys against.
//!
//! A key is `tsk_<id>_<secret>`. The keys file (JSON, written by `touchstone keys`) holds
//! each key's id, tenant (`*`: an operator key, good for every tenant), scopes, name, times
//! and the SHA-256 of its secret, never the secret: the secret is 32 random bytes, so a
//! plain hash is enough to make a stolen file useless. Every process reads the same file
//! (a mounted secret in Kubernetes) and reloads it when it changes, so a revoke reaches a
//! running cluster within seconds. The layer that checks each call is `layers::auth`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tonic::Status;
use touchstone_core::error::{ErrorKind, Reason};
use touchstone_proto::auth::{Principal, Scope};
use touchstone_proto::error::ApiError;

/// The tenant of an operator key.
pub const ALL_TENANTS: &str = "*";
/// How often a server looks whether the keys file changed.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// One key as the file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    pub id: String,
    /// A tenant, or `*` for every tenant.
    pub tenant: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub name: String,
    pub created_at: String,
    #[serde(default)]
    pub revoked_at: Option<String>,
    /// Hex SHA-256 of the secret part.
    pub secret_sha256: String,
}

/// The keys file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysFile {
    pub keys: Vec<StoredKey>,
}

impl KeysFile {
    /// Reads the file; a missing file is an empty one (a first `keys create` makes it).
    pub fn read(path: &Path) -> Result<KeysFile, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let file: KeysFile = serde_json::from_str(&text).map_err(|err| format!("{}: not a keys file: {err}", path.display()))?;
                for key in &file.keys {
                    if let Some(bad) = key.scopes.iter().find(|scope| Scope::parse(scope).is_none()) {
                        return Err(format!("{}: key {} has an unknown scope {bad:?}", path.display(), key.id));
                    }
                }
                Ok(file)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(KeysFile::default()),
            Err(err) => Err(format!("{}: {err}", path.display())),
        }
    }

    /// Writes the file whole (a temporary file renamed over it), readable by its owner only.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|err| err.to_string())? + "\n";
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, text).map_err(|err| format!("{}: {err}", temporary.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600));
        }
        std::fs::rename(&temporary, path).map_err(|err| format!("{}: {err}", path.display()))
    }

    /// A new key for `tenant` with `scopes`: the stored entry and the key text, shown once.
    pub fn create(&mut self, tenant: &str, scopes: &[Scope], name: &str) -> (StoredKey, String) {
        use rand::TryRngCore as _;
        let mut bytes = [0u8; 40];
        rand::rngs::OsRng.try_fill_bytes(&mut bytes).expect("the operating system's random source");
        let id = hex(&bytes[..8]);
        let secret = hex(&bytes[8..]);
        let stored = StoredKey {
            id: id.clone(),
            tenant: tenant.to_owned(),
            scopes: scopes.iter().map(|scope| scope.name().to_owned()).collect(),
            name: name.to_owned(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            revoked_at: None,
            secret_sha256: sha256_hex(&secret),
        };
        self.keys.push(stored.clone());
        (stored, format!("tsk_{id}_{secret}"))
    }

    /// Revokes key `id`; false when there is none.
    pub fn revoke(&mut self, id: &str) -> bool {
        let Some(key) = self.keys.iter_mut().find(|key| key.id == id) else { return false };
        if key.revoked_at.is_none() {
            key.revoked_at = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        true
    }

    /// The principal of `key` (its full text), if it is a live key of this file.
    pub fn check(&self, key: &str) -> Result<Principal, Status> {
        let unknown = || {
            let message = "unknown API key (keys look like tsk_<id>_<secret>; `touchstone keys create` makes one)";
            refused(ErrorKind::Unauthenticated, Reason::new("API_KEY_UNKNOWN"), message)
        };
        let (id, secret) = key.strip_prefix("tsk_").and_then(|rest| rest.split_once('_')).ok_or_else(unknown)?;
        let stored = self.keys.iter().find(|stored| stored.id == id).ok_or_else(unknown)?;
        if stored.secret_sha256 != sha256_hex(secret) {
            return Err(unknown());
        }
        if let Some(at) = &stored.revoked_at {
            let reason = Reason::new("API_KEY_REVOKED").with("key_id", id);
            return Err(refused(ErrorKind::Unauthenticated, reason, format!("API key {id} was revoked at {at}")));
        }
        Ok(Principal {
            key_id: stored.id.clone(),
            tenant: (stored.tenant != ALL_TENANTS).then(|| stored.tenant.clone()),
            scopes: stored.scopes.iter().filter_map(|scope| Scope::parse(scope)).collect(),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// The keys a server checks, reloaded when the file changes.
#[derive(Debug)]
pub struct KeyRing {
    path: PathBuf,
    keys: RwLock<(KeysFile, Option<SystemTime>)>,
}

impl KeyRing {
    /// Loads `path`; an unreadable or invalid file is an error (a server must not start
    /// with keys it cannot check).
    pub fn load(path: &Path) -> Result<Arc<KeyRing>, String> {
        if !path.exists() {
            return Err(format!("{}: no such keys file (`touchstone keys create --keys-file {} ...` makes one)", path.display(), path.display()));
        }
        let file = KeysFile::read(path)?;
        let modified = modified(path);
        Ok(Arc::new(KeyRing { path: path.to_owned(), keys: RwLock::new((file, modified)) }))
    }

    pub fn check(&self, key: &str) -> Result<Principal, Status> {
        match self.keys.read() {
            Ok(keys) => keys.0.check(key),
            Err(poisoned) => poisoned.into_inner().0.check(key),
        }
    }

    /// Reads the file again if it changed; a file that no longer parses keeps the keys
    /// loaded before (and says so in the log).
    pub fn reload_if_changed(&self) {
        let modified = modified(&self.path);
        let known = self.keys.read().map(|keys| keys.1).unwrap_or(None);
        if modified == known {
            return;
        }
        match KeysFile::read(&self.path) {
            Ok(file) => {
                if let Ok(mut keys) = self.keys.write() {
                    tracing::info!(path = %self.path.display(), keys = file.keys.len(), "keys file reloaded");
                    *keys = (file, modified);
                }
            }
            Err(error) => tracing::error!(%error, "keys file not reloaded; the keys loaded before stay in force"),
        }
    }

    /// Reloads every [`RELOAD_EVERY`] until the ring is dropped everywhere else.
    pub fn watch(ring: &Arc<KeyRing>) {
        let weak = Arc::downgrade(ring);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let Some(ring) = weak.upgrade() else { return };
                ring.reload_if_changed();
            }
        });
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|meta| meta.modified()).ok()
}

/// The tower layer checking keys; `None` keys: an open server (every request allowed).
/// A refusal with its stable reason (the error table's ErrorInfo).
pub(crate) fn refused(kind: ErrorKind, reason: Reason, message: impl Into<String>) -> Status {
    ApiError::named(kind, reason, message).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_check_by_hashed_secret_and_revoke() {
        let mut file = KeysFile::default();
        let (stored, key) = file.create("acme", &[Scope::Query], "dashboard");
        assert!(key.starts_with(&format!("tsk_{}_", stored.id)));
        assert!(!serde_json::to_string(&file).unwrap().contains(key.rsplit('_').next().unwrap()), "the secret is not stored");
        let principal = file.check(&key).unwrap();
        assert_eq!(principal, Principal { key_id: stored.id.clone(), tenant: Some("acme".into()), scopes: vec![Scope::Query] });
        let wrong = format!("tsk_{}_{}", stored.id, "0".repeat(64));
        assert_eq!(file.check(&wrong).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(file.check("nonsense").unwrap_err().code(), tonic::Code::Unauthenticated);
        assert!(file.revoke(&stored.id));
        let revoked = file.check(&key).unwrap_err();
        assert!(revoked.message().contains("revoked"), "{revoked:?}");
        assert!(!file.revoke("no-such-id"));
        let (_, operator) = file.create(ALL_TENANTS, &[Scope::Admin], "ops");
        assert_eq!(file.check(&operator).unwrap().tenant, None);
    }

    #[test]
    fn a_ring_reloads_a_changed_file_and_keeps_its_keys_when_the_file_breaks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mut file = KeysFile::default();
        let (_, first) = file.create("a", &[Scope::Ingest], "");
        file.write(&path).unwrap();
        let ring = KeyRing::load(&path).unwrap();
        assert!(ring.check(&first).is_ok());
        let (second_stored, second) = file.create("b", &[Scope::Ingest], "");
        file.revoke(&file.keys[0].id.clone());
        file.write(&path).unwrap();
        // Make the change visible to a coarse mtime clock.
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        ring.reload_if_changed();
        assert!(ring.check(&first).is_err(), "revoked in the file");
        assert_eq!(ring.check(&second).unwrap().key_id, second_stored.id);
        std::fs::write(&path, "{ not json").unwrap();
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later + Duration::from_secs(5)).unwrap();
        ring.reload_if_changed();
        assert!(ring.check(&second).is_ok(), "a broken file keeps the keys loaded before");
        assert!(KeyRing::load(&dir.path().join("missing.json")).is_err());
    }
}
