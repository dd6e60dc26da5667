// ipfm operator dashboard. Plain JavaScript, no libraries, nothing from another origin.
//
// The page holds no data of its own: it asks for the API token, keeps it in sessionStorage
// (this tab only, gone when the tab closes), and sends it as a bearer token with every
// /api/v1 call. A 401 at any time signs out and shows the prompt again. While signed in it
// refreshes every few seconds; Skip, Rescan and GC call the API's mutating endpoints.
(function () {
  'use strict';

  var TOKEN_KEY = 'ipfm-admin-token';
  var REFRESH_MS = 5000;
  var LIBRARY_REFRESH_MS = 30000;
  // After Skip / Rescan, how often and how long to look for the outcome.
  var FOLLOW_UP_MS = 1000;
  var FOLLOW_UP_TRIES = 30;
  var CHART_SPAN_MS = 3600 * 1000;
  var SVG_NS = 'http://www.w3.org/2000/svg';

  var token = null;
  var timer = null;
  var libraryLoadedAt = 0;
  var gatewayName = null;

  function $(id) { return document.getElementById(id); }

  function setText(id, value) {
    $(id).textContent = value === null || value === undefined || value === '' ? '—' : String(value);
  }

  function show(id, visible) { $(id).hidden = !visible; }

  // --- the API ---------------------------------------------------------------------------

  function Unauthorized() { this.message = 'The token was refused.'; }

  // A JSON call with the bearer token; rejects with Unauthorized on 401, with the API's own
  // error message on other failures.
  function api(method, path) {
    return fetch(path, {
      method: method,
      cache: 'no-store',
      headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' },
    }).then(function (res) {
      return res.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (res.status === 401) { throw new Unauthorized(); }
        if (!res.ok) {
          throw new Error(body && body.error ? body.error : method + ' ' + path + ': HTTP ' + res.status);
        }
        return body;
      });
    });
  }

  function failed(err) {
    if (err instanceof Unauthorized) {
      signOut('The token was refused: sign in again.');
      return;
    }
    $('notice').textContent = err && err.message ? err.message : String(err);
    show('notice', true);
  }

  // --- formatting ------------------------------------------------------------------------

  function trackText(track) {
    if (!track) { return null; }
    var text = track.title || '(untitled)';
    if (track.artist) { text += ' — ' + track.artist; }
    if (track.kind && track.kind !== 'track') { text += ' (' + track.kind + ')'; }
    return text;
  }

  function bytesText(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
  }

  function durationText(secs) {
    secs = Math.max(0, Math.floor(secs));
    var h = Math.floor(secs / 3600);
    var m = Math.floor(secs / 60) % 60;
    var s = secs % 60;
    return (h ? h + ' h ' : '') + (h || m ? m + ' min ' : '') + s + ' s';
  }

  function whenText(ms) {
    if (!ms) { return null; }
    var ago = (Date.now() - ms) / 1000;
    return new Date(ms).toLocaleTimeString() + ' (' + durationText(ago) + ' ago)';
  }

  // --- panels ----------------------------------------------------------------------------

  function renderStatus(status) {
    setText('station-name', status.station_name || 'ipfm station');
    document.title = (status.station_name || 'ipfm station') + ' · ipfm dashboard';
    setText('peer-id', status.peer_id);
    setText('version', status.version);
    setText('peers', status.peers_connected);
    setText('listeners', status.listeners);
    setText('uptime', durationText(status.uptime_secs || 0));
    setText('segments', status.segments_encoded);
    setText('ipns-name', status.ipns_name);
    setText('root-cid', status.root);
    setText('ipns-sequence', status.ipns_sequence);
    setText('last-publish', whenText(status.last_publish_ms));
    if (status.ipns_name && status.ipns_name !== gatewayName) {
      gatewayName = status.ipns_name;
      $('public-link').href = 'https://ipfs.io/ipns/' + status.ipns_name + '/';
      $('player-link').href = playerUrl(status);
    }
  }

  // The station's own player: on this origin when the API shares the gateway's listener,
  // else on the gateway's address (this page's host name when that one is a wildcard).
  function playerUrl(status) {
    var path = '/ipns/' + status.ipns_name + '/';
    var listen = status.listen || [];
    if (listen.length < 2 || !listen[0]) { return location.origin + path; }
    var gateway = listen[0];
    var port = gateway.slice(gateway.lastIndexOf(':') + 1);
    var host = gateway.slice(0, gateway.lastIndexOf(':'));
    if (host === '0.0.0.0' || host === '[::]') { host = location.hostname; }
    if (host.indexOf(':') >= 0 && host.charAt(0) !== '[') { host = '[' + host + ']'; }
    return location.protocol + '//' + host + ':' + port + path;
  }

  function renderQueue(queue) {
    setText('now-playing', trackText(queue.now_playing));
    setText('up-next', trackText(queue.up_next));
  }

  function renderLibrary(library) {
    var tracks = $('tracks');
    tracks.textContent = '';
    library.tracks.forEach(function (track) {
      var li = document.createElement('li');
      li.className = 'track';
      li.textContent = trackText({ title: track.title, artist: track.artist, kind: 'track' });
      li.title = track.id + ' · ' + durationText(track.duration_secs);
      tracks.appendChild(li);
    });
    var skipped = $('skipped');
    skipped.textContent = '';
    library.skipped.forEach(function (file) {
      var li = document.createElement('li');
      li.className = 'skipped-file';
      var path = document.createElement('span');
      path.className = 'path mono';
      path.textContent = file.path;
      var reason = document.createElement('span');
      reason.className = 'reason';
      reason.textContent = file.reason;
      li.appendChild(path);
      li.appendChild(reason);
      skipped.appendChild(li);
    });
    if (!library.skipped.length) {
      var none = document.createElement('li');
      none.className = 'muted';
      none.textContent = 'none';
      skipped.appendChild(none);
    }
    var summary = library.tracks.length + ' track' + (library.tracks.length === 1 ? '' : 's');
    if (!library.tracks.length) { summary += ' (the built-in demo plays)'; }
    if (library.last_rescan) {
      summary += ' · last rescan ' + whenText(library.last_rescan.at_unix_ms) + ': +' +
        library.last_rescan.added + ' −' + library.last_rescan.removed;
    }
    setText('library-summary', summary);
    libraryLoadedAt = Date.now();
  }

  function renderStorage(storage) {
    setText('blocks', storage.blocks);
    setText('bytes', bytesText(storage.bytes));
    setText('retention', durationText(storage.retention_secs));
    var gc = storage.last_gc;
    setText('last-gc', gc ? whenText(gc.at_ms) + ': removed ' + gc.removed_blocks + ' blocks (' +
      bytesText(gc.removed_bytes) + ')' : 'not yet');
  }

  function svg(name, attributes) {
    var node = document.createElementNS(SVG_NS, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    return node;
  }

  // Two lines over the last hour on a shared axis from 0 to the highest value seen.
  function renderChart(activity) {
    var width = 600;
    var height = 160;
    var pad = { left: 28, right: 8, top: 8, bottom: 18 };
    var samples = activity.samples || [];
    var now = Date.now();
    var start = now - CHART_SPAN_MS;
    var max = 1;
    samples.forEach(function (s) { max = Math.max(max, s.listeners, s.peers); });
    var x = function (ms) {
      var t = Math.min(Math.max(ms, start), now);
      return pad.left + (t - start) / CHART_SPAN_MS * (width - pad.left - pad.right);
    };
    var y = function (v) { return height - pad.bottom - v / max * (height - pad.top - pad.bottom); };

    var chart = svg('svg', {
      viewBox: '0 0 ' + width + ' ' + height,
      role: 'img',
      id: 'activity-chart',
      'data-points': String(samples.length),
      'aria-label': 'Listeners and connected peers over the last hour',
    });
    chart.appendChild(svg('line', { class: 'axis', x1: pad.left, y1: y(0), x2: width - pad.right, y2: y(0) }));
    chart.appendChild(svg('line', { class: 'axis', x1: pad.left, y1: y(max), x2: width - pad.right, y2: y(max) }));
    var top = svg('text', { class: 'label', x: 2, y: y(max) + 4 });
    top.textContent = String(max);
    chart.appendChild(top);
    var zero = svg('text', { class: 'label', x: 2, y: y(0) + 4 });
    zero.textContent = '0';
    chart.appendChild(zero);
    [['−60 min', start, 'start'], ['−30 min', now - CHART_SPAN_MS / 2, 'middle'], ['now', now, 'end']]
      .forEach(function (tick) {
        var label = svg('text', { class: 'label', x: x(tick[1]), y: height - 4, 'text-anchor': tick[2] });
        label.textContent = tick[0];
        chart.appendChild(label);
      });
    ['listeners', 'peers'].forEach(function (series) {
      var points = samples.map(function (s) { return x(s.at_ms).toFixed(1) + ',' + y(s[series]).toFixed(1); });
      chart.appendChild(svg('polyline', { class: 'series ' + series, points: points.join(' ') }));
      var last = samples[samples.length - 1];
      if (last) {
        // A dot at the newest value: visible even while there is only one sample.
        chart.appendChild(svg('circle', { class: series, cx: x(last.at_ms), cy: y(last[series]), r: 3 }));
      }
    });
    var holder = $('chart');
    holder.textContent = '';
    holder.appendChild(chart);
    var newest = samples[samples.length - 1];
    setText('chart-listeners', newest ? '(now ' + newest.listeners + ')' : '');
    setText('chart-peers', newest ? '(now ' + newest.peers + ')' : '');
  }

  // --- refreshing ------------------------------------------------------------------------

  function refresh() {
    var calls = [
      api('GET', '/api/v1/status').then(renderStatus),
      api('GET', '/api/v1/queue').then(renderQueue),
      api('GET', '/api/v1/storage').then(renderStorage),
      api('GET', '/api/v1/activity').then(renderChart),
    ];
    if (Date.now() - libraryLoadedAt >= LIBRARY_REFRESH_MS) {
      calls.push(api('GET', '/api/v1/library').then(renderLibrary));
    }
    return Promise.all(calls).then(function () { show('notice', false); });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (!token) { return; }
      refresh().catch(failed).then(function () { if (token) { schedule(); } });
    }, REFRESH_MS);
  }

  // Calls `check` every FOLLOW_UP_MS until it says done (or gives up), updating `statusId`.
  function followUp(check, statusId, doneText) {
    var tries = 0;
    function step() {
      tries += 1;
      check().then(function (done) {
        if (done) {
          setText(statusId, doneText);
        } else if (tries < FOLLOW_UP_TRIES && token) {
          setTimeout(step, FOLLOW_UP_MS);
        } else {
          setText(statusId, 'requested; not visible yet');
        }
      }).catch(failed);
    }
    setTimeout(step, FOLLOW_UP_MS);
  }

  // Runs the operator action of button `id`: the button stays disabled and `<id>-status`
  // says `busyText` until the promise `action(statusId)` settles; on failure the status is
  // cleared and the error shown (so a second click cannot send the request twice).
  function runAction(id, busyText, action) {
    var statusId = id + '-status';
    $(id).disabled = true;
    setText(statusId, busyText);
    action(statusId).catch(function (err) {
      setText(statusId, '');
      failed(err);
    }).then(function () { $(id).disabled = false; });
  }

  function skip() {
    var before = $('now-playing').textContent + '\n' + $('up-next').textContent;
    runAction('skip', 'skipping…', function (statusId) {
      return api('POST', '/api/v1/skip').then(function () {
        followUp(function () {
          return api('GET', '/api/v1/queue').then(function (queue) {
            renderQueue(queue);
            return $('now-playing').textContent + '\n' + $('up-next').textContent !== before;
          });
        }, statusId, 'skipped');
      });
    });
  }

  function rescan() {
    var before = null;
    runAction('rescan', 'rescanning…', function (statusId) {
      return api('GET', '/api/v1/library').then(function (library) {
        before = library.last_rescan ? library.last_rescan.at_unix_ms : 0;
        return api('POST', '/api/v1/rescan');
      }).then(function () {
        followUp(function () {
          return api('GET', '/api/v1/library').then(function (library) {
            var at = library.last_rescan ? library.last_rescan.at_unix_ms : 0;
            if (at !== before) { renderLibrary(library); }
            return at !== before;
          });
        }, statusId, 'rescanned');
      });
    });
  }

  function collectGarbage() {
    runAction('gc', 'collecting…', function (statusId) {
      return api('POST', '/api/v1/gc').then(function (report) {
        setText(statusId, 'removed ' + report.removed_blocks + ' blocks (' +
          bytesText(report.removed_bytes) + '), kept ' + report.kept_blocks);
        return api('GET', '/api/v1/storage').then(renderStorage);
      });
    });
  }

  // --- signing in and out ----------------------------------------------------------------

  function showDashboard() {
    show('login', false);
    show('dashboard', true);
    show('logout', true);
  }

  function signOut(message) {
    token = null;
    clearTimeout(timer);
    sessionStorage.removeItem(TOKEN_KEY);
    libraryLoadedAt = 0;
    gatewayName = null;
    show('dashboard', false);
    show('logout', false);
    show('login', true);
    $('login-error').textContent = message || '';
    show('login-error', Boolean(message));
    $('token').value = '';
    $('token').focus();
  }

  // Tries `candidate`: a protected call decides whether it is the token.
  function signIn(candidate) {
    token = candidate;
    $('login-submit').disabled = true;
    return api('GET', '/api/v1/queue').then(function () {
      sessionStorage.setItem(TOKEN_KEY, candidate);
      show('login-error', false);
      showDashboard();
      return refresh().catch(failed).then(schedule);
    }, function (err) {
      signOut(err instanceof Unauthorized
        ? 'The token was refused: check it and try again.'
        : 'Cannot reach the station: ' + (err && err.message ? err.message : String(err)));
    }).then(function () { $('login-submit').disabled = false; });
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('login-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var candidate = $('token').value.trim();
      if (candidate) { signIn(candidate); }
    });
    $('logout').addEventListener('click', function () { signOut(''); });
    $('skip').addEventListener('click', skip);
    $('rescan').addEventListener('click', rescan);
    $('gc').addEventListener('click', collectGarbage);
    var stored = sessionStorage.getItem(TOKEN_KEY);
    if (stored) {
      signIn(stored);
    } else {
      signOut('');
    }
  });
}());
