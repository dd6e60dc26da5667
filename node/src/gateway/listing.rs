//! The generated HTML listing of a directory without `index.html`.

use std::fmt::Write;

use cid::Cid;
use ipfm_protocol::dagpb::PbLink;
use sha2::{Digest, Sha256};

use super::path::encode_segment;

const PAGE_HEAD: &str = "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";
const PAGE_STYLE: &str = "</title>\n<style>body{font-family:sans-serif;margin:2em}\
td{padding:.2em 1em .2em 0}td.size{text-align:right}code{font-size:.85em;color:#555}</style>\n\
</head>\n<body>\n";
const PAGE_TAIL: &str = "</table>\n</body>\n</html>\n";

/// A short hash of the page template, part of the listing's `Etag` so that caches drop
/// listings made by an older template (as the path gateway spec asks).
pub(crate) fn template_version() -> String {
    let digest = Sha256::digest([PAGE_HEAD, PAGE_STYLE, PAGE_TAIL, ROW_FORMAT_VERSION].concat());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// Bump when the row markup below changes.
const ROW_FORMAT_VERSION: &str = "rows-1";

/// The listing page for directory `cid` reached at `display_path` (decoded, for humans).
pub(crate) fn render(display_path: &str, cid: &Cid, links: &[PbLink], has_parent: bool) -> String {
    let mut page = String::with_capacity(512 + links.len() * 200);
    page.push_str(PAGE_HEAD);
    page.push_str(&escape(display_path));
    page.push_str(PAGE_STYLE);
    let _ = write!(
        page,
        "<h1>Index of {}</h1>\n<p><code>{}</code></p>\n<table>\n",
        escape(display_path),
        cid
    );
    if has_parent {
        page.push_str("<tr><td><a href=\"..\">..</a></td><td></td><td></td></tr>\n");
    }
    for link in links {
        let name = link.name.as_deref().unwrap_or_default();
        let size = link.tsize.map(human_size).unwrap_or_default();
        let _ = writeln!(
            page,
            "<tr><td><a href=\"{href}\">{name}</a></td><td class=\"size\">{size}</td>\
             <td><code>{cid}</code></td></tr>",
            href = encode_segment(name),
            name = escape(name),
            cid = link.hash,
        );
    }
    page.push_str(PAGE_TAIL);
    page
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Escape text for HTML element content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfm_protocol::cid::raw_cid;

    #[test]
    fn names_are_escaped_and_linked_relatively() {
        let cid = raw_cid(b"x");
        let links = vec![PbLink {
            hash: cid,
            name: Some("<b>my song</b>.mp3".into()),
            tsize: Some(2048),
        }];
        let page = render("/ipfs/dir/", &cid, &links, true);
        assert!(page.contains("&lt;b&gt;my song&lt;/b&gt;.mp3"));
        assert!(page.contains("href=\"%3Cb%3Emy%20song%3C%2Fb%3E.mp3\""));
        assert!(page.contains("2.0 KiB"));
        assert!(page.contains("href=\"..\""));
        assert!(!page.contains("<b>"));
    }
}
