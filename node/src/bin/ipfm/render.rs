//! `ipfm render`: a music directory played once through into a VOD HLS directory.

use std::path::PathBuf;

use anyhow::Context;

use crate::shared::progress_bar;

#[derive(clap::Args)]
pub struct RenderArgs {
    /// Music directory (scanned recursively).
    #[arg(value_name = "MUSIC_DIR")]
    music: PathBuf,
    /// Output directory (created; must be empty).
    #[arg(value_name = "OUT_DIR")]
    out: PathBuf,
    #[command(flatten)]
    sound: SoundArgs,
    /// Do not show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Encoder settings of `render` (the station takes the same keys from its merged settings).
#[derive(clap::Args)]
struct SoundArgs {
    /// Jingles / station IDs directory.
    #[arg(long, value_name = "DIR")]
    jingles: Option<PathBuf>,
    /// Target segment duration in seconds (2–10).
    #[arg(long, default_value_t = 6.0)]
    segment_seconds: f64,
    /// Crossfade between tracks in seconds (0 = gapless).
    #[arg(long, default_value_t = 0.0)]
    crossfade: f64,
    /// Play a jingle after every N tracks (0 = never).
    #[arg(long, default_value_t = 4)]
    jingle_every: u32,
}

impl SoundArgs {
    fn encoder_config(&self) -> anyhow::Result<ipfm_encoder::EncoderConfig> {
        let seconds = |v: f64, what: &str| {
            std::time::Duration::try_from_secs_f64(v)
                .with_context(|| format!("{what}: {v} is not a duration in seconds"))
        };
        Ok(ipfm_encoder::EncoderConfig {
            segment_target: seconds(self.segment_seconds, "--segment-seconds")?,
            crossfade: seconds(self.crossfade, "--crossfade")?,
            jingle_every: self.jingle_every,
            ..ipfm_encoder::EncoderConfig::default()
        })
    }
}

pub async fn run(args: RenderArgs) -> anyhow::Result<()> {
    let options = ipfm_node::render::RenderOptions {
        music: args.music,
        jingles: args.sound.jingles.clone(),
        out: args.out,
        encoder: args.sound.encoder_config()?,
    };
    // The length is the media duration, known once the library is scanned.
    let bar = progress_bar(0, "{bar:40} {msg} media, eta {eta}", args.no_progress);
    let progress = bar.clone();
    let report = ipfm_node::render::render(options, move |p| {
        progress.set_length(p.total.as_secs());
        progress.set_position(p.done.as_secs());
        progress.set_message(format!(
            "{}/{}",
            clock(p.done.as_secs()),
            clock(p.total.as_secs())
        ));
    })
    .await?;
    bar.finish_and_clear();
    for skipped in &report.skipped {
        eprintln!("skipped {skipped}");
    }
    println!("{}", report.root);
    Ok(())
}

fn clock(secs: u64) -> String {
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}
