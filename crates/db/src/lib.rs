//! The database plumbing that the queue and the storage share: [`Db`], the pool to SQLite or
//! PostgreSQL; [`Timestamp`], the one way every time is kept on both backends; and
//! [`WritePool::begin_write`], the one way a write transaction is opened; and
//! [`delete_in_batches`], the one way retention deletes.

mod error;
pub mod migrate;
mod pool;
mod prune;
mod timestamp;
mod transaction;

pub use error::{cause_chain, is_storage_full, is_unavailable};
pub use pool::{BackendKind, ConnectError, Db, DbOptions};
pub use prune::{Deleted, delete_in_batches};
pub use timestamp::Timestamp;
pub use transaction::{WriteConnection, WritePool};
