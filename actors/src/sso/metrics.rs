//! Names of the metrics the `sso` service records.

/// Sign-ins finished at the callback, by `provider` and `outcome`: `signed_in`, or the
/// error code that ended it (`unauthenticated`, `unavailable`, `deadline_exceeded`, ...).
pub const SIGN_INS_TOTAL: &str = "troupe_sso_sign_ins_total";
/// Requests to a provider, by `provider`, `endpoint` (`discovery`, `jwks`, `token`,
/// `refresh`, `userinfo`) and `result` (`ok` or the error code).
pub const PROVIDER_SECONDS: &str = "troupe_sso_provider_request_duration_seconds";

/// Describes the metrics once.
pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        SIGN_INS_TOTAL,
        "sso sign-ins ended at the callback, by provider and outcome"
    );
    describe_histogram!(
        PROVIDER_SECONDS,
        Unit::Seconds,
        "requests to an sso provider, by provider, endpoint and result"
    );
}

/// Records one request to `provider`'s `endpoint` that began at `began`.
pub fn provider_request<T>(
    provider: &str,
    endpoint: &'static str,
    began: std::time::Instant,
    answer: &Result<T, crate::mesh::MeshError>,
) {
    let result = match answer {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    metrics::histogram!(
        PROVIDER_SECONDS,
        "provider" => provider.to_owned(),
        "endpoint" => endpoint,
        "result" => result,
    )
    .record(began.elapsed().as_secs_f64());
}
