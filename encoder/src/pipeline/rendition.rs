//! One rendition's thread: AAC-encode the cut segments and mux each into TS.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::{select, Receiver, Sender};

use super::aac::AacEncoder;
use super::{SegmentInfo, SegmentJob};
use crate::config::{samples_to_duration, Rendition, AAC_FRAME_SAMPLES, CHANNELS};
use crate::events::{EncoderEvent, Segment};
use crate::segmenter::{id3, ts};
use crate::EncoderError;

/// Encodes jobs until the job channel closes (end of stream) or `stop`
/// disconnects. Packets are held until the segment they belong to is
/// complete: the encoder's output lags its input by its priming delay. Only
/// the segment's [`SegmentInfo`] waits with them: its samples are let go as
/// soon as they are encoded.
pub(crate) fn run_rendition(
    rendition: Rendition,
    jobs: Receiver<Arc<SegmentJob>>,
    out: Sender<EncoderEvent>,
    stop: Receiver<()>,
) -> Result<(), EncoderError> {
    let mut aac = AacEncoder::new(rendition.bitrate)?;
    let mut packets: VecDeque<ts::AudioPacket> = VecDeque::new();
    let mut waiting: VecDeque<Arc<SegmentInfo>> = VecDeque::new();
    let frame_values = AAC_FRAME_SAMPLES as usize * CHANNELS;
    let mut fresh = Vec::new();
    loop {
        let job = select! {
            recv(jobs) -> job => job.ok(),
            recv(stop) -> _ => return Ok(()),
        };
        let Some(job) = job else { break };
        for (i, chunk) in job.samples.chunks_exact(frame_values).enumerate() {
            let pts = (job.info.start + i as u64 * AAC_FRAME_SAMPLES) as i64;
            aac.encode(chunk, pts, &mut fresh)?;
        }
        packets.extend(fresh.drain(..));
        waiting.push_back(Arc::clone(&job.info));
        // The last rendition to get here frees the samples.
        drop(job);
        // A segment is complete once its last frame's packet is out.
        while let Some(first) = waiting.front() {
            let last_frame = first.end() as i64 - AAC_FRAME_SAMPLES as i64;
            match packets.back() {
                Some(p) if p.ts >= last_frame => {}
                _ => break,
            }
            let job = waiting.pop_front().expect("front exists");
            let end = job.end() as i64;
            let mut taken = Vec::new();
            while packets.front().is_some_and(|p| p.ts < end) {
                taken.extend(packets.pop_front());
            }
            if !emit(&rendition, &aac, &job, &taken, &out, &stop)? {
                return Ok(());
            }
        }
    }
    // End of stream: drain the encoder; the last segment takes what is left,
    // including the tail the priming delay pushed past its end.
    aac.finish(&mut fresh)?;
    packets.extend(fresh.drain(..));
    while let Some(job) = waiting.pop_front() {
        let end = job.end() as i64;
        let mut taken = Vec::new();
        while packets
            .front()
            .is_some_and(|p| p.ts < end || waiting.is_empty())
        {
            taken.extend(packets.pop_front());
        }
        if !emit(&rendition, &aac, &job, &taken, &out, &stop)? {
            return Ok(());
        }
    }
    Ok(())
}

/// Muxes and sends one segment; `Ok(false)` when the station is stopping.
fn emit(
    rendition: &Rendition,
    aac: &AacEncoder,
    job: &SegmentInfo,
    packets: &[ts::AudioPacket],
    out: &Sender<EncoderEvent>,
    stop: &Receiver<()>,
) -> Result<bool, EncoderError> {
    let mut tags = vec![(job.start as i64, id3::now_playing_tag(&job.now_playing))];
    tags.extend(
        job.changes
            .iter()
            .map(|(at, now)| (*at as i64, id3::now_playing_tag(now))),
    );
    let bytes = ts::mux_segment(aac.params(), packets, &tags)?;
    let segment = Segment {
        rendition: rendition.name.clone(),
        sequence: job.sequence,
        start_sample: job.start,
        sample_count: packets.len() as u64 * AAC_FRAME_SAMPLES,
        media_start: samples_to_duration(job.start),
        duration: samples_to_duration(packets.len() as u64 * AAC_FRAME_SAMPLES),
        bytes,
        now_playing: job.now_playing.clone(),
        discontinuity: job.discontinuity,
        position: job.position.clone(),
    };
    Ok(select! {
        send(out, EncoderEvent::Segment(segment)) -> sent => sent.is_ok(),
        recv(stop) -> _ => false,
    })
}
