//! The engine contract: what a secrets engine or auth method sees of a request, what it returns,
//! and the storage it may use. Engines import this module and nothing else of the vault: no
//! barrier, no raft, no core.

pub mod duration;
mod error;
pub mod time;

mod request;
mod response;
mod storage;
#[cfg(test)]
pub mod testing;

pub use error::LogicalError;
pub use request::ListFilter;
pub use request::Operation;
pub use request::Request;
pub use response::Auth;
pub use response::Response;
pub use storage::Storage;
pub use storage::StorageError;
pub use storage::list_children;
pub use storage::list_descendants;

/// A secrets engine: handles requests for paths under its mount, reading and staging writes
/// through the storage view it is given. Writes reach disk only if the whole request commits.
pub trait Backend: Send + Sync {
    /// Handles one request. `request.path` is relative to the mount (no leading slash).
    fn handle(
        &self,
        request: &Request,
        storage: &mut dyn Storage,
    ) -> Result<Response, LogicalError>;

    /// Background maintenance (key auto-rotation, expiry cleanup), run by the core on the
    /// leader of an unsealed cluster every few seconds, once per mount, in its own guarded
    /// transaction: what it stages commits atomically, or not at all if anything it read changed
    /// meanwhile (it then runs again next time). It must be idempotent and bounded (do a batch of
    /// work, leave the rest for the next run). `now_secs` is the time it runs at. The default does
    /// nothing.
    fn periodic(&self, storage: &mut dyn Storage, now_secs: u64) -> Result<(), LogicalError> {
        let _ = (storage, now_secs);
        Ok(())
    }

    /// Vault's existence check: whether the object a write to `request.path` addresses exists
    /// already. `Some(false)` makes the core authorize (and run) the write as `create` instead
    /// of `update`; `None` (the default) means the path has no such check and writes are
    /// `update`s.
    fn exists(
        &self,
        request: &Request,
        storage: &mut dyn Storage,
    ) -> Result<Option<bool>, LogicalError> {
        let _ = (request, storage);
        Ok(None)
    }

    /// Paths (relative to the mount) served without a client token, such as an auth method's
    /// `login`. A pattern ending in `*` matches every path with that prefix. Default: none.
    fn unauthenticated_paths(&self) -> &'static [&'static str] {
        &[]
    }
}
