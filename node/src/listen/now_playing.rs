//! The "now playing: Title — Artist" lines: one per change of track.

use ipfm_protocol::announce::NowPlaying;
use ipfm_protocol::Cid;
use ipfm_store::Blockstore;

use crate::follow::FollowedRoot;
use crate::gateway::read_file_at;

/// `nowplaying.json` larger than this is not read (the station's are a few KiB).
const MAX_NOW_PLAYING_JSON: u64 = 1024 * 1024;

/// Remembers the last line shown, so each track is announced once.
#[derive(Debug, Default)]
pub struct NowPlayingLog {
    last: Option<String>,
}

impl NowPlayingLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// The line to show for `followed`, if the track changed: from the announcement, else
    /// from the root's own `nowplaying.json`.
    pub async fn update<S>(&mut self, store: &S, followed: &FollowedRoot) -> Option<String>
    where
        S: Blockstore + Clone + Send + Sync + 'static,
    {
        let now = match &followed.now_playing {
            Some(now) => Some(now.clone()),
            None => now_playing_in_root(store, &followed.root).await,
        }?;
        let line = now_playing_line(&now);
        if self.last.as_deref() == Some(line.as_str()) {
            return None;
        }
        self.last = Some(line.clone());
        Some(line)
    }
}

/// `now playing: Title — Artist` (just the title when the artist is unknown).
pub fn now_playing_line(now: &NowPlaying) -> String {
    let clean = |text: &str| -> String {
        // A station's text must not move the listener's terminal cursor around.
        text.chars().filter(|c| !c.is_control()).collect()
    };
    if now.artist.trim().is_empty() {
        format!("now playing: {}", clean(&now.title))
    } else {
        format!(
            "now playing: {} — {}",
            clean(&now.title),
            clean(&now.artist)
        )
    }
}

/// Title and artist from `root`'s `nowplaying.json` (`{"now": {"title", "artist"}}`);
/// `None` (logged) when it is missing or unreadable.
pub async fn now_playing_in_root<S>(store: &S, root: &Cid) -> Option<NowPlaying>
where
    S: Blockstore + Clone + Send + Sync + 'static,
{
    let path = ["nowplaying.json".to_owned()];
    let json = read_file_at(store.clone(), *root, &path, MAX_NOW_PLAYING_JSON)
        .await
        .map_err(|error| tracing::debug!(%root, %error, "no readable nowplaying.json"))
        .ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|error| tracing::warn!(%root, %error, "nowplaying.json is not JSON"))
        .ok()?;
    let now = doc.get("now")?;
    let text = |field: &str| Some(now.get(field)?.as_str()?.to_owned());
    Some(NowPlaying {
        title: text("title")?,
        artist: text("artist").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_title_and_artist_without_control_characters() {
        let now = NowPlaying {
            title: "Tone\x1b[2J".into(),
            artist: "Test Artist".into(),
        };
        assert_eq!(now_playing_line(&now), "now playing: Tone[2J — Test Artist");
        let untitled = NowPlaying {
            title: "Alone".into(),
            artist: " ".into(),
        };
        assert_eq!(now_playing_line(&untitled), "now playing: Alone");
    }
}
