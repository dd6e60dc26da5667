//! The web player: static files placed inside every station root, so the station plays
//! from any gateway (path or subdomain style) with nothing loaded from elsewhere.
//!
//! Contract with the station: `assets()` lists (relative path, bytes) pairs; the station
//! adds each to its root directory next to `master.m3u8` and `nowplaying.json`. The page
//! loads those two (and everything else) by relative URL, plays the stream with the
//! vendored hls.js (npm `hls.js` 1.7.4, light build; see `node/assets/vendor/README.md`)
//! or the browser's own HLS, and polls `nowplaying.json` for the title and history.
//!
//! All names are flat (no folders), so they can never collide with the per-rendition
//! segment folders.

/// The look shared with the dashboard (`theme.css`), then the player's own rules: one
/// stylesheet for the page to load.
const PLAYER_CSS: &[u8] = concat!(
    include_str!("../../assets/theme.css"),
    include_str!("../../assets/player/player.css")
)
.as_bytes();

/// The player's files, relative to the station root. `index.html` is the entry point.
pub fn assets() -> &'static [(&'static str, &'static [u8])] {
    &[
        (
            "index.html",
            include_bytes!("../../assets/player/index.html"),
        ),
        ("player.css", PLAYER_CSS),
        ("player.js", include_bytes!("../../assets/player/player.js")),
        (
            "favicon.svg",
            include_bytes!("../../assets/player/favicon.svg"),
        ),
        (
            "hls.light.min.js",
            include_bytes!("../../assets/vendor/hls.light.min.js"),
        ),
        (
            "hls.js.LICENSE.txt",
            include_bytes!("../../assets/vendor/hls.js.LICENSE.txt"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_flat_unique_and_include_the_entry_point() {
        let names: Vec<&str> = assets().iter().map(|(name, _)| *name).collect();
        assert!(names.contains(&"index.html"));
        for name in &names {
            assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
        }
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            names.len(),
            "duplicate asset names: {names:?}"
        );
    }

    /// Every local file the page references must be shipped, and nothing may come from
    /// another origin (no CDN at runtime) or by absolute path (breaks subdomain gateways).
    #[test]
    fn page_references_only_shipped_files_by_relative_url() {
        let index = assets()
            .iter()
            .find(|(name, _)| *name == "index.html")
            .map(|(_, bytes)| std::str::from_utf8(bytes).expect("index.html is UTF-8"))
            .expect("index.html is an asset");
        let shipped: Vec<&str> = assets().iter().map(|(name, _)| *name).collect();
        let station_files = ["master.m3u8", "nowplaying.json"];
        for attribute in ["src=\"", "href=\""] {
            for part in index.split(attribute).skip(1) {
                let url = part.split('"').next().unwrap_or_default();
                assert!(
                    shipped.contains(&url) || station_files.contains(&url),
                    "index.html references {url:?}, which is neither an asset nor a station file"
                );
            }
        }
    }
}
