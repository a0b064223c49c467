//! Who may do what: the roles an API key can carry.

use std::fmt;
use std::str::FromStr;

/// The role of an API key. Roles are coarse on purpose: each maps to one kind of client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Operators and back-office tools: manage the catalogue, orders and jobs.
    Admin,
    /// A shop front: read the catalogue, create and read its own orders.
    Storefront,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Admin, Role::Storefront];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Storefront => "storefront",
        }
    }

    /// Whether a key with this role may manage the catalogue (create, update, archive).
    pub fn can_manage_catalogue(self) -> bool {
        matches!(self, Role::Admin)
    }

    /// Whether a key with this role may read the catalogue.
    pub fn can_read_catalogue(self) -> bool {
        matches!(self, Role::Admin | Role::Storefront)
    }

    /// Whether a key with this role may create orders, and read the orders it created.
    pub fn can_place_orders(self) -> bool {
        matches!(self, Role::Admin | Role::Storefront)
    }

    /// Whether a key with this role may inspect, retry and cancel background jobs.
    pub fn can_manage_jobs(self) -> bool {
        matches!(self, Role::Admin)
    }

    /// Whether a key with this role may manage webhook endpoints and see their deliveries.
    pub fn can_manage_webhooks(self) -> bool {
        matches!(self, Role::Admin)
    }

    /// Whether a key with this role may read every order and move orders between states.
    pub fn can_manage_orders(self) -> bool {
        matches!(self, Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of the known role names.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown role {0:?}: expected `admin` or `storefront`")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "storefront" => Ok(Role::Storefront),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn only_admin_manages_the_catalogue_and_both_read_it() {
        assert!(Role::Admin.can_manage_catalogue());
        assert!(!Role::Storefront.can_manage_catalogue());
        assert!(Role::Storefront.can_read_catalogue());
    }
}
