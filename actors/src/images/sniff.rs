//! What an upload really is: the image type decided from its bytes (never from the client's
//! word), and a file name that is safe to store and to put in a `Content-Disposition`.

/// An accepted image type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// PNG: the 8-byte signature followed by the `IHDR` chunk.
    Png,
    /// JPEG: a start-of-image marker followed by another marker.
    Jpeg,
    /// GIF87a or GIF89a with a complete logical screen descriptor.
    Gif,
    /// WebP: a RIFF container of form `WEBP` with a `VP8 `, `VP8L` or `VP8X` chunk.
    Webp,
}

impl Kind {
    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Gif => "image/gif",
            Kind::Webp => "image/webp",
        }
    }

    /// The extension given to stored file names.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Png => "png",
            Kind::Jpeg => "jpg",
            Kind::Gif => "gif",
            Kind::Webp => "webp",
        }
    }

    /// Extensions a client's file name may already carry for this type.
    fn extensions(self) -> &'static [&'static str] {
        match self {
            Kind::Png => &["png"],
            Kind::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            Kind::Gif => &["gif"],
            Kind::Webp => &["webp"],
        }
    }
}

/// The image type of `data`, or `None` when it is not a PNG, JPEG, GIF or WebP.
pub fn detect(data: &[u8]) -> Option<Kind> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if data.len() >= 16 && data.starts_with(PNG) && &data[12..16] == b"IHDR" {
        return Some(Kind::Png);
    }
    // SOI, then the 0xFF of the next marker segment (APP0/APP1/DQT/...).
    if data.len() >= 4 && data[..3] == [0xFF, 0xD8, 0xFF] && data[3] >= 0xC0 && data[3] != 0xFF {
        return Some(Kind::Jpeg);
    }
    // Signature (6) + logical screen descriptor (7).
    if data.len() >= 13 && (data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a")) {
        return Some(Kind::Gif);
    }
    if data.len() >= 16
        && data.starts_with(b"RIFF")
        && &data[8..12] == b"WEBP"
        && matches!(&data[12..16], b"VP8 " | b"VP8L" | b"VP8X")
    {
        return Some(Kind::Webp);
    }
    None
}

/// Longest stored file name, in characters.
pub const MAX_FILENAME: usize = 100;

/// A file name safe to store and serve: the last path component only, characters outside
/// `[A-Za-z0-9._-]` replaced by `_`, no leading dots, at most [`MAX_FILENAME`] characters,
/// ending in an extension of `kind` (appended when missing or wrong). An empty result
/// becomes `image.<ext>`.
pub fn clean_filename(name: &str, kind: Kind) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out = String::with_capacity(base.len().min(MAX_FILENAME));
    for c in base.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
            c
        } else {
            '_'
        };
        // No runs of replacement characters or dots.
        if (c == '_' || c == '.') && out.ends_with(c) {
            continue;
        }
        out.push(c);
    }
    let cleaned = out.trim_start_matches(['.', '_']).trim_end_matches('.');
    // Keep the client's extension when it names this type; otherwise append ours.
    let (stem, ext) = match cleaned.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && kind
                    .extensions()
                    .contains(&ext.to_ascii_lowercase().as_str()) =>
        {
            (stem, ext)
        }
        _ => (cleaned, kind.extension()),
    };
    let room = MAX_FILENAME - ext.len() - 1;
    // ASCII only by now, so any byte index is a char boundary.
    let stem = stem[..stem.len().min(room)].trim_end_matches('.');
    let stem = if stem.is_empty() { "image" } else { stem };
    format!("{stem}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest well-formed images of each type (headers only is enough to sniff).
    pub(crate) fn sample(kind: Kind) -> Vec<u8> {
        let mut v = match kind {
            Kind::Png => b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec(),
            Kind::Jpeg => vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'],
            Kind::Gif => b"GIF89a\x01\0\x01\0\0\0\0".to_vec(),
            Kind::Webp => b"RIFF\x1a\0\0\0WEBPVP8L".to_vec(),
        };
        v.extend_from_slice(&[0u8; 32]);
        v
    }

    #[test]
    fn each_type_is_recognised_from_its_bytes() {
        for kind in [Kind::Png, Kind::Jpeg, Kind::Gif, Kind::Webp] {
            assert_eq!(detect(&sample(kind)), Some(kind));
        }
    }

    #[test]
    fn non_images_and_truncated_headers_are_refused() {
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"hello world, not an image at all"), None);
        assert_eq!(detect(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), None);
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(detect(&[0xFF, 0xD8, 0xFF]), None);
        assert_eq!(detect(b"GIF89a"), None);
        assert_eq!(detect(b"RIFF\x1a\0\0\0WAVEfmt \0\0\0\0"), None);
        assert_eq!(detect(b"%PDF-1.7 \x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"), None);
    }

    #[test]
    fn file_names_are_cleaned_and_get_the_right_extension() {
        assert_eq!(clean_filename("cat.png", Kind::Png), "cat.png");
        assert_eq!(clean_filename("CAT.JPEG", Kind::Jpeg), "CAT.JPEG");
        assert_eq!(clean_filename("../../etc/passwd", Kind::Png), "passwd.png");
        assert_eq!(clean_filename("C:\\Users\\x\\me.gif", Kind::Gif), "me.gif");
        assert_eq!(clean_filename("shell.php", Kind::Png), "shell.php.png");
        assert_eq!(
            clean_filename("a b<script>.png", Kind::Png),
            "a_b_script_.png"
        );
        assert_eq!(clean_filename("", Kind::Webp), "image.webp");
        assert_eq!(clean_filename("...", Kind::Png), "image.png");
        assert_eq!(clean_filename(".htaccess", Kind::Png), "htaccess.png");
        assert_eq!(clean_filename("ünïcødé.png", Kind::Png), "n_c_d_.png");
        let long = format!("{}.png", "x".repeat(300));
        let cleaned = clean_filename(&long, Kind::Png);
        assert_eq!(cleaned.len(), MAX_FILENAME);
        assert!(cleaned.ends_with(".png"));
        let long = "y".repeat(300);
        let cleaned = clean_filename(&long, Kind::Gif);
        assert_eq!(cleaned.len(), MAX_FILENAME);
        assert!(cleaned.ends_with(".gif"));
    }
}
