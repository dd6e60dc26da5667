// ipfm web player: plays the station's HLS stream (hls.js, or the browser's own HLS where
// there is no Media Source Extensions) and shows what is playing.
//
// Every URL is relative to the page, so the same files work under /ipfs/<cid>/,
// /ipns/<name>/ and <name>.ipns.<gateway>/.
(function () {
  'use strict';

  var MASTER = 'master.m3u8';
  var NOWPLAYING = 'nowplaying.json';
  // A new root is published every segment (~2-6 s); polling faster gains nothing.
  var POLL_MS = 5000;
  var FETCH_TIMEOUT_MS = 10000;
  // Fatal network errors are retried this often (a gateway resolving IPNS can be slow)
  // before the page gives up and shows the error with a "Try again" button.
  var MAX_NETWORK_RETRIES = 5;
  var MAX_HISTORY = 50;

  var $ = function (id) { return document.getElementById(id); };
  var audio = $('audio');
  var playButton = $('play');
  var playLabel = $('play-label');
  var volume = $('volume');
  var quality = $('quality');
  var statusLine = $('status');
  var errorBox = $('error');

  var hls = null;
  var loadStarted = false; // hls.js fetches segments only once the listener presses Play
  var networkRetries = 0;
  var stationName = 'ipfm station';
  var lastNowPlaying = null; // the latest nowplaying.json
  var id3Now = null; // {title, artist, album} from the stream's timed ID3, when it has any

  // ------------------------------------------------------------------ status and errors

  function setStatus(text) {
    statusLine.textContent = text;
  }

  function showError(text) {
    $('error-text').textContent = text;
    errorBox.hidden = false;
    playButton.disabled = true; // nothing to play until "Try again" starts over
    setStatus('Stopped.');
    updatePlayButton();
  }

  function clearError() {
    errorBox.hidden = true;
  }

  // ------------------------------------------------------------------ playback

  function hasMse() {
    return typeof Hls !== 'undefined' && Hls.isSupported();
  }

  function canPlayNatively() {
    return audio.canPlayType('application/vnd.apple.mpegurl') !== '';
  }

  // hls.js when the browser has MSE (rendition choice, same behaviour everywhere); the
  // browser's own HLS otherwise (Safari on older iPhones); else an explanation.
  function startEngine() {
    clearError();
    networkRetries = 0;
    if (hls) {
      hls.destroy();
      hls = null;
    }
    loadStarted = false;
    if (hasMse()) {
      startHlsJs();
    } else if (canPlayNatively()) {
      audio.src = MASTER;
      quality.disabled = true;
      setStatus('Ready.');
      playButton.disabled = false;
    } else {
      showError('This browser cannot play HLS audio (no Media Source Extensions and no ' +
        'native HLS). Open master.m3u8 in an HLS-capable player instead.');
    }
  }

  function startHlsJs() {
    hls = new Hls({
      // Fetch the playlists now (for the quality menu), segments only when Play is pressed:
      // an idle tab costs the gateway nothing.
      autoStartLoad: false,
      // Live radio: stay near the live edge, but not so close that a slow gateway stalls us.
      liveSyncDurationCount: 3,
      enableWorker: true,
      // The page may be paused for a while; do not buffer more than needed.
      maxBufferLength: 30,
    });
    hls.on(Hls.Events.MANIFEST_PARSED, function (_event, data) {
      fillQualityMenu(data.levels);
      setStatus('Ready.');
      playButton.disabled = false;
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, function () {
      labelAutoOption();
    });
    hls.on(Hls.Events.FRAG_LOADED, function () {
      networkRetries = 0;
    });
    hls.on(Hls.Events.ERROR, function (_event, data) {
      if (!data.fatal) {
        return;
      }
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR && networkRetries < MAX_NETWORK_RETRIES) {
        networkRetries += 1;
        setStatus('Connection problem (' + describe(data) + '), retrying…');
        var manifestFailed = /^manifest/i.test(String(data.details));
        var instance = hls;
        setTimeout(function () {
          if (hls !== instance) {
            return; // destroyed or replaced ("Try again") meanwhile
          } else if (manifestFailed) {
            hls.loadSource(MASTER); // never loaded: start over
          } else if (loadStarted) {
            hls.startLoad();
          }
        }, 1000 * networkRetries);
      } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && networkRetries < MAX_NETWORK_RETRIES) {
        networkRetries += 1;
        setStatus('Decoding problem, recovering…');
        hls.recoverMediaError();
      } else {
        hls.destroy();
        hls = null;
        showError('The stream cannot be played: ' + describe(data) + '.');
      }
    });
    hls.loadSource(MASTER);
    hls.attachMedia(audio);
  }

  function describe(data) {
    var what = data.details || data.type || 'unknown error';
    if (data.response && data.response.code) {
      what += ', HTTP ' + data.response.code;
    }
    return what;
  }

  // "lofi.m3u8" → "lofi"; the station's renditions are named by their playlist files.
  function levelName(level, index) {
    if (level.name) {
      return level.name;
    }
    var url = String(level.url || level.uri || '');
    var base = url.split('?')[0].split('/').pop().replace(/\.m3u8$/i, '');
    return base || 'level ' + (index + 1);
  }

  function fillQualityMenu(levels) {
    while (quality.options.length > 1) {
      quality.remove(1);
    }
    levels.forEach(function (level, index) {
      var option = document.createElement('option');
      option.value = String(index);
      var kbps = level.bitrate ? ' · ' + Math.round(level.bitrate / 1000) + ' kbit/s' : '';
      option.textContent = levelName(level, index) + kbps;
      quality.appendChild(option);
    });
    quality.value = '-1';
    quality.disabled = levels.length < 2;
    labelAutoOption();
  }

  // Show which rendition "Auto" picked, e.g. "Auto (midfi)".
  function labelAutoOption() {
    var auto = quality.options[0];
    if (hls && hls.autoLevelEnabled && hls.currentLevel >= 0 && hls.levels[hls.currentLevel]) {
      auto.textContent = 'Auto (' + levelName(hls.levels[hls.currentLevel], hls.currentLevel) + ')';
    } else {
      auto.textContent = 'Auto';
    }
  }

  quality.addEventListener('change', function () {
    if (!hls) {
      return;
    }
    // nextLevel switches at the next fragment: no gap in the audio, unlike currentLevel.
    hls.nextLevel = parseInt(quality.value, 10);
    labelAutoOption();
  });

  // Native HLS reports a live stream's duration as Infinity; hls.js knows from the playlist.
  function isLive() {
    if (hls) {
      var level = hls.levels[hls.currentLevel];
      return !!(level && level.details && level.details.live);
    }
    return audio.duration === Infinity;
  }

  function updatePlayButton() {
    var playing = !audio.paused && !audio.ended;
    playLabel.textContent = playing ? 'Pause' : 'Play';
    playButton.setAttribute('aria-label', playing ? 'Pause' : 'Play');
    playButton.classList.toggle('playing', playing);
  }

  playButton.addEventListener('click', function () {
    if (!audio.paused) {
      audio.pause();
      return;
    }
    if (hls && !loadStarted) {
      loadStarted = true;
      hls.startLoad(); // live: at the live edge; on demand: from the start
    } else if (hls && hls.liveSyncPosition && audio.currentTime < hls.liveSyncPosition - 30) {
      // After a long pause the buffered position has left the live window: rejoin it.
      audio.currentTime = hls.liveSyncPosition;
    }
    var attempt = audio.play();
    if (attempt && attempt.catch) {
      attempt.catch(function (err) {
        setStatus('Playback did not start (' + err.name + '): press Play again.');
      });
    }
  });

  audio.addEventListener('play', updatePlayButton);
  audio.addEventListener('pause', function () { updatePlayButton(); setStatus('Paused.'); });
  audio.addEventListener('playing', function () {
    clearError();
    setStatus(isLive() ? 'Playing live.' : 'Playing.');
  });
  audio.addEventListener('waiting', function () { setStatus('Buffering…'); });
  audio.addEventListener('ended', function () { updatePlayButton(); setStatus('The stream ended.'); });
  audio.addEventListener('error', function () {
    // hls.js reports its own errors; this is the native-HLS path (or a broken element).
    if (!hls && audio.error) {
      showError('The stream cannot be played (media error ' + audio.error.code + ').');
    }
  });

  $('retry').addEventListener('click', function () {
    startEngine();
  });

  // ------------------------------------------------------------------ volume

  function loadVolume() {
    try {
      var saved = parseFloat(localStorage.getItem('ipfm.volume'));
      if (saved >= 0 && saved <= 1) {
        volume.value = String(saved);
      }
    } catch (_e) { /* storage blocked: keep the default */ }
    audio.volume = parseFloat(volume.value);
  }

  volume.addEventListener('input', function () {
    audio.volume = parseFloat(volume.value);
    try {
      localStorage.setItem('ipfm.volume', volume.value);
    } catch (_e) { /* storage blocked: nothing to remember it in */ }
  });

  // ------------------------------------------------------------------ now playing

  function trackText(track) {
    if (!track || !track.title) {
      return '—';
    }
    return track.artist ? track.title + ' — ' + track.artist : track.title;
  }

  // Same title and artist, and (when both say) the same start on the stream timeline: a
  // song played again later, or the looping demo, is another entry.
  function sameTrack(a, b) {
    if (!a || !b || a.title !== b.title || (a.artist || '') !== (b.artist || '')) {
      return false;
    }
    var x = a.track_start_secs;
    var y = b.track_start_secs;
    return typeof x !== 'number' || typeof y !== 'number' || Math.abs(x - y) < 0.5;
  }

  // What is heard: the stream's own ID3 frames when it carries them (they follow the audio,
  // which runs behind the encoder), else nowplaying.json's "now".
  function render() {
    var np = lastNowPlaying || {};
    var now = id3Now || np.now || null;
    $('now-title').textContent = trackText(now);
    var detail = [];
    if (now && now.album) {
      detail.push(now.album);
    }
    if (now && now.kind && now.kind !== 'track' && now.kind !== 'music') {
      detail.push(now.kind);
    }
    $('now-detail').textContent = detail.join(' · ');
    // The encoder runs ahead of what is heard: name what nowplaying.json already announces.
    var coming = id3Now && np.now && np.now.title && !sameTrack(np.now, id3Now) ? np.now : null;
    $('now-next').textContent = coming ? 'Coming up: ' + trackText(coming) : '';
    $('now-next').hidden = !coming;
    document.title = now && now.title ? trackText(now) + ' · ' + stationName : stationName;

    var list = $('history');
    list.textContent = '';
    var history = Array.isArray(np.history) ? np.history : [];
    var shown = 0;
    for (var i = 0; i < history.length && shown < MAX_HISTORY; i++) {
      var entry = history[i];
      if (!entry || !entry.title || sameTrack(entry, now) || sameTrack(entry, np.now)) {
        continue;
      }
      var item = document.createElement('li');
      item.textContent = trackText(entry);
      if (entry.kind && entry.kind !== 'track' && entry.kind !== 'music') {
        var tag = document.createElement('span');
        tag.className = 'tag';
        tag.textContent = entry.kind;
        item.appendChild(document.createTextNode(' ')); // read as "Station ID jingle"
        item.appendChild(tag);
      }
      list.appendChild(item);
      shown += 1;
    }
    $('history-empty').hidden = shown > 0;
  }

  function renderStation(station) {
    if (!station) {
      return;
    }
    if (typeof station.name === 'string' && station.name.trim()) {
      stationName = station.name.trim();
    }
    $('station-name').textContent = stationName;
    var ipns = $('station-ipns');
    if (typeof station.ipns === 'string' && station.ipns) {
      ipns.textContent = '/ipns/' + station.ipns;
      ipns.title = 'The station\'s IPNS name: open it through any IPFS gateway';
      ipns.hidden = false;
    }
  }

  function fetchJson(url) {
    var controller = typeof AbortController !== 'undefined' ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) { controller.abort(); } }, FETCH_TIMEOUT_MS);
    return fetch(url, { cache: 'no-store', signal: controller ? controller.signal : undefined })
      .then(function (response) {
        if (!response.ok) {
          throw new Error('HTTP ' + response.status);
        }
        return response.json();
      })
      .finally(function () { clearTimeout(timer); });
  }

  var polling = false;
  var pollFailures = 0; // an on-demand render has no nowplaying.json: ask less often
  function pollNowPlaying() {
    if (polling) {
      return;
    }
    polling = true;
    fetchJson(NOWPLAYING)
      .then(function (np) {
        if (np && typeof np === 'object') {
          lastNowPlaying = np;
          renderStation(np.station);
          render();
        }
        pollFailures = 0;
        $('now-heading').textContent = 'Now playing';
      })
      .catch(function () {
        // Not fatal: the audio may well be fine. Say so quietly and keep polling, slower.
        pollFailures += 1;
        $('now-heading').textContent = 'Now playing (track info unavailable)';
      })
      .finally(function () {
        polling = false;
      });
  }

  // hls.js exposes the stream's timed ID3 as cues on a "metadata" text track, each cue's
  // value a frame such as {key: 'TIT2', data: 'Title'}.
  function watchId3(track) {
    if (track.kind !== 'metadata') {
      return;
    }
    track.mode = 'hidden';
    track.addEventListener('cuechange', function () {
      var cues = track.activeCues || [];
      var frames = {};
      for (var i = 0; i < cues.length; i++) {
        var value = cues[i].value;
        if (value && typeof value.key === 'string' && typeof value.data === 'string') {
          // TXXX frames are told apart by their description, e.g. "TXXX:ipfm:kind".
          var key = value.key === 'TXXX' && value.info ? 'TXXX:' + value.info : value.key;
          frames[key] = value.data;
        }
      }
      if (!frames.TIT2) {
        return;
      }
      var start = parseFloat(frames['TXXX:ipfm:track_start']);
      var next = {
        title: frames.TIT2,
        artist: frames.TPE1 || '',
        album: frames.TALB || '',
        kind: frames['TXXX:ipfm:kind'] || '',
        track_start_secs: isFinite(start) ? start : null,
      };
      if (!sameTrack(next, id3Now)) {
        id3Now = next;
        render();
        pollNowPlaying(); // the history has moved on too
      }
    });
  }

  if (audio.textTracks && audio.textTracks.addEventListener) {
    audio.textTracks.addEventListener('addtrack', function (event) { watchId3(event.track); });
  }

  // ------------------------------------------------------------------ start

  loadVolume();
  updatePlayButton();
  render();
  pollNowPlaying();
  var ticks = 0;
  setInterval(function () {
    ticks += 1;
    if (!document.hidden && (pollFailures === 0 || ticks % 6 === 0)) {
      pollNowPlaying();
    }
  }, POLL_MS);
  startEngine();
})();
