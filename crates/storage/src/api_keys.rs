//! API keys: minted here, stored only as a SHA-256 hash, and looked up by that hash.
//!
//! Keys carry 256 random bits, so a fast unsalted hash is enough: there is no dictionary to
//! attack, and a lookup costs one hash and one indexed read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use orderly_domain::Role;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreError, with_pool};

/// Every key starts with this, so leaked keys are easy to recognise and to scan for.
const KEY_PREFIX: &str = "oly_";
/// How many leading characters of a key are kept in clear to tell keys apart.
const SHOWN_PREFIX_LEN: usize = 12;
/// Longer presented tokens are refused without hashing.
const MAX_KEY_LEN: usize = 128;

/// What to call a new key and what it may do.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
}

/// A key as listed to operators: everything but the secret.
#[derive(Debug, Clone)]
pub struct ApiKeyInfo {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    /// The key's first characters, e.g. `oly_3fK9x2Qa`.
    pub prefix: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: Uuid,
    pub role: Role,
    /// The key's name, as its holder's changes are recorded (shared: a caller is copied
    /// into each request that presents the key).
    pub name: std::sync::Arc<str>,
}

impl Caller {
    /// The caller as the actor of what it changes.
    pub fn actor(&self) -> orderly_domain::Actor {
        orderly_domain::Actor::new(
            orderly_domain::ActorKind::ApiKey,
            self.key_id.to_string(),
            self.name.as_ref(),
        )
    }
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The digest a presented key is looked up by, or `None` when it cannot be a key of ours.
pub fn key_digest(presented: &str) -> Option<[u8; 32]> {
    (presented.starts_with(KEY_PREFIX) && presented.len() <= MAX_KEY_LEN)
        .then(|| Sha256::digest(presented.as_bytes()).into())
}

fn mint_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(StoreError::NoRandomness)?;
    Ok(format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

pub(crate) fn parse_role(role: &str) -> Result<Role, StoreError> {
    role.parse().map_err(StoreError::UnknownRole)
}

impl Store {
    /// Creates a key and returns it with its secret, which exists nowhere else afterwards.
    pub async fn create_api_key(
        &self,
        new: &NewApiKey,
    ) -> Result<(ApiKeyInfo, String), StoreError> {
        let secret = mint_secret()?;
        let info = ApiKeyInfo {
            id: Uuid::now_v7(),
            name: new.name.clone(),
            role: new.role,
            prefix: secret[..SHOWN_PREFIX_LEN].to_owned(),
            created_at: orderly_domain::now(),
            revoked_at: None,
        };
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO api_keys (id, name, role, prefix, secret_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(info.id)
            .bind(&info.name)
            .bind(info.role.as_str())
            .bind(&info.prefix)
            .bind(hash(&secret))
            .bind(orderly_db::Timestamp::new(info.created_at))
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok((info, secret))
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let rows: Vec<(
            Uuid,
            String,
            String,
            String,
            OffsetDateTime,
            Option<OffsetDateTime>,
        )> = with_pool!(self, pool => sqlx::query_as(
                "SELECT id, name, role, prefix, created_at, revoked_at FROM api_keys ORDER BY id")
                .fetch_all(pool)
                .await)?;
        rows.into_iter()
            .map(|(id, name, role, prefix, created_at, revoked_at)| {
                Ok(ApiKeyInfo {
                    id,
                    name,
                    role: parse_role(&role)?,
                    prefix,
                    created_at,
                    revoked_at,
                })
            })
            .collect()
    }

    /// Revokes a key at once. `false` when no unrevoked key has that id.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = with_pool!(self, pool => sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(orderly_db::Timestamp::new(orderly_domain::now()))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// How many keys exist, revoked ones included.
    pub async fn count_api_keys(&self) -> Result<i64, StoreError> {
        let count = with_pool!(self, pool => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM api_keys")
            .fetch_one(pool)
            .await)?;
        Ok(count)
    }

    /// The caller whose key has this [`key_digest`], if it is a live key.
    #[tracing::instrument(name = "db", skip_all, fields(op = "authenticate_digest"))]
    pub async fn authenticate_digest(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<Caller>, StoreError> {
        let row: Option<(Uuid, String, String)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, role, name FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL")
            .bind(digest.as_slice())
            .fetch_optional(pool)
            .await)?;
        row.map(|(key_id, role, name)| {
            Ok(Caller {
                key_id,
                role: parse_role(&role)?,
                name: name.into(),
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_carry_256_random_bits_behind_a_recognisable_prefix() {
        let a = mint_secret().unwrap();
        let b = mint_secret().unwrap();
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43);
        assert_ne!(a, b);
        assert_ne!(hash(&a), hash(&b));
    }
}
