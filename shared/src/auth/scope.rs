//! Permissions carried by API keys and access tokens.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Scope {
    #[serde(rename = "jobs:write")]
    JobsWrite,
    #[serde(rename = "jobs:read")]
    JobsRead,
    #[serde(rename = "usage:read")]
    UsageRead,
    #[serde(rename = "keys:manage")]
    KeysManage,
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    /// Operators only: every account, tiers, overrides, suspension.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::JobsWrite,
        Scope::JobsRead,
        Scope::UsageRead,
        Scope::KeysManage,
        Scope::WebhooksManage,
        Scope::Admin,
    ];

    /// What an account member may do; admins get [`Scope::Admin`] on top.
    pub const MEMBER: [Scope; 5] = [
        Scope::JobsWrite,
        Scope::JobsRead,
        Scope::UsageRead,
        Scope::KeysManage,
        Scope::WebhooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::JobsWrite => "jobs:write",
            Scope::JobsRead => "jobs:read",
            Scope::UsageRead => "usage:read",
            Scope::KeysManage => "keys:manage",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A small ordered set of scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut v: Vec<Scope> = scopes.into_iter().collect();
        v.sort();
        v.dedup();
        Self(v)
    }

    /// The scopes a user with this role holds.
    pub fn for_role(role: Role) -> Self {
        match role {
            Role::Member => Self::new(Scope::MEMBER),
            Role::Admin => Self::new(Scope::ALL),
        }
    }

    /// Parses names, rejecting unknown ones (`Err` carries the first).
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        names
            .into_iter()
            .map(|n| Scope::parse(n).ok_or_else(|| n.to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }

    /// Names as stored in Postgres; unknown names (from a newer version) are
    /// dropped so they can never grant anything.
    pub fn from_stored(names: &[String]) -> Self {
        Self::new(names.iter().filter_map(|n| Scope::parse(n)))
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.0.iter().all(|s| other.contains(*s))
    }

    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Self::new(self.0.iter().copied().filter(|s| other.contains(*s)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.as_str().to_owned()).collect()
    }

    /// Space-separated, as in OAuth's `scope` claim.
    pub fn to_claim(&self) -> String {
        self.names().join(" ")
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

/// A user's role inside voxq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    /// An operator of the deployment.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Role::Member, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_dedupe_and_compare() {
        let s = Scopes::parse(["jobs:read", "jobs:write", "jobs:read"]).expect("valid");
        assert_eq!(s.names(), ["jobs:write", "jobs:read"]);
        assert!(s.is_subset_of(&Scopes::for_role(Role::Member)));
        assert!(!Scopes::for_role(Role::Admin).is_subset_of(&Scopes::for_role(Role::Member)));
        assert_eq!(Scopes::parse(["jobs:read", "root"]), Err("root".to_owned()));
        assert_eq!(
            Scopes::from_stored(&["jobs:read".into(), "future:thing".into()]).names(),
            ["jobs:read"]
        );
    }
}
