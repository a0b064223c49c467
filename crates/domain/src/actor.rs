//! Who did something: every event, payment, shipment and refund records its actor, so an
//! order's history says who took each step.

use std::fmt;

/// What kind of caller acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A request with an API key.
    ApiKey,
    /// An operator in the console (signed in with an admin key).
    Console,
    /// A scheduled chore, such as `expire_orders`.
    Scheduler,
    /// orderly itself, or an operator at its command line.
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::ApiKey => "api_key",
            ActorKind::Console => "console",
            ActorKind::Scheduler => "scheduler",
            ActorKind::System => "system",
        }
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An actor: its kind, an id (an API key's id, a schedule's name, `cli`) and a name people
/// read (the key's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
    pub name: String,
}

impl Actor {
    pub fn new(kind: ActorKind, id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
            name: name.into(),
        }
    }

    /// orderly's command line.
    pub fn cli() -> Self {
        Self::new(ActorKind::System, "cli", "orderly command line")
    }

    /// A scheduled chore, by its schedule's name.
    pub fn schedule(name: &str) -> Self {
        Self::new(ActorKind::Scheduler, name, name)
    }
}
