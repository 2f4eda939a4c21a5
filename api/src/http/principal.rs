//! Who is calling: API keys and access tokens resolved to a [`Principal`],
//! plus the per-address and per-principal rate limits.
//!
//! [`authenticate`] runs in front of every `/v1` route. It resolves a
//! presented `Authorization: Bearer` credential (rejecting bad ones with
//! 401, suspended accounts with 403), applies the rate limits and adds the
//! rate-limit headers to the answer. Handlers take [`Principal`] as an
//! extractor and check scopes with [`Principal::require`].
//!
//! Longer than most files: the rate limits are applied here, not in their
//! own layer, because `authenticate` puts them around the credential in
//! one pass (the address's limit before the credential is resolved, the
//! principal's after it, both answered in the same headers), and
//! `limit_address_first` hands its decision to `authenticate`; the
//! limiter itself is `rate_limit`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use redis::AsyncCommands;
use uuid::Uuid;
use voxq_shared::auth::limits::{Limits, LimitsOverride, Tier};
use voxq_shared::auth::scope::{Scope, Scopes};
use voxq_shared::db::{api_keys, sessions};

use crate::error::{ApiError, Result};
use crate::http::rate_limit::{Decision, Policy};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Key {
        key_id: Uuid,
        /// The user whose authority the key carries, if a user made it.
        created_by_user: Option<Uuid>,
    },
    User {
        user_id: Uuid,
        jti: Uuid,
        family_id: Uuid,
        expires_at: i64,
    },
}

/// An authenticated caller and what it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account_id: Uuid,
    pub actor: Actor,
    pub scopes: Scopes,
    pub tier: Tier,
    pub limits: Limits,
}

impl Principal {
    /// 403 unless the credential carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "insufficient_scope",
                format!("this credential lacks the `{scope}` scope"),
            ))
        }
    }

    /// `key:<id>` or `user:<id>`, as the audit log records actors.
    pub fn actor_label(&self) -> String {
        match self.actor {
            Actor::Key { key_id, .. } => format!("key:{key_id}"),
            Actor::User { user_id, .. } => format!("user:{user_id}"),
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match self.actor {
            Actor::User { user_id, .. } => Some(user_id),
            Actor::Key { .. } => None,
        }
    }

    /// The user whose authority this credential carries: the signed-in user,
    /// or the user who made the key (through any chain of keys). Keys this
    /// credential makes are bound to the same user, so they lose what that
    /// user loses.
    pub fn authority_user(&self) -> Option<Uuid> {
        match self.actor {
            Actor::User { user_id, .. } => Some(user_id),
            Actor::Key {
                created_by_user, ..
            } => created_by_user,
        }
    }

    fn rate_policy(&self) -> (Policy, String) {
        let (name, subject) = match self.actor {
            Actor::Key { key_id, .. } => ("key", key_id),
            Actor::User { user_id, .. } => ("user", user_id),
        };
        let policy = Policy {
            name,
            per_minute: self.limits.requests_per_minute,
            burst: self.limits.burst,
        };
        (policy, subject.to_string())
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

/// Where a request came from and its id, for the audit log.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub ip: IpAddr,
    pub request_id: Option<String>,
}

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        Ok(RequestMeta {
            ip: client_ip(state, &parts.headers, &parts.extensions),
            request_id: parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}

/// The socket's peer, or the configured proxy header's last (proxy-added)
/// address when the API runs behind a proxy.
fn client_ip(state: &AppState, headers: &HeaderMap, extensions: &axum::http::Extensions) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let Some(name) = &state.config.client_ip_header else {
        return peer;
    };
    headers
        .get_all(name.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        // Only the entry our proxy appended can be trusted; anything
        // before it is whatever the client sent.
        .next_back()
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .unwrap_or(peer)
}

pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let limited = request.extensions().get::<AddressLimited>().copied();
    let mut decision = match limited {
        Some(AddressLimited(decision)) => decision,
        None => {
            let ip = client_ip(&state, request.headers(), request.extensions());
            match limit_address(&state, ip).await {
                Ok(d) => d,
                Err(response) => return response,
            }
        }
    };
    let principal = match bearer(request.headers()) {
        Ok(None) => None,
        Ok(Some(token)) => match resolve(&state, &token).await {
            Ok(p) => Some(p),
            Err(e) => return e.into_response(),
        },
        Err(e) => return e.into_response(),
    };
    if let Some(p) = &principal {
        tracing::Span::current().record("account_id", tracing::field::display(p.account_id));
        let (policy, subject) = p.rate_policy();
        match limit(&state, &subject, policy).await {
            Ok(Some(d)) => decision = Some(d),
            Ok(None) => {}
            Err(response) => return response,
        }
        request.extensions_mut().insert(p.clone());
    }
    let mut response = next.run(request).await;
    if let Some(d) = decision {
        d.write_headers(response.headers_mut());
    }
    response
}

/// The address's rate limit, already applied (by `limit_address_first`).
#[derive(Clone, Copy)]
struct AddressLimited(Option<Decision>);

/// The client address's rate limit, for a route that must read its body
/// before `authenticate` (LibreTranslate's key may be in it): nobody
/// gets a body read and parsed beyond the address's limit.
pub async fn limit_address_first(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let ip = client_ip(&state, request.headers(), request.extensions());
    match limit_address(&state, ip).await {
        Ok(decision) => {
            request.extensions_mut().insert(AddressLimited(decision));
            next.run(request).await
        }
        Err(response) => response,
    }
}

async fn limit_address(
    state: &AppState,
    ip: IpAddr,
) -> std::result::Result<Option<Decision>, Response> {
    let ip_policy = Policy {
        name: "ip",
        per_minute: state.config.ip_rate_per_minute,
        burst: state.config.ip_burst,
    };
    let address = address_group(ip, state.config.ipv6_prefix);
    limit(state, &address, ip_policy).await
}

/// `Ok(None)` when Redis cannot answer: rate limiting fails open (quotas,
/// which fail closed, still bound what can be submitted).
async fn limit(
    state: &AppState,
    subject: &str,
    policy: Policy,
) -> std::result::Result<Option<Decision>, Response> {
    match state.limiter.check(subject, policy).await {
        Ok(d) if d.allowed => Ok(Some(d)),
        Ok(d) => Err(d.rejection()),
        Err(e) => {
            tracing::warn!(error = %e, "rate limiter unavailable; allowing the request");
            Ok(None)
        }
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(header) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = header.to_str().map_err(|_| ApiError::Unauthorized)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() || token.len() > 4096 {
        return Err(ApiError::Unauthorized);
    }
    Ok(Some(token.trim().to_owned()))
}

async fn resolve(state: &AppState, token: &str) -> Result<Principal> {
    if token.starts_with(voxq_shared::api_key::PREFIX) {
        let key = api_keys::authenticate(&state.db, &state.config.common.key_pepper, token)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        return principal(
            state,
            key.account_id,
            Actor::Key {
                key_id: key.key_id,
                created_by_user: key.created_by_user,
            },
            key.scopes,
            key.tier,
            &key.limits_override,
            key.suspended,
        );
    }
    let claims = state.tokens.verify(token).ok_or(ApiError::Unauthorized)?;
    let revoked: bool = state
        .redis
        .clone()
        .exists(revoked_jti_key(&state.config.common.namespace, claims.jti))
        .await?;
    if revoked {
        return Err(ApiError::Unauthorized);
    }
    let session = sessions::state(&state.db, claims.sub, claims.fam)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if session.family_revoked || session.account_id != claims.acct {
        return Err(ApiError::Unauthorized);
    }
    // A role change applies at once: the token never grants more than the
    // user holds now.
    let scopes = Scopes::parse(claims.scope.split_whitespace())
        .unwrap_or_default()
        .intersection(&Scopes::for_role(session.role));
    principal(
        state,
        session.account_id,
        Actor::User {
            user_id: claims.sub,
            jti: claims.jti,
            family_id: claims.fam,
            expires_at: claims.exp,
        },
        scopes,
        session.tier,
        &session.limits_override,
        session.suspended,
    )
}

fn principal(
    state: &AppState,
    account_id: Uuid,
    actor: Actor,
    scopes: Scopes,
    tier: Tier,
    limits_override: &LimitsOverride,
    suspended: bool,
) -> Result<Principal> {
    if suspended {
        return Err(ApiError::forbidden(
            "account_suspended",
            "this account is suspended; contact the operator",
        ));
    }
    Ok(Principal {
        account_id,
        actor,
        scopes,
        tier,
        limits: state.tiers.get(tier).with_override(limits_override),
    })
}

pub fn revoked_jti_key(namespace: &str, jti: Uuid) -> String {
    format!("{namespace}:revoked-jti:{jti}")
}

/// What per-address limits key on: an IPv4 address, or the IPv6 network
/// of `v6_prefix` bits around the address (a client picks freely within
/// its /64, so keying on the full address would let it rotate past every
/// limit). IPv4-mapped IPv6 addresses count as the IPv4 address.
pub fn address_group(ip: IpAddr, v6_prefix: u8) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match ipnet::Ipv6Net::new(v6, v6_prefix) {
            Ok(net) => net.trunc().to_string(),
            Err(_) => v6.to_string(),
        },
    }
}

impl RequestMeta {
    /// The caller's address group for per-address limits.
    pub fn address_group(&self, state: &AppState) -> String {
        address_group(self.ip, state.config.ipv6_prefix)
    }

    /// An audit entry for an action `principal` took in this request.
    pub fn audit(
        &self,
        principal: &Principal,
        action: &'static str,
        target: String,
        details: serde_json::Value,
    ) -> voxq_shared::db::audit::AuditEvent {
        voxq_shared::db::audit::AuditEvent {
            account_id: Some(principal.account_id),
            actor: principal.actor_label(),
            action,
            target: Some(target),
            ip: Some(self.ip.to_string()),
            request_id: self.request_id.clone(),
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_grouped_by_network_and_ipv4_by_address() {
        let group = |ip: &str| address_group(ip.parse().expect("address"), 64);
        assert_eq!(group("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(
            group("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(group("2001:db8:1:3::1"), group("2001:db8:1:2::1"));
        assert_eq!(group("192.0.2.7"), "192.0.2.7");
        assert_eq!(group("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(
            address_group("2001:db8::1".parse().expect("address"), 128),
            "2001:db8::1/128"
        );
    }
}
