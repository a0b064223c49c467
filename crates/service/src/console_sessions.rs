//! Operators' console sessions, and the audit log of what they do: signing in with an admin
//! key opens a session (a random 256-bit token; only its SHA-256 is stored, with a CSRF token
//! of the session's own), a token names a live session of an admin key or none, signing out
//! ends it, and each of these, like every console action, is recorded in the audit log. The
//! console's pages and cookies are the HTTP layer's (`orderly_http::console`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use orderly_domain::{PageLimit, Role};
use orderly_storage::{NewAuditEntry, NewSession, StoreError};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use orderly_storage::{AuditEntry, ConsoleSession};

use crate::Services;

/// A session just opened: the token for the browser's cookie (never stored).
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub token: String,
    pub key_id: Uuid,
}

/// Why signing in did not open a session.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("not a live API key")]
    NotLive,
    #[error("key {0} is a storefront key")]
    NotAdmin(Uuid),
    #[error("no random token could be drawn")]
    Random(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An action to record: who (`key_id`, from `address`) did what to what.
#[derive(Debug, Clone, Copy)]
pub struct Audited<'a> {
    pub key_id: Uuid,
    pub address: Option<&'a str>,
    /// `order.cancel`, `job.retry`, `queue.pause`, `session.sign_in`, …
    pub action: &'a str,
    /// `order:<id>`, `queue:<name>`, …
    pub target: &'a str,
    pub detail: Option<&'a str>,
}

/// What is stored of a session token: its SHA-256.
pub fn session_token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 256 random bits, URL-safe base64.
pub fn random_token() -> Result<String, std::io::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl Services {
    /// Signs in with the API key `key`: a session of `ttl` for an admin key, recorded in the
    /// audit log as `session.sign_in` from `address`.
    pub async fn sign_in(
        &self,
        key: &str,
        address: Option<&str>,
        ttl: time::Duration,
    ) -> Result<OpenedSession, SignInError> {
        let caller = match orderly_storage::key_digest(key.trim()) {
            Some(digest) => self.store.authenticate_digest(&digest).await?,
            None => None,
        };
        let caller = caller.ok_or(SignInError::NotLive)?;
        if caller.role != Role::Admin {
            return Err(SignInError::NotAdmin(caller.key_id));
        }
        let token = random_token().map_err(SignInError::Random)?;
        self.store
            .create_console_session(&NewSession {
                token_hash: session_token_hash(&token),
                key_id: caller.key_id,
                csrf_token: random_token().map_err(SignInError::Random)?,
                address: address.map(str::to_owned),
                expires_at: orderly_domain::now() + ttl,
            })
            .await?;
        self.audit(Audited {
            key_id: caller.key_id,
            address,
            action: "session.sign_in",
            target: &format!("key:{}", caller.key_id),
            detail: None,
        })
        .await?;
        Ok(OpenedSession {
            token,
            key_id: caller.key_id,
        })
    }

    /// The live session of an admin key whose token hashes to `token_hash`, if there is one.
    pub async fn console_session(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<ConsoleSession>, StoreError> {
        Ok(self
            .store
            .console_session(token_hash)
            .await?
            .filter(|session| session.role == Role::Admin))
    }

    /// Ends the session whose token hashes to `token_hash`, recorded as `session.sign_out`.
    pub async fn sign_out(
        &self,
        token_hash: &[u8; 32],
        key_id: Uuid,
        address: Option<&str>,
    ) -> Result<(), StoreError> {
        self.store.end_console_session(token_hash).await?;
        self.audit(Audited {
            key_id,
            address,
            action: "session.sign_out",
            target: &format!("key:{key_id}"),
            detail: None,
        })
        .await
    }

    /// Records an operator's action in the audit log.
    pub async fn audit(&self, entry: Audited<'_>) -> Result<(), StoreError> {
        self.store
            .record_audit(&NewAuditEntry {
                key_id: Some(entry.key_id),
                address: entry.address,
                action: entry.action,
                target: entry.target,
                detail: entry.detail,
            })
            .await?;
        tracing::info!(key_id = %entry.key_id, action = entry.action, target = entry.target, "console action");
        Ok(())
    }

    /// A page of the audit log, newest first, before entry `before`.
    pub async fn audit_log(
        &self,
        before: Option<i64>,
        limit: PageLimit,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.store.audit_log(before, limit).await
    }
}
