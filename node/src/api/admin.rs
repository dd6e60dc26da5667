//! The operator dashboard at `/admin`: static files compiled into the binary (vanilla JS
//! and CSS, nothing from another origin), served next to `/api/v1`.
//!
//! The page itself is public and holds no data: it asks for the bearer token, keeps it in
//! `sessionStorage`, and sends it with every `/api/v1` call, so everything it shows is as
//! protected as the API. A strict Content-Security-Policy makes "no CDN, no inline code"
//! enforced by the browser, and framing is refused (no clickjacking of the Skip button).

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::ApiContext;

/// The look shared with the player (`theme.css`), then the dashboard's own rules: one
/// stylesheet for the page to load.
const ADMIN_CSS: &[u8] = concat!(
    include_str!("../../assets/theme.css"),
    include_str!("../../assets/admin/admin.css")
)
.as_bytes();

/// The dashboard's files: (URL path, media type, bytes). `/admin` and `/admin/` both
/// serve the page; its own references are absolute (`/admin/…`, `/api/v1/…`), since it is
/// only ever served from the station's own listener, never through a gateway.
pub fn assets() -> &'static [(&'static str, &'static str, &'static [u8])] {
    &[
        (
            "/admin",
            "text/html; charset=utf-8",
            include_bytes!("../../assets/admin/index.html"),
        ),
        (
            "/admin/admin.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../assets/admin/admin.js"),
        ),
        ("/admin/admin.css", "text/css; charset=utf-8", ADMIN_CSS),
        (
            "/admin/favicon.svg",
            "image/svg+xml",
            include_bytes!("../../assets/player/favicon.svg"),
        ),
    ]
}

/// Scripts, styles, images and API calls from this origin only; no inline code, no
/// plugins, no framing, forms post nowhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Routes for every asset (and `/admin/` for the page).
pub(super) fn router() -> Router<Arc<ApiContext>> {
    let mut router = Router::new();
    for (path, media_type, bytes) in assets() {
        let handler = get(move || async move { asset(media_type, bytes) });
        if *path == "/admin" {
            router = router.route("/admin/", handler.clone());
        }
        router = router.route(path, handler);
    }
    router
}

fn asset(media_type: &'static str, bytes: &'static [u8]) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Revalidate every time: after an upgrade the page must match the new binary's API.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(path: &str) -> &'static str {
        assets()
            .iter()
            .find(|(p, _, _)| *p == path)
            .map(|(_, _, bytes)| std::str::from_utf8(bytes).expect("UTF-8 asset"))
            .unwrap_or_else(|| panic!("{path} is not an asset"))
    }

    /// Everything the page loads is shipped in the binary; nothing comes from another
    /// origin, and nothing is inline (the CSP would block it).
    #[test]
    fn the_page_references_only_shipped_files() {
        let index = text("/admin");
        let shipped: Vec<&str> = assets().iter().map(|(path, _, _)| *path).collect();
        let mut references = 0;
        for attribute in ["src=\"", "href=\""] {
            for part in index.split(attribute).skip(1) {
                let url = part.split('"').next().unwrap_or_default();
                references += 1;
                assert!(
                    shipped.contains(&url) || url.starts_with('#'),
                    "index.html references {url:?}, which is not shipped"
                );
            }
        }
        assert!(
            references >= 3,
            "script, stylesheet and icon are referenced"
        );
        assert!(!index.contains("<style"), "inline styles break the CSP");
        for handler in ["onclick=", "onload=", "onsubmit=", "oninput=", "onchange="] {
            assert!(!index.contains(handler), "inline handlers break the CSP");
        }
        assert!(!index.contains("<script>"), "inline scripts break the CSP");
        // The script's only absolute URLs: the SVG namespace (an identifier, never
        // fetched) and the public-gateway link it shows.
        let script = text("/admin/admin.js")
            .replace("'http://www.w3.org/2000/svg'", "")
            .replace("'https://ipfs.io/ipns/'", "");
        assert!(
            !script.contains("http://") && !script.contains("https://"),
            "admin.js names another origin"
        );
    }
}
