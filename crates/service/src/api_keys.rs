//! API keys, whoever manages them (`orderly keys`, the first start of an empty database):
//! creating one (its name checked as every stored text is; the secret is returned once and
//! only its hash stored), listing them, revoking one (which also ends its console sessions,
//! as the sessions are joined to live keys), and the first admin key of a database that has
//! none.

use orderly_domain::Role;
use orderly_domain::validation::{check_length, check_text};
use orderly_storage::{NewApiKey, StoreError};
use uuid::Uuid;

pub use orderly_storage::ApiKeyInfo;

use crate::Services;

/// Why a key was not created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("name {0}")]
    BadName(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Services {
    /// Creates a key of `role` named `name`: the key and its secret, shown this once.
    pub async fn create_api_key(
        &self,
        name: &str,
        role: Role,
    ) -> Result<(ApiKeyInfo, String), KeyError> {
        if let Err(e) = check_length("name", name, 1, 100).and(check_text("name", name, &[])) {
            return Err(KeyError::BadName(e.message));
        }
        let (info, secret) = self
            .store
            .create_api_key(&NewApiKey {
                name: name.to_owned(),
                role,
            })
            .await?;
        tracing::info!(key_id = %info.id, prefix = %info.prefix, %role, "API key created");
        Ok((info, secret))
    }

    /// Every key, revoked ones included.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        self.store.list_api_keys().await
    }

    /// Revokes key `id`; whether a live key had that id.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<bool, StoreError> {
        let revoked = self.store.revoke_api_key(id).await?;
        if revoked {
            tracing::info!(key_id = %id, "API key revoked");
        }
        Ok(revoked)
    }

    /// On a database that has never had a key, an admin key (and its secret, shown this
    /// once); `None` when there are keys already.
    pub async fn first_admin_key(&self) -> Result<Option<(ApiKeyInfo, String)>, KeyError> {
        if self.store.count_api_keys().await? > 0 {
            return Ok(None);
        }
        let created = self.create_api_key("initial admin", Role::Admin).await?;
        Ok(Some(created))
    }
}
