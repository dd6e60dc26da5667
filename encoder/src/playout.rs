//! What plays next: a shuffled rotation without repeats, jingles every N
//! tracks, and the position that lets a restart carry on where it stopped.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::library::Library;

/// Where the playout stands. It comes out with every segment and is taken
/// back at start; the encoder persists nothing itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayoutPosition {
    /// Track ids (paths relative to the library root) in rotation order.
    pub rotation: Vec<String>,
    /// Index in `rotation` of the next track to play.
    pub next_index: usize,
    /// Sequence number the next segment gets.
    pub media_sequence: u64,
    /// HLS discontinuity sequence in force for the next segment.
    pub discontinuity_sequence: u64,
    /// Tracks played since the last jingle.
    pub tracks_since_jingle: u32,
    /// Index (in sorted id order) of the next jingle.
    pub next_jingle: usize,
    /// Samples per channel (at 48 kHz) emitted so far: timestamps carry on from here.
    pub media_samples: u64,
}

/// What the rotation chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    Track(String),
    Jingle(String),
}

/// The rotation state machine. Cloning it (with its random generator) gives
/// a copy that picks exactly what the original will: a peek at what is next.
#[derive(Debug, Clone)]
pub struct Rotation {
    position: PlayoutPosition,
    jingle_every: u32,
    /// In single-pass mode the rotation ends instead of reshuffling.
    single_pass: bool,
    rng: StdRng,
}

impl Rotation {
    /// Starts from a saved position (or a fresh one), dropping tracks that are
    /// gone and slotting new ones into the part not yet played.
    pub fn new(
        position: Option<PlayoutPosition>,
        library: &Library,
        jingle_every: u32,
        single_pass: bool,
        mut rng: StdRng,
    ) -> Self {
        let mut position = position.unwrap_or_default();
        if position.rotation.is_empty() {
            position.rotation = library.ids();
            position.rotation.shuffle(&mut rng);
            position.next_index = 0;
        }
        let mut rotation = Rotation {
            position,
            jingle_every,
            single_pass,
            rng,
        };
        rotation.sync(library);
        rotation
    }

    /// Brings the order in line with the library after a rescan: removed ids
    /// disappear, new ids go at random places among the tracks still to play.
    pub fn sync(&mut self, library: &Library) {
        let p = &mut self.position;
        let played = p.next_index.min(p.rotation.len());
        let mut next = played;
        let mut kept = Vec::with_capacity(p.rotation.len());
        let mut seen = std::collections::HashSet::new();
        for (i, id) in p.rotation.drain(..).enumerate() {
            if library.get(&id).is_some() && seen.insert(id.clone()) {
                kept.push(id);
            } else if i < played {
                next -= 1;
            }
        }
        let missing: Vec<String> = library
            .ids()
            .into_iter()
            .filter(|id| !seen.contains(id))
            .collect();
        for id in missing {
            let at = self.rng.gen_range(next..=kept.len());
            kept.insert(at, id);
        }
        p.rotation = kept;
        p.next_index = next;
    }

    /// The next thing to play, or `None` when the library is empty or (single
    /// pass) the rotation is done.
    pub fn next(&mut self, library: &Library, jingles: &Library) -> Option<Pick> {
        let p = &mut self.position;
        // A single pass ends on music, not on a station ID.
        let more_to_come = !self.single_pass || p.next_index < p.rotation.len();
        if self.jingle_every > 0
            && p.tracks_since_jingle >= self.jingle_every
            && !jingles.is_empty()
            && more_to_come
        {
            let ids = jingles.ids();
            let id = ids[p.next_jingle % ids.len()].clone();
            p.next_jingle = (p.next_jingle + 1) % ids.len();
            p.tracks_since_jingle = 0;
            return Some(Pick::Jingle(id));
        }
        if library.is_empty() {
            return None;
        }
        loop {
            let p = &mut self.position;
            if p.next_index >= p.rotation.len() {
                if self.single_pass {
                    return None;
                }
                self.reshuffle(library);
            }
            let p = &mut self.position;
            let id = p.rotation[p.next_index].clone();
            p.next_index += 1;
            if library.get(&id).is_some() {
                p.tracks_since_jingle += 1;
                return Some(Pick::Track(id));
            }
        }
    }

    /// A new shuffled pass; the first track of the new pass is never the last
    /// one of the previous pass (no back-to-back repeat at the seam).
    fn reshuffle(&mut self, library: &Library) {
        let last = self.position.rotation.last().cloned();
        let mut order = library.ids();
        order.shuffle(&mut self.rng);
        if order.len() > 1 && order.first() == last.as_ref() {
            let swap_with = self.rng.gen_range(1..order.len());
            order.swap(0, swap_with);
        }
        self.position.rotation = order;
        self.position.next_index = 0;
    }

    pub fn position(&self) -> &PlayoutPosition {
        &self.position
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    fn track(pick: Option<Pick>) -> String {
        match pick {
            Some(Pick::Track(id)) => id,
            other => panic!("expected a track, got {other:?}"),
        }
    }

    #[test]
    fn no_repeat_until_every_track_played() {
        let ids = ["a", "b", "c", "d", "e"];
        let library = Library::from_ids(&ids);
        let none = Library::empty();
        for seed in 0..20 {
            let mut rotation = Rotation::new(None, &library, 0, false, rng(seed));
            let mut previous_last = None;
            for _pass in 0..4 {
                let mut pass: Vec<String> = (0..5)
                    .map(|_| track(rotation.next(&library, &none)))
                    .collect();
                assert_ne!(Some(&pass[0]), previous_last.as_ref(), "repeat at the seam");
                previous_last = pass.last().cloned();
                pass.sort();
                assert_eq!(pass, ids);
            }
        }
    }

    #[test]
    fn single_pass_ends_and_jingles_come_every_n() {
        let library = Library::from_ids(&["a", "b", "c", "d", "e"]);
        let jingles = Library::from_ids(&["j1", "j2"]);
        let mut rotation = Rotation::new(None, &library, 2, true, rng(1));
        let picks: Vec<Pick> = std::iter::from_fn(|| rotation.next(&library, &jingles)).collect();
        let shape: Vec<char> = picks
            .iter()
            .map(|p| {
                if matches!(p, Pick::Track(_)) {
                    't'
                } else {
                    'j'
                }
            })
            .collect();
        assert_eq!(shape, ['t', 't', 'j', 't', 't', 'j', 't']);
        assert_eq!(picks[2], Pick::Jingle("j1".into()));
        assert_eq!(picks[5], Pick::Jingle("j2".into()));
    }

    #[test]
    fn resume_from_position_and_sync_with_a_changed_library() {
        let library = Library::from_ids(&["a", "b", "c", "d"]);
        let none = Library::empty();
        let saved = PlayoutPosition {
            rotation: vec!["d".into(), "c".into(), "b".into(), "a".into()],
            next_index: 2,
            ..PlayoutPosition::default()
        };
        let mut rotation = Rotation::new(Some(saved.clone()), &library, 0, false, rng(3));
        assert_eq!(track(rotation.next(&library, &none)), "b");

        // "c" (already played) and "b" removed, "e" added: "e" must come before
        // the pass ends, and the next track is still "a" or "e".
        let changed = Library::from_ids(&["a", "d", "e"]);
        let mut rotation = Rotation::new(Some(saved), &changed, 0, true, rng(4));
        assert_eq!(rotation.position().next_index, 1);
        let rest: Vec<String> =
            std::iter::from_fn(|| rotation.next(&changed, &none).map(|p| track(Some(p)))).collect();
        let mut sorted = rest.clone();
        sorted.sort();
        assert_eq!(sorted, ["a", "e"]);

        // Every played track removed: the pass restarts at the first unplayed one.
        let saved = PlayoutPosition {
            rotation: vec!["x".into(), "y".into(), "a".into()],
            next_index: 2,
            ..PlayoutPosition::default()
        };
        let rotation = Rotation::new(Some(saved), &Library::from_ids(&["a"]), 0, true, rng(5));
        assert_eq!(rotation.position().rotation, ["a"]);
        assert_eq!(rotation.position().next_index, 0);
    }

    #[test]
    fn empty_library_gives_nothing() {
        let none = Library::empty();
        let mut rotation = Rotation::new(None, &none, 1, false, rng(0));
        assert_eq!(rotation.next(&none, &none), None);
    }
}
