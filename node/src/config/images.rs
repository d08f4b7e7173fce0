//! `[images]`: image upload limit and public URLs.

use super::reader::{between, Reader, Section};

/// `[images]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// Largest accepted image, in bytes (1 KiB to 64 MiB).
    pub max_bytes: usize,
    /// Base of the public image URLs (`<public_url>/images/<id>`); `None` = this node's
    /// `http://<http_addr>`.
    pub public_url: Option<String>,
}

/// Requires an `http://` or `https://` URL without query or fragment.
#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
fn public_url(value: &String) -> Result<(), String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.contains(['?', '#', ' ', '"', '<', '>']) => Ok(()),
        _ => Err(format!(
            "expected a URL like \"https://images.example.com\", got {value:?}"
        )),
    }
}

impl Reader<'_> {
    /// Reads `[images]`.
    pub(super) fn images(&mut self, root: &mut Section<'_>) -> Images {
        let mut section = self.section(root, "images");
        let max_env = Some("TROUPE_IMAGES_MAX_BYTES");
        let max_bytes = self.get(
            &mut section,
            "max_bytes",
            max_env,
            &between(1024, 64 * 1024 * 1024),
        );
        let url_env = Some("TROUPE_IMAGES_PUBLIC_URL");
        let public_url = self.get(&mut section, "public_url", url_env, &public_url);
        self.finish(section);
        Images {
            max_bytes: max_bytes.unwrap_or(5 * 1024 * 1024),
            public_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{env, errors, keys};
    use crate::config::{parse, Overrides};

    #[test]
    fn images_settings_are_read_checked_and_overridden_by_env() {
        let base = "[cluster]\ninsecure_plaintext = true\ncookie = \"12345678\"\n[auth]\nkeys = [\"k1:0123456789abcdef0123456789abcdef\"]\n[[nodes]]\nname = \"solo\"\n\
            cluster_addr = \"127.0.0.1:7101\"\nhttp_addr = \"127.0.0.1:7181\"\n\
            grpc_addr = \"127.0.0.1:7191\"\n";
        let config = parse(base, "t", &Overrides::default(), &env(&[])).unwrap();
        assert_eq!(config.images.max_bytes, 5 * 1024 * 1024);
        assert_eq!(config.images.public_url, None);
        let text =
            format!("{base}[images]\nmax_bytes = 2048\npublic_url = \"https://img.example.com\"\n");
        let config = parse(&text, "t", &Overrides::default(), &env(&[])).unwrap();
        assert_eq!(config.images.max_bytes, 2048);
        assert_eq!(
            config.images.public_url.as_deref(),
            Some("https://img.example.com")
        );
        let vars = env(&[("TROUPE_IMAGES_MAX_BYTES", "4096")]);
        let config = parse(&text, "t", &Overrides::default(), &vars).unwrap();
        assert_eq!(config.images.max_bytes, 4096);
        let bad = format!("{base}[images]\nmax_bytes = 10\npublic_url = \"ftp://x\"\nsize = 1\n");
        let errs = errors(&bad, &Overrides::default(), &env(&[]));
        assert_eq!(
            keys(&errs),
            vec!["images.max_bytes", "images.public_url", "images.size"]
        );
    }
}
