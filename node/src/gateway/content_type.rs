//! `Content-Type` of served files: by file-name extension first, then by a look at the
//! first bytes (magic numbers, then text vs binary).

/// How many leading bytes `sniff` looks at.
pub(crate) const SNIFF_LEN: u64 = 512;

/// The media type for a file name's extension, if it is one we know.
pub(crate) fn by_extension(name: &str) -> Option<&'static str> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        // the station's own files
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "aac" => "audio/aac",
        "mp3" => "audio/mpeg",
        "html" | "htm" => "text/html",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        // other media
        "m4a" => "audio/mp4",
        "mp4" | "m4v" => "video/mp4",
        "m4s" => "video/iso.segment",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "webm" => "video/webm",
        "vtt" => "text/vtt; charset=utf-8",
        // images and fonts
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/vnd.microsoft.icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        // documents and data
        "txt" | "text" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "xml" => "text/xml; charset=utf-8",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "car" => "application/vnd.ipld.car",
        _ => return None,
    })
}

/// Guess a media type from a file's first bytes (up to [`SNIFF_LEN`]).
pub(crate) fn sniff(prefix: &[u8]) -> &'static str {
    if let Some(found) = by_magic(prefix) {
        return found;
    }
    let text = trim_leading_whitespace(prefix);
    let starts_with_ci =
        |tag: &[u8]| text.len() >= tag.len() && text[..tag.len()].eq_ignore_ascii_case(tag);
    if starts_with_ci(b"<!doctype html") || starts_with_ci(b"<html") {
        return "text/html";
    }
    if starts_with_ci(b"<svg") {
        return "image/svg+xml";
    }
    if starts_with_ci(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    if looks_like_text(prefix) {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

fn by_magic(b: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| b.get(offset..offset + magic.len()) == Some(magic);
    Some(if at(0, b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if at(0, b"\xff\xd8\xff") {
        "image/jpeg"
    } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
        "image/gif"
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        "image/webp"
    } else if at(0, b"RIFF") && at(8, b"WAVE") {
        "audio/wav"
    } else if at(0, b"%PDF-") {
        "application/pdf"
    } else if at(0, b"OggS") {
        "audio/ogg"
    } else if at(0, b"fLaC") {
        "audio/flac"
    } else if at(0, b"ID3") {
        "audio/mpeg"
    } else if at(0, b"#EXTM3U") {
        "application/vnd.apple.mpegurl"
    } else if at(4, b"ftyp") {
        "video/mp4"
    } else if at(0, b"\x1a\x45\xdf\xa3") {
        "video/webm"
    } else if at(0, b"\0asm") {
        "application/wasm"
    } else if b.first() == Some(&0x47) && (b.len() < 189 || b[188] == 0x47) && b.len() >= 4 {
        // MPEG transport stream: a 0x47 sync byte every 188 bytes.
        "video/mp2t"
    } else if b.len() >= 2 && b[0] == 0xff && (b[1] & 0xf6) == 0xf0 {
        // ADTS header (AAC): 12-bit sync word, layer 0.
        "audio/aac"
    } else {
        return None;
    })
}

fn trim_leading_whitespace(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'))
        .unwrap_or(b.len());
    &b[start..]
}

/// UTF-8 (allowing a character cut off at the end of the prefix) without control bytes
/// other than whitespace and escape.
fn looks_like_text(b: &[u8]) -> bool {
    let valid = match std::str::from_utf8(b) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && b.len() - e.valid_up_to() < 4,
    };
    valid
        && b.iter()
            .all(|&c| c >= 0x20 || matches!(c, b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x1b'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(
            by_extension("live.m3u8"),
            Some("application/vnd.apple.mpegurl")
        );
        assert_eq!(by_extension("SEG-000001.TS"), Some("video/mp2t"));
        assert_eq!(by_extension("index.html"), Some("text/html"));
        assert_eq!(by_extension("noext"), None);
        assert_eq!(by_extension("archive.unknownext"), None);
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff(b"  <!DOCTYPE html><html>"), "text/html");
        assert_eq!(
            sniff("héllo wörld\n".as_bytes()),
            "text/plain; charset=utf-8"
        );
        assert_eq!(sniff(&"é".as_bytes()[..1]), "text/plain; charset=utf-8");
        assert_eq!(sniff(b"\x00\x01\x02binary"), "application/octet-stream");
        assert_eq!(sniff(b""), "text/plain; charset=utf-8");
        let mut ts = vec![0u8; 376];
        ts[0] = 0x47;
        ts[188] = 0x47;
        assert_eq!(sniff(&ts), "video/mp2t");
        assert_eq!(
            sniff(b"#EXTM3U\n#EXT-X-VERSION:3\n"),
            "application/vnd.apple.mpegurl"
        );
    }
}
