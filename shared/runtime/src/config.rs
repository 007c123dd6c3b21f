//! Typed configuration from the environment variables of the contract, checked once at start-up.
//! Parsing lives here, at the edge of the process; the core only sees the typed values, and the
//! sync knobs default to [`SyncPolicy::default`] (the one place their defaults are written).

use psa_domain::usecase::sync::SyncPolicy;

/// A missing or malformed variable; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is malformed: {why}")]
    Malformed { name: &'static str, why: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `PSA_TABLE`: the project's own table.
    pub psa_table: String,
    /// `WORKSPACES_TABLE`: the platform's workspace read model.
    pub workspaces_table: String,
    /// `SYNC_QUEUE_URL`: the sync job queue (required by the functions that enqueue).
    pub sync_queue_url: Option<String>,
    /// `GRADIENT_BASE_URL`, default `https://app.usegradient.com`.
    pub gradient_base_url: String,
    /// `GRADIENT_VENDOR_KEY_SECRET_ID`: Secrets Manager id of the vendor key.
    pub vendor_key_secret_id: String,
    /// `GRADIENT_MAX_RPS`: the process's request budget towards Gradient, default 80.
    pub gradient_max_rps: u32,
    /// `TOKEN_SECRET_PREFIX`: name prefix of the per-connector token secrets.
    pub token_secret_prefix: String,
    /// Sync knobs from optional variables beyond the contract: `SYNC_COOLDOWN_SECONDS` (300),
    /// `SYNC_FULL_RESEND_DAYS` (7), `SYNC_IN_FLIGHT` (8), `SYNC_MAX_CONTINUATIONS` (10),
    /// `SYNC_KEY_FAULT_CONNECTORS` (3) within `SYNC_KEY_FAULT_WINDOW_MINUTES` (15),
    /// `SYNC_GUARD_DROP_PERCENT` (50; 0 = guard off for new connectors), `SYNC_GUARD_MIN_UNITS`
    /// (20), `PSA_ALERT_INTERVAL_DAYS` (7), `SYNC_ERROR_AFTER` (3).
    pub sync: SyncPolicy,
    /// `EVENT_BUS_NAME`: the EventBridge bus for the contract events; unset = no events.
    pub event_bus_name: Option<String>,
    /// `API_WORKSPACE_RPS` (default 20): a workspace's API requests per second, across all
    /// instances; beyond it 429 `too_many_requests`.
    pub api_workspace_rps: u32,
    /// `TOKEN_KMS_KEY_ID`: the KMS key that encrypts every partner-token secret; unset = the
    /// account's default key for Secrets Manager.
    pub token_kms_key_id: Option<String>,
    /// `NOTIFY_FROM`: the SES-verified sender of the sync emails (the notifier's; a plain
    /// address, or `Name <address>`).
    pub notify_from: Option<String>,
    /// `CONSOLE_URL`: the console's PSA tab, linked from the sync emails (the notifier's).
    pub console_url: Option<String>,
}

pub const DEFAULT_GRADIENT_BASE_URL: &str = "https://app.usegradient.com";
pub const DEFAULT_GRADIENT_MAX_RPS: u32 = 80;
pub const DEFAULT_API_WORKSPACE_RPS: u32 = 20;

/// Whether `url` may carry the vendor key and partner keys: `https://`, or `http://` to a
/// loopback host (`127.0.0.0/8`, `localhost`, `[::1]`) for local stacks. Anything else would send
/// every key in clear.
pub fn is_safe_gradient_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return false; // no host, or credentials in the URL
    }
    match scheme {
        "https" => true,
        "http" => {
            let host = if let Some(v6) = authority.strip_prefix('[') {
                v6.split(']').next().map(|h| format!("[{h}]"))
            } else {
                authority.split(':').next().map(str::to_owned)
            };
            match host.as_deref() {
                Some("localhost" | "[::1]") => true,
                Some(h) => h
                    .parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_loopback()),
                None => false,
            }
        }
        _ => false,
    }
}

/// Whether `raw` is a sender SES takes: a plain address, or `Name <address>`.
fn is_sender(raw: &str) -> bool {
    let address = match raw.strip_suffix('>').and_then(|r| r.rsplit_once('<')) {
        Some((name, address)) => {
            if name.trim().is_empty() || name.chars().any(char::is_control) {
                return false;
            }
            address
        }
        None => raw,
    };
    psa_domain::connector::is_notify_address(address)
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| -> Result<String, ConfigError> {
            match get(name) {
                Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
                _ => Err(ConfigError::Missing(name)),
            }
        };
        let optional = |name: &'static str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let base =
            optional("GRADIENT_BASE_URL").unwrap_or_else(|| DEFAULT_GRADIENT_BASE_URL.to_owned());
        if !is_safe_gradient_url(&base) {
            return Err(ConfigError::Malformed {
                name: "GRADIENT_BASE_URL",
                why: "must be an https:// URL (http:// only to a loopback host: 127.0.0.0/8, \
                      localhost, [::1])"
                    .into(),
            });
        }
        let max_rps = match optional("GRADIENT_MAX_RPS") {
            None => DEFAULT_GRADIENT_MAX_RPS,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Malformed {
                        name: "GRADIENT_MAX_RPS",
                        why: format!("`{v}` is not a whole number from 1 to 100"),
                    });
                }
            },
        };
        let prefix = required("TOKEN_SECRET_PREFIX")?;
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
        {
            return Err(ConfigError::Malformed {
                name: "TOKEN_SECRET_PREFIX",
                why: "may hold only letters, digits and /_+=.@-".into(),
            });
        }
        let vendor_key_secret_id = required("GRADIENT_VENDOR_KEY_SECRET_ID")?;
        // The token vault may write any secret under the prefix: the vendor key must not be one.
        let vendor_name = vendor_key_secret_id
            .split_once(":secret:")
            .map_or(vendor_key_secret_id.as_str(), |(_, name)| name);
        if vendor_name.starts_with(&prefix) {
            return Err(ConfigError::Malformed {
                name: "GRADIENT_VENDOR_KEY_SECRET_ID",
                why: "names a secret under TOKEN_SECRET_PREFIX, where partner tokens are written"
                    .into(),
            });
        }
        let number = |name: &'static str, default: u64, max: u64| -> Result<u64, ConfigError> {
            match optional(name) {
                None => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n <= max => Ok(n),
                    _ => Err(ConfigError::Malformed {
                        name,
                        why: format!("`{v}` is not a whole number up to {max}"),
                    }),
                },
            }
        };
        const DAY: u64 = 86_400;
        let d = SyncPolicy::default();
        let secs = std::time::Duration::from_secs;
        let sync = SyncPolicy {
            cooldown: secs(number("SYNC_COOLDOWN_SECONDS", d.cooldown.as_secs(), DAY)?),
            full_resend_every: secs(
                number(
                    "SYNC_FULL_RESEND_DAYS",
                    d.full_resend_every.as_secs() / DAY,
                    365,
                )?
                .max(1)
                    * DAY,
            ),
            in_flight: number("SYNC_IN_FLIGHT", d.in_flight as u64, 64)?.max(1) as usize,
            max_continuations: number(
                "SYNC_MAX_CONTINUATIONS",
                u64::from(d.max_continuations),
                100,
            )? as u32,
            key_fault_connectors: number(
                "SYNC_KEY_FAULT_CONNECTORS",
                d.key_fault_connectors as u64,
                1000,
            )?
            .max(2) as usize,
            key_fault_window: secs(
                number(
                    "SYNC_KEY_FAULT_WINDOW_MINUTES",
                    d.key_fault_window.as_secs() / 60,
                    24 * 60,
                )?
                .max(1)
                    * 60,
            ),
            guard_drop_percent: match number(
                "SYNC_GUARD_DROP_PERCENT",
                d.guard_drop_percent.map_or(0, u64::from),
                100,
            )? {
                0 => None,
                n => Some(n as u8),
            },
            guard_min_units: number("SYNC_GUARD_MIN_UNITS", d.guard_min_units, 1_000_000_000)?,
            alert_interval: secs(
                number(
                    "PSA_ALERT_INTERVAL_DAYS",
                    d.alert_interval.as_secs() / DAY,
                    365,
                )?
                .max(1)
                    * DAY,
            ),
            error_after: number("SYNC_ERROR_AFTER", u64::from(d.error_after), 1000)?.max(1) as u32,
            ..d
        };
        Ok(Self {
            sync,
            psa_table: required("PSA_TABLE")?,
            workspaces_table: required("WORKSPACES_TABLE")?,
            sync_queue_url: optional("SYNC_QUEUE_URL"),
            gradient_base_url: base.trim_end_matches('/').to_owned(),
            vendor_key_secret_id,
            gradient_max_rps: max_rps,
            token_secret_prefix: prefix,
            event_bus_name: optional("EVENT_BUS_NAME"),
            api_workspace_rps: number(
                "API_WORKSPACE_RPS",
                u64::from(DEFAULT_API_WORKSPACE_RPS),
                10_000,
            )?
            .max(1) as u32,
            token_kms_key_id: optional("TOKEN_KMS_KEY_ID"),
            notify_from: match optional("NOTIFY_FROM") {
                Some(from) if !is_sender(&from) => {
                    return Err(ConfigError::Malformed {
                        name: "NOTIFY_FROM",
                        why: "must be an email address, or `Name <address>`".into(),
                    });
                }
                from => from,
            },
            console_url: match optional("CONSOLE_URL") {
                Some(url) if !is_safe_gradient_url(&url) => {
                    return Err(ConfigError::Malformed {
                        name: "CONSOLE_URL",
                        why: "must be an https:// URL (http:// only to a loopback host)".into(),
                    });
                }
                url => url,
            },
        })
    }

    /// `NOTIFY_FROM` and `CONSOLE_URL`, for the notifier.
    pub fn require_notify(&self) -> Result<(&str, &str), ConfigError> {
        let from = self
            .notify_from
            .as_deref()
            .ok_or(ConfigError::Missing("NOTIFY_FROM"))?;
        let url = self
            .console_url
            .as_deref()
            .ok_or(ConfigError::Missing("CONSOLE_URL"))?;
        Ok((from, url))
    }

    /// `SYNC_QUEUE_URL`, for the functions that need it.
    pub fn require_queue_url(&self) -> Result<&str, ConfigError> {
        self.sync_queue_url
            .as_deref()
            .ok_or(ConfigError::Missing("SYNC_QUEUE_URL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("PSA_TABLE", "psa"),
        ("WORKSPACES_TABLE", "ws"),
        ("GRADIENT_VENDOR_KEY_SECRET_ID", "vk"),
        ("TOKEN_SECRET_PREFIX", "coro/psa/gradient/"),
    ];

    #[test]
    fn the_notifier_needs_a_sender_and_a_console_link() {
        let s = Settings::from_lookup(env(FULL)).unwrap();
        assert_eq!(s.require_notify(), Err(ConfigError::Missing("NOTIFY_FROM")));
        let mut vars = FULL.to_vec();
        vars.push(("NOTIFY_FROM", "Coro PSA <psa@coro.example>"));
        let s = Settings::from_lookup(env(&vars)).unwrap();
        assert_eq!(s.require_notify(), Err(ConfigError::Missing("CONSOLE_URL")));
        vars.push(("CONSOLE_URL", "https://console.coro.example/psa"));
        let s = Settings::from_lookup(env(&vars)).unwrap();
        assert_eq!(
            s.require_notify(),
            Ok((
                "Coro PSA <psa@coro.example>",
                "https://console.coro.example/psa"
            ))
        );
        for (name, bad) in [
            ("NOTIFY_FROM", "not an address"),
            ("NOTIFY_FROM", "<psa@coro.example>"),
            ("CONSOLE_URL", "http://console.coro.example/psa"),
            ("CONSOLE_URL", "javascript:alert(1)"),
        ] {
            let mut vars = FULL.to_vec();
            vars.push((name, bad));
            match Settings::from_lookup(env(&vars)) {
                Err(ConfigError::Malformed { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}={bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn defaults_apply() {
        let s = Settings::from_lookup(env(FULL)).unwrap();
        assert_eq!(s.gradient_base_url, DEFAULT_GRADIENT_BASE_URL);
        assert_eq!(s.gradient_max_rps, 80);
        assert_eq!(s.event_bus_name, None, "no bus: no events");
        let mut with_bus = FULL.to_vec();
        with_bus.push(("EVENT_BUS_NAME", " psa-events "));
        let s = Settings::from_lookup(env(&with_bus)).unwrap();
        assert_eq!(s.event_bus_name.as_deref(), Some("psa-events"));
        assert_eq!(
            s.require_queue_url(),
            Err(ConfigError::Missing("SYNC_QUEUE_URL"))
        );
    }

    #[test]
    fn missing_and_malformed_variables_are_named() {
        let err = Settings::from_lookup(env(&FULL[1..])).unwrap_err();
        assert_eq!(err.to_string(), "environment variable PSA_TABLE is not set");
        let mut bad = FULL.to_vec();
        bad.push(("GRADIENT_MAX_RPS", "fast"));
        assert!(
            Settings::from_lookup(env(&bad))
                .unwrap_err()
                .to_string()
                .contains("GRADIENT_MAX_RPS")
        );
        let mut bad = FULL.to_vec();
        bad.push(("GRADIENT_BASE_URL", "ftp://x"));
        assert!(
            Settings::from_lookup(env(&bad))
                .unwrap_err()
                .to_string()
                .contains("GRADIENT_BASE_URL")
        );
    }

    #[test]
    fn gradient_is_reached_over_tls_except_on_loopback() {
        for ok in [
            "https://app.usegradient.com",
            "https://10.0.0.1:8443/x",
            "http://127.0.0.1:9999",
            "http://127.8.9.10",
            "http://localhost:4010/",
            "http://[::1]:4010",
        ] {
            assert!(is_safe_gradient_url(ok), "{ok}");
        }
        for bad in [
            "http://app.usegradient.com",
            "http://10.0.0.1",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://user@127.0.0.1",
            "http://[::2]",
            "HTTP://x",
            "https://",
            "app.usegradient.com",
        ] {
            assert!(!is_safe_gradient_url(bad), "{bad}");
        }
        let mut clear = FULL.to_vec();
        clear.push(("GRADIENT_BASE_URL", "http://app.usegradient.com"));
        let err = Settings::from_lookup(env(&clear)).unwrap_err().to_string();
        assert!(
            err.contains("GRADIENT_BASE_URL") && err.contains("https"),
            "{err}"
        );
    }

    #[test]
    fn the_vendor_key_lives_outside_the_token_prefix_and_new_knobs_parse() {
        let mut inside = FULL.to_vec();
        inside[2] = ("GRADIENT_VENDOR_KEY_SECRET_ID", "coro/psa/gradient/vendor");
        let err = Settings::from_lookup(env(&inside)).unwrap_err().to_string();
        assert!(err.contains("GRADIENT_VENDOR_KEY_SECRET_ID"), "{err}");
        inside[2] = (
            "GRADIENT_VENDOR_KEY_SECRET_ID",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:coro/psa/gradient/vk-AbC",
        );
        assert!(Settings::from_lookup(env(&inside)).is_err());
        let s = Settings::from_lookup(env(FULL)).unwrap();
        assert_eq!(s.api_workspace_rps, DEFAULT_API_WORKSPACE_RPS);
        assert_eq!(s.token_kms_key_id, None);
        let mut set = FULL.to_vec();
        set.push(("API_WORKSPACE_RPS", "5"));
        set.push(("TOKEN_KMS_KEY_ID", "alias/psa-tokens"));
        let s = Settings::from_lookup(env(&set)).unwrap();
        assert_eq!(s.api_workspace_rps, 5);
        assert_eq!(s.token_kms_key_id.as_deref(), Some("alias/psa-tokens"));
    }
}
