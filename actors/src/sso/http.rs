//! HTTP to OpenID Connect providers: the `openidconnect` crate's [`AsyncHttpClient`] over
//! ureq, run on tokio's blocking pool and bounded by the provider timeout (`[sso]
//! timeout_ms`), so a provider that is down or slow costs one blocking thread for at most
//! that long and never an async worker.
//!
//! TLS is rustls on the aws-lc-rs provider with the webpki roots, the crypto stack the rest
//! of the node already uses. Redirects are not followed (OpenID Connect endpoints answer
//! directly; following one could leak a token to another host), and bodies are capped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// Largest provider answer read (discovery documents and key sets are a few KiB).
const BODY_MAX: u64 = 1024 * 1024;

/// Why a request to a provider got no answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connection refused, reset, TLS failure, unreadable HTTP.
    #[error("{0}")]
    Transport(String),
}

/// A client for one provider's endpoints.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    timeout: Duration,
}

impl Client {
    /// A client whose every request ends within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let crypto = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::WebPki)
            .unversioned_rustls_crypto_provider(crypto)
            .build();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls)
            .user_agent("troupe-sso")
            .build()
            .new_agent();
        Self { agent, timeout }
    }

    /// How long a request may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `request` and reads the whole answer, whatever its status.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let agent = self.agent.clone();
        let job = tokio::task::spawn_blocking(move || -> Result<HttpResponse, Error> {
            let transport = |e: ureq::Error| match e {
                ureq::Error::Timeout(_) => Error::Timeout(Duration::ZERO),
                e => Error::Transport(e.to_string()),
            };
            let mut answer = agent.run(request).map_err(transport)?;
            let status = answer.status();
            let headers = answer.headers().clone();
            let body = answer
                .body_mut()
                .with_config()
                .limit(BODY_MAX)
                .read_to_vec()
                .map_err(transport)?;
            let mut response = HttpResponse::new(body);
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            Ok(response)
        });
        // ureq's own timeout ends the blocking call; this one is the bound the caller sees
        // even if a DNS lookup, which ureq cannot interrupt, hangs.
        match tokio::time::timeout(self.timeout + Duration::from_millis(250), job).await {
            Ok(Ok(Err(Error::Timeout(_)))) | Err(_) => Err(Error::Timeout(self.timeout)),
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => Err(Error::Transport(format!("request task failed: {e}"))),
        }
    }
}

impl<'c> AsyncHttpClient<'c> for Client {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
