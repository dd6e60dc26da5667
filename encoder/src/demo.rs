//! The built-in demo program, played when the library is empty or nothing in
//! it decodes: a synthesised arpeggio over a I–vi–IV–V progression with a
//! bass line, so a station started with no arguments sounds like music.

use std::f32::consts::TAU;

use crate::config::SAMPLE_RATE;

/// Title shown in the now-playing metadata while the demo plays.
pub const DEMO_TITLE: &str = "ipfm demo program";
/// Artist shown while the demo plays.
pub const DEMO_ARTIST: &str = "ipfm";

/// Seconds per chord; four chords, played twice: 16 seconds.
const CHORD_SECONDS: f32 = 2.0;
const NOTES_PER_CHORD: usize = 8;
/// MIDI notes of C major, A minor, F major, G major (root position, octave 4).
const PROGRESSION: [[u8; 3]; 4] = [[60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62]];

fn midi_to_hz(note: u8) -> f32 {
    440.0 * 2f32.powf((f32::from(note) - 69.0) / 12.0)
}

/// A soft organ-like tone: fundamental plus two quieter harmonics.
fn voice(phase: f32) -> f32 {
    (phase).sin() + 0.3 * (2.0 * phase).sin() + 0.1 * (3.0 * phase).sin()
}

/// Renders the demo program as interleaved stereo f32 at [`SAMPLE_RATE`].
pub fn render() -> Vec<f32> {
    let rate = SAMPLE_RATE as f32;
    let chord_len = (CHORD_SECONDS * rate) as usize;
    let note_len = chord_len / NOTES_PER_CHORD;
    let total = chord_len * PROGRESSION.len() * 2;
    let mut out = vec![0f32; total * 2];
    for (i, frame) in out.chunks_exact_mut(2).enumerate() {
        let chord = PROGRESSION[(i / chord_len) % PROGRESSION.len()];
        let t = i as f32 / rate;
        // Arpeggio up and down the chord, an octave above, with a plucked envelope.
        let step = (i % chord_len) / note_len;
        let pattern = [0usize, 1, 2, 1, 0, 1, 2, 1];
        let octave_up = if step >= 4 { 12 } else { 0 };
        let note = chord[pattern[step]] + 12 + octave_up;
        let since_note = (i % note_len) as f32 / rate;
        // A 5 ms attack avoids a click where the previous note is cut off.
        let pluck = (since_note * 200.0).min(1.0) * (-since_note * 6.0).exp();
        let arp = voice(TAU * midi_to_hz(note) * t) * pluck;
        // Bass: the chord root two octaves down, swelling in with each chord.
        let since_chord = (i % chord_len) as f32 / rate;
        let bass_env = (since_chord * 8.0).min(1.0) * (-since_chord * 0.6).exp();
        let bass = voice(TAU * midi_to_hz(chord[0] - 24) * t) * bass_env;
        // Pad: the whole chord, quiet and steady.
        let pad: f32 = chord
            .iter()
            .map(|&n| (TAU * midi_to_hz(n) * t).sin())
            .sum::<f32>()
            / 3.0;
        // Arpeggio drifts across the stereo field; bass and pad stay centred.
        let pan = 0.5 + 0.3 * (TAU * 0.125 * t).sin();
        let centre = 0.35 * bass + 0.12 * pad;
        frame[0] = centre + 0.3 * arp * (1.0 - pan);
        frame[1] = centre + 0.3 * arp * pan;
    }
    out
}
