//! ID3v2.4 now-playing tags carried as HLS timed metadata.

use crate::events::NowPlaying;

/// Text frames are cut at this many bytes so a tag stays a few TS packets long.
const MAX_TEXT_BYTES: usize = 256;
/// ID3 text encoding byte for UTF-8 (ID3v2.4 §4.2).
const UTF8: u8 = 3;

/// Builds an ID3v2.4 tag: TIT2 title, TPE1 artist, TALB album, and TXXX frames
/// `ipfm:track_start` (seconds on the stream timeline where the track began)
/// and `ipfm:kind` (track, jingle or demo).
pub fn now_playing_tag(now: &NowPlaying) -> Vec<u8> {
    let mut frames = Vec::new();
    text_frame(&mut frames, b"TIT2", &now.title);
    if let Some(artist) = &now.artist {
        text_frame(&mut frames, b"TPE1", artist);
    }
    if let Some(album) = &now.album {
        text_frame(&mut frames, b"TALB", album);
    }
    let start = format!("{:.3}", now.track_start.as_secs_f64());
    txxx_frame(&mut frames, "ipfm:track_start", &start);
    txxx_frame(&mut frames, "ipfm:kind", now.kind.as_str());

    let mut tag = Vec::with_capacity(10 + frames.len());
    tag.extend_from_slice(b"ID3");
    tag.extend_from_slice(&[4, 0, 0]); // version 2.4.0, no flags
    tag.extend_from_slice(&synchsafe(frames.len() as u32));
    tag.extend_from_slice(&frames);
    tag
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn text_frame(out: &mut Vec<u8>, id: &[u8; 4], text: &str) {
    let text = bounded(text, MAX_TEXT_BYTES);
    let mut body = Vec::with_capacity(1 + text.len());
    body.push(UTF8);
    body.extend_from_slice(text.as_bytes());
    frame(out, id, &body);
}

fn txxx_frame(out: &mut Vec<u8>, description: &str, value: &str) {
    let value = bounded(value, MAX_TEXT_BYTES);
    let mut body = Vec::with_capacity(2 + description.len() + value.len());
    body.push(UTF8);
    body.extend_from_slice(description.as_bytes());
    body.push(0);
    body.extend_from_slice(value.as_bytes());
    frame(out, b"TXXX", &body);
}

fn frame(out: &mut Vec<u8>, id: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&synchsafe(body.len() as u32));
    out.extend_from_slice(&[0, 0]); // no frame flags
    out.extend_from_slice(body);
}

/// ID3v2.4 sizes: 28 bits in four bytes of seven bits each.
fn synchsafe(n: u32) -> [u8; 4] {
    [
        ((n >> 21) & 0x7f) as u8,
        ((n >> 14) & 0x7f) as u8,
        ((n >> 7) & 0x7f) as u8,
        (n & 0x7f) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::SourceKind;
    use std::time::Duration;

    #[test]
    fn tag_layout_and_sizes() {
        let tag = now_playing_tag(&NowPlaying {
            title: "Été".into(),
            artist: Some("A".into()),
            album: None,
            kind: SourceKind::Track,
            track_start: Duration::from_millis(1500),
        });
        assert_eq!(&tag[..6], b"ID3\x04\x00\x00");
        let size = tag[6..10]
            .iter()
            .fold(0usize, |acc, b| (acc << 7) | usize::from(*b));
        assert_eq!(size, tag.len() - 10);
        assert_eq!(&tag[10..14], b"TIT2");
        assert_eq!(&tag[14..18], &[0, 0, 0, 1 + "Été".len() as u8]);
        assert_eq!(&tag[21..21 + "Été".len()], "Été".as_bytes());
        let text = String::from_utf8_lossy(&tag);
        assert!(text.contains("ipfm:track_start\u{0}1.500"));
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let long = "é".repeat(300);
        let cut = bounded(&long, MAX_TEXT_BYTES);
        assert!(cut.len() <= MAX_TEXT_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(synchsafe(0x0fff_ffff), [0x7f; 4]);
        assert_eq!(synchsafe(128), [0, 0, 1, 0]);
    }
}
