//! `[sso]` and `[[sso.providers]]`: the OpenID Connect providers users sign in through
//! (`/auth/sso/*`; docs/sso.md). No providers means SSO is off and its routes answer 404.
//!
//! ```toml
//! [sso]
//! state_ttl_s = 600            # a sign-in must come back within this
//! timeout_ms = 3000            # every request to a provider; below [http] request_timeout_ms
//!
//! [[sso.providers]]
//! name = "corp"                # ?provider=corp; the first is the default
//! issuer = "https://id.example.com"
//! client_id = "troupe"
//! client_secret = "..."        # or TROUPE_SSO_CORP_CLIENT_SECRET
//! redirect_url = "https://app.example.com/auth/sso/callback"
//! scopes = ["openid", "email", "profile"]
//! link_verified_email = false  # link a first sign-in to the local account with that verified email
//! post_logout_redirect_url = "https://app.example.com/"   # optional
//! ```
//!
//! An issuer or URL must be `https`, except on a loopback host (`localhost`, `127.0.0.1`,
//! `[::1]`), where `http` is allowed for development and tests.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use axum::http::Uri;
use toml::Value;

use super::reader::{any, between, mismatch, name_chars, Reader, Section};
use super::Http;

/// `[sso]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Sso {
    /// The providers, in file order; the first is the default.
    pub providers: Vec<Provider>,
    /// How long a begun sign-in may take (`state_ttl_s`).
    pub state_ttl: Duration,
    /// Bound of every request to a provider (`timeout_ms`).
    pub timeout: Duration,
}

/// One `[[sso.providers]]` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct Provider {
    /// Name (`?provider=`).
    pub name: String,
    /// Issuer URL (discovery at `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// Client id at the provider.
    pub client_id: String,
    /// Client secret at the provider (file or `TROUPE_SSO_<NAME>_CLIENT_SECRET`).
    pub client_secret: String,
    /// The callback URL registered at the provider.
    pub redirect_url: String,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// Link first sign-ins to local accounts with the same verified email.
    pub link_verified_email: bool,
    /// Where the provider sends the browser after its logout.
    pub post_logout_redirect_url: Option<String>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .field("link_verified_email", &self.link_verified_email)
            .field("post_logout_redirect_url", &self.post_logout_redirect_url)
            .finish_non_exhaustive()
    }
}

/// The environment variable of provider `name`'s client secret:
/// `TROUPE_SSO_<NAME>_CLIENT_SECRET`, the name uppercased with `-` as `_`.
pub fn secret_env(name: &str) -> String {
    format!(
        "TROUPE_SSO_{}_CLIENT_SECRET",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// Requires an absolute `https` URL, or `http` on a loopback host.
#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
fn web_url(value: &String) -> Result<(), String> {
    let uri: Uri = value
        .parse()
        .map_err(|_| format!("expected an absolute URL, got {value:?}"))?;
    let host = uri.host().unwrap_or_default();
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1");
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if loopback => Ok(()),
        Some("http") => Err(format!(
            "must be https (http only on a loopback host), got {value:?}"
        )),
        _ => Err(format!("expected an absolute https URL, got {value:?}")),
    }
}

/// Requires a non-empty scope token without spaces.
#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
fn scope(value: &String) -> Result<(), String> {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
    {
        Ok(())
    } else {
        Err(format!(
            "expected a scope name without spaces, got {value:?}"
        ))
    }
}

#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
fn non_empty(value: &String) -> Result<(), String> {
    if value.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(())
    }
}

impl Reader<'_> {
    /// Reads `[sso]` and its `[[sso.providers]]`; with providers, `http` bounds the provider
    /// timeout.
    pub(super) fn sso(&mut self, root: &mut Section<'_>, http: &Http) -> Sso {
        let mut section = self.section(root, "sso");
        let ttl = self.get(
            &mut section,
            "state_ttl_s",
            Some("TROUPE_SSO_STATE_TTL_S"),
            &between(30, 3600),
        );
        let timeout = self.get(
            &mut section,
            "timeout_ms",
            Some("TROUPE_SSO_TIMEOUT_MS"),
            &between(100, 60_000),
        );
        let timeout = Duration::from_millis(timeout.unwrap_or(3000));
        let timeout_key = section.key("timeout_ms");
        let path = section.key("providers");
        let entries: &[Value] = match section.take("providers") {
            None => &[],
            Some(Value::Array(entries)) => entries,
            Some(other) => {
                self.error(
                    path.clone(),
                    mismatch("an array of tables ([[sso.providers]])", other),
                );
                &[]
            }
        };
        self.finish(section);
        let mut providers = Vec::new();
        let mut names: HashMap<String, String> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let Value::Table(table) = entry else {
                self.error(at, mismatch("a table", entry));
                continue;
            };
            let mut p = Section::new(at.clone(), Some(table));
            let name = self.required(&mut p, "name", &name_chars(""));
            let issuer = self.required(&mut p, "issuer", &web_url);
            let client_id = self.required(&mut p, "client_id", &non_empty);
            let secret_file = self.get(&mut p, "client_secret", None, &non_empty);
            let secret_from_env = name
                .as_deref()
                .map(secret_env)
                .and_then(|env| self.text(&env.clone(), self.env(&env), &non_empty));
            let redirect_url = self.required(&mut p, "redirect_url", &web_url);
            let scopes_given = p.has("scopes");
            let scopes = self.list(&mut p, "scopes", None, &scope);
            let link = self.get(&mut p, "link_verified_email", None, &any);
            let post_logout = self.get(&mut p, "post_logout_redirect_url", None, &web_url);
            self.finish(p);
            let secret = secret_from_env.or(secret_file);
            if let Some(n) = &name {
                if secret.is_none() {
                    self.error(
                        format!("{at}.client_secret"),
                        format!("missing (set client_secret or {})", secret_env(n)),
                    );
                }
                if let Some(first) = names.insert(n.clone(), at.clone()) {
                    self.error(
                        format!("{at}.name"),
                        format!("duplicate provider name {n:?} (also {first})"),
                    );
                }
            }
            let scopes = scopes.unwrap_or_else(|| {
                if scopes_given {
                    Vec::new()
                } else {
                    ["openid", "email", "profile"].map(str::to_owned).to_vec()
                }
            });
            if scopes_given && !scopes.iter().any(|s| s == "email") {
                self.error(
                    format!("{at}.scopes"),
                    "must include \"email\": a first sign-in makes the user from the email claim",
                );
            }
            let (
                Some(name),
                Some(issuer),
                Some(client_id),
                Some(client_secret),
                Some(redirect_url),
            ) = (name, issuer, client_id, secret, redirect_url)
            else {
                continue;
            };
            providers.push(Provider {
                name,
                issuer: issuer.trim_end_matches('/').to_owned(),
                client_id,
                client_secret,
                redirect_url,
                scopes,
                link_verified_email: link.unwrap_or(false),
                post_logout_redirect_url: post_logout,
            });
        }
        if !providers.is_empty() && timeout >= http.request_timeout {
            self.error(
                timeout_key,
                format!(
                    "must be below [http] request_timeout_ms ({} ms), so a slow provider is \
                     answered 504 before the request's own deadline",
                    http.request_timeout.as_millis()
                ),
            );
        }
        Sso {
            providers,
            state_ttl: Duration::from_secs(ttl.unwrap_or(600)),
            timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::tests::{env, named, SAMPLE};
    use super::*;

    /// The sample config with its `[sso]` table replaced by `sso` (TOML from `[sso]` on).
    fn read(sso: &str, vars: &[(&str, &str)]) -> Result<Sso, Vec<String>> {
        let start = SAMPLE.find("\n[sso]").expect("the sample has [sso]") + 1;
        let end = start + SAMPLE[start..].find("\n\n").expect("end of [sso]");
        let text = format!("{}{sso}\n{}", &SAMPLE[..start], &SAMPLE[end..]);
        parse(&text, "t.toml", &named("n1"), &env(vars))
            .map(|c| c.sso)
            .map_err(|e| e.0.into_iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn no_providers_means_sso_is_off() {
        let sso = read("[sso]", &[]).unwrap();
        assert!(sso.providers.is_empty());
        assert_eq!(sso.state_ttl, Duration::from_secs(600));
        assert_eq!(sso.timeout, Duration::from_millis(3000));
    }

    #[test]
    fn a_provider_is_read_with_its_defaults_and_the_secret_from_env() {
        let sso = read(
            r#"[sso]
[[sso.providers]]
name = "corp-id"
issuer = "https://id.example.com/"
client_id = "troupe"
client_secret = "from-file"
redirect_url = "https://app.example.com/auth/sso/callback"
"#,
            &[("TROUPE_SSO_CORP_ID_CLIENT_SECRET", "from-env")],
        )
        .unwrap();
        let p = &sso.providers[0];
        assert_eq!(p.name, "corp-id");
        assert_eq!(p.issuer, "https://id.example.com");
        assert_eq!(p.client_secret, "from-env");
        assert_eq!(p.scopes, ["openid", "email", "profile"]);
        assert!(!p.link_verified_email);
        assert_eq!(p.post_logout_redirect_url, None);
        assert!(
            !format!("{p:?}").contains("from-env"),
            "secret not in Debug"
        );
    }

    #[test]
    fn every_bad_provider_setting_is_reported_at_once() {
        let errors = read(
            r#"[sso]
timeout_ms = 9000
bogus = 1
[[sso.providers]]
name = "corp"
issuer = "http://id.example.com"
client_id = ""
redirect_url = "not a url"
scopes = ["openid"]
colour = "blue"
[[sso.providers]]
name = "corp"
issuer = "http://localhost:9000"
client_id = "x"
client_secret = "s"
redirect_url = "http://127.0.0.1:7181/auth/sso/callback"
"#,
            &[],
        )
        .unwrap_err();
        let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
        assert!(
            has("sso.timeout_ms: must be below [http] request_timeout_ms"),
            "{errors:?}"
        );
        assert!(has("sso.bogus: unknown key"), "{errors:?}");
        assert!(has("sso.providers[0].issuer: must be https"), "{errors:?}");
        assert!(
            has("sso.providers[0].client_id: must not be empty"),
            "{errors:?}"
        );
        assert!(
            has("sso.providers[0].redirect_url: expected an absolute"),
            "{errors:?}"
        );
        assert!(
            has("sso.providers[0].scopes: must include \"email\""),
            "{errors:?}"
        );
        assert!(has("sso.providers[0].colour: unknown key"), "{errors:?}");
        assert!(
            has("sso.providers[0].client_secret: missing (set client_secret or TROUPE_SSO_CORP_CLIENT_SECRET)"),
            "{errors:?}"
        );
        assert!(
            has("sso.providers[1].name: duplicate provider name"),
            "{errors:?}"
        );
        assert_eq!(errors.len(), 9, "{errors:?}");
    }
}
