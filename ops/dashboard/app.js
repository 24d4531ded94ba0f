/*
 * app.js - the intygsgw dashboard. Polls /api/v1/summary, /metrics (Prometheus text, parsed
 * here), /api/v1/rejections and /api/v1/stats/... on the admin listener that serves this
 * page, and draws with Chart.js (vendor/chart.js). Requests go to this origin only.
 *
 * URL parameters: view=traffic|queue|rejections|counties|followup; poll_ms (100..60000);
 * report, unit, from, to, as_of (the follow-up view's form); test=1 writes what the charts
 * plot, as JSON, into <pre id="plotted"> after every poll (data-polls counts them), so that a
 * headless browser can compare it with the API's own numbers.
 */
'use strict';

(function () {
        const Q = new URLSearchParams(location.search);
        const TEST = Q.get('test') === '1';
        const POLL_MS = Math.min(60000, Math.max(100, parseInt(Q.get('poll_ms'), 10) || (TEST ? 250 : 2000)));
        const STATS_EVERY_MS = 30000; /* statistics reports are heavier: refreshed less often */
        const HISTORY = 120; /* points kept per time-series chart */
        const MAX_METRICS_LINES = 20000; /* bound on the parsed /metrics text */
        const VIEWS = ['traffic', 'queue', 'rejections', 'counties', 'followup'];
        const OUTCOMES = ['accepted', 'rejected', 'refused', 'duplicate', 'conflict', 'error'];
        const COLORS = {
                accepted: '#2e7d32', rejected: '#c62828', refused: '#ef6c00', duplicate: '#1565c0',
                conflict: '#6a1b9a', error: '#424242', queued: '#1565c0', inflight: '#00838f',
                delivered: '#2e7d32', dead: '#c62828', unit: '#1565c0', county: '#ef6c00',
                country: '#616161',
        };
        const PALETTE = ['#1565c0', '#c62828', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f',
                         '#ad1457', '#4e342e', '#9e9d24', '#424242'];
        /* Län codes (SCB); a code not here is shown as it is. */
        const COUNTIES = {
                '01': 'Stockholms län', '03': 'Uppsala län', '04': 'Södermanlands län',
                '05': 'Östergötlands län', '06': 'Jönköpings län', '07': 'Kronobergs län',
                '08': 'Kalmar län', '09': 'Gotlands län', '10': 'Blekinge län', '12': 'Skåne län',
                '13': 'Hallands län', '14': 'Västra Götalands län', '17': 'Värmlands län',
                '18': 'Örebro län', '19': 'Västmanlands län', '20': 'Dalarnas län',
                '21': 'Gävleborgs län', '22': 'Västernorrlands län', '23': 'Jämtlands län',
                '24': 'Västerbottens län', '25': 'Norrbottens län',
        };

        let view = VIEWS.includes(Q.get('view')) ? Q.get('view') : 'traffic';
        const charts = {}; /* canvas id -> Chart */
        const series = []; /* {t: server uptime s, totals: {outcome: n}, queue: {state: n}} */
        let last = null; /* {summary, prom, rejections} of the latest poll */
        let stats = null; /* {query, data} of the latest statistics report */
        let statsAt = 0;
        let polls = 0;
        const errors = [];

        function noteError(msg) {
                if (errors.length < 50)
                        errors.push(String(msg));
                const s = document.getElementById('status');
                s.textContent = String(msg);
                s.classList.add('bad');
        }
        window.addEventListener('error', (e) => noteError('script error: ' + e.message));
        document.addEventListener('securitypolicyviolation',
                                  (e) => noteError('blocked by the page policy: ' + e.blockedURI));

        /* ---- Prometheus text format ---- */

        /* [{name, labels: {k: v}, value}]; lines it cannot read are skipped. */
        function parseProm(text) {
                const out = [];
                const lines = text.split('\n');
                const n = Math.min(lines.length, MAX_METRICS_LINES);
                for (let k = 0; k < n; k++) {
                        const line = lines[k].trim();
                        if (!line || line[0] === '#')
                                continue;
                        const m = /^([A-Za-z_:][A-Za-z0-9_:]*)/.exec(line);
                        if (!m)
                                continue;
                        let i = m[1].length;
                        const labels = {};
                        let ok = true;
                        if (line[i] === '{') {
                                i++;
                                for (;;) {
                                        while (line[i] === ' ' || line[i] === ',')
                                                i++;
                                        if (line[i] === '}') {
                                                i++;
                                                break;
                                        }
                                        const km = /^([A-Za-z_][A-Za-z0-9_]*)="/.exec(line.slice(i));
                                        if (!km) {
                                                ok = false;
                                                break;
                                        }
                                        i += km[0].length;
                                        let v = '';
                                        while (i < line.length && line[i] !== '"') {
                                                if (line[i] === '\\' && i + 1 < line.length) {
                                                        v += line[i + 1] === 'n' ? '\n' : line[i + 1];
                                                        i += 2;
                                                } else {
                                                        v += line[i++];
                                                }
                                        }
                                        if (line[i] !== '"') {
                                                ok = false;
                                                break;
                                        }
                                        i++;
                                        labels[km[1]] = v;
                                }
                        }
                        if (!ok)
                                continue;
                        const vs = line.slice(i).trim().split(/\s+/)[0];
                        const value = vs === '+Inf' ? Infinity : vs === '-Inf' ? -Infinity : Number(vs);
                        if (vs === '' || (Number.isNaN(value) && vs !== 'NaN'))
                                continue;
                        out.push({name: m[1], labels, value});
                }
                return out;
        }

        function matches(s, name, filter) {
                if (s.name !== name)
                        return false;
                for (const k in filter)
                        if (s.labels[k] !== filter[k])
                                return false;
                return true;
        }

        function sumOf(prom, name, filter) {
                let n = 0;
                for (const s of prom)
                        if (matches(s, name, filter || {}))
                                n += s.value;
                return n;
        }

        /* {labelValue: sum} over the samples of name, grouped by one label. */
        function groupBy(prom, name, key, filter) {
                const g = {};
                for (const s of prom)
                        if (matches(s, name, filter || {}) && key in s.labels)
                                g[s.labels[key]] = (g[s.labels[key]] || 0) + s.value;
                return g;
        }

        /* The gateway's own quantile rule (metrics.c histogram_quantile, as PromQL's): find
         * the bucket holding the q-th observation and interpolate linearly inside it; the +Inf
         * bucket answers the last finite bound. Milliseconds; 0 without observations. */
        function quantileMs(prom, base, q) {
                const buckets = prom.filter((s) => s.name === base + '_bucket')
                                    .map((s) => ({le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), cum: s.value}))
                                    .sort((a, b) => a.le - b.le);
                const count = sumOf(prom, base + '_count');
                if (!count || !buckets.length)
                        return 0;
                const finite = buckets.filter((b) => Number.isFinite(b.le));
                const lastFinite = finite.length ? finite[finite.length - 1].le : 0;
                const want = q * count;
                let acc = 0;
                for (let i = 0; i < buckets.length; i++) {
                        const n = buckets[i].cum - acc; /* this bucket's own count */
                        if (n <= 0)
                                continue;
                        if (acc + n >= want) {
                                if (!Number.isFinite(buckets[i].le))
                                        return lastFinite * 1000;
                                const lo = i ? buckets[i - 1].le : 0, hi = buckets[i].le;
                                const frac = Math.min(1, Math.max(0, (want - acc) / n));
                                return (lo + (hi - lo) * frac) * 1000;
                        }
                        acc += n;
                }
                return lastFinite * 1000;
        }

        /* ---- fetching ---- */

        async function getJSON(path) {
                const r = await fetch(path, {cache: 'no-store'});
                const body = await r.text();
                let j = null;
                try {
                        j = JSON.parse(body);
                } catch (e) {
                        throw new Error(path + ': HTTP ' + r.status + ', not JSON');
                }
                if (!r.ok)
                        throw new Error(path + ': HTTP ' + r.status + ': ' + (j && j.error ? j.error : ''));
                return j;
        }

        async function getText(path) {
                const r = await fetch(path, {cache: 'no-store'});
                if (!r.ok)
                        throw new Error(path + ': HTTP ' + r.status);
                return r.text();
        }

        /* ---- charts ---- */

        function baseOptions(extra) {
                const o = {
                        responsive: true,
                        maintainAspectRatio: false,
                        animation: TEST ? false : {duration: 250},
                        plugins: {legend: {position: 'bottom'}},
                        scales: {y: {beginAtZero: true}},
                };
                return Object.assign(o, extra || {});
        }

        /* Draws "suppressed" where a bar's value was withheld by disclosure control. */
        const suppressedPlugin = {
                id: 'suppressed',
                afterDatasetsDraw(chart) {
                        const ctx = chart.ctx;
                        chart.data.datasets.forEach((ds, di) => {
                                if (!ds.suppressed || !chart.isDatasetVisible(di))
                                        return;
                                const meta = chart.getDatasetMeta(di);
                                ds.suppressed.forEach((sup, i) => {
                                        const el = meta.data[i];
                                        if (!sup || !el)
                                                return;
                                        const y = chart.scales.y.getPixelForValue(0);
                                        ctx.save();
                                        ctx.translate(el.x, y - 4);
                                        ctx.rotate(-Math.PI / 2);
                                        ctx.fillStyle = '#7b1fa2';
                                        ctx.font = 'italic 11px sans-serif';
                                        ctx.fillText('suppressed', 0, 4);
                                        ctx.restore();
                                });
                        });
                },
        };

        function ensureChart(id, type, datasets, options) {
                if (charts[id])
                        return charts[id];
                const canvas = document.getElementById(id);
                charts[id] = new Chart(canvas, {
                        type,
                        data: {labels: [], datasets},
                        options: baseOptions(options),
                        plugins: [suppressedPlugin],
                });
                return charts[id];
        }

        function line(label, color) {
                return {label, data: [], borderColor: color, backgroundColor: color, tension: 0,
                        pointRadius: 2, fill: false};
        }

        function bar(label, color) {
                return {label, data: [], backgroundColor: color, borderColor: color};
        }

        function fmtTime(s) {
                const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
                return (h ? h + 'h' : '') + String(m).padStart(h ? 2 : 1, '0') + 'm' +
                       String(sec).padStart(2, '0') + 's';
        }

        function setText(id, v) {
                const el = document.getElementById(id);
                if (el)
                        el.textContent = String(v);
        }

        function renderTraffic() {
                const s = last.summary;
                for (const o of OUTCOMES)
                        setText('t-' + o, s.intyg[o]);
                setText('t-connections', s.connections_open);
                const tp = ensureChart('c-throughput', 'line',
                                       ['accepted', 'rejected', 'refused', 'duplicate'].map((o) => line(o, COLORS[o])),
                                       {scales: {y: {beginAtZero: true, title: {display: true, text: 'per second'}}}});
                /* Rates between consecutive polls, on the gateway's own clock (uptime). */
                const labels = [];
                const rates = tp.data.datasets.map(() => []);
                for (let i = 1; i < series.length; i++) {
                        const a = series[i - 1], b = series[i];
                        const dt = b.t - a.t;
                        if (dt <= 0)
                                continue;
                        labels.push(fmtTime(b.t));
                        tp.data.datasets.forEach((ds, k) => {
                                rates[k].push((b.totals[ds.label] - a.totals[ds.label]) / dt);
                        });
                }
                tp.data.labels = labels;
                tp.data.datasets.forEach((ds, k) => (ds.data = rates[k]));
                tp.update();
                const lat = ensureChart('c-latency', 'bar',
                                        [bar('p50', '#1565c0'), bar('p99', '#c62828')],
                                        {scales: {y: {beginAtZero: true, title: {display: true, text: 'ms'}}}});
                const kinds = [['answer to caller', 'intygsgw_ack_latency_seconds'],
                               ['OK to FK delivered', 'intygsgw_delivery_latency_seconds'],
                               ['one FK request', 'intygsgw_fk_roundtrip_seconds'],
                               ['validation', 'intygsgw_validation_seconds']];
                lat.data.labels = kinds.map((k) => k[0]);
                lat.data.datasets[0].data = kinds.map((k) => quantileMs(last.prom, k[1], 0.5));
                lat.data.datasets[1].data = kinds.map((k) => quantileMs(last.prom, k[1], 0.99));
                lat.update();
        }

        const BREAKER = {0: 'closed', 1: 'open', 2: 'half-open'};

        function renderQueue() {
                const p = last.prom;
                const q = ensureChart('c-queue', 'line',
                                      ['queued', 'inflight', 'dead'].map((st) => line(st, COLORS[st])));
                q.data.labels = series.map((h) => fmtTime(h.t));
                q.data.datasets.forEach((ds) => (ds.data = series.map((h) => h.queue[ds.label])));
                q.update();
                setText('t-queued', sumOf(p, 'intygsgw_outbox_records', {state: 'queued'}));
                setText('t-inflight', sumOf(p, 'intygsgw_outbox_records', {state: 'inflight'}));
                setText('t-delivered', sumOf(p, 'intygsgw_outbox_records', {state: 'delivered'}));
                setText('t-dead', sumOf(p, 'intygsgw_dead_letters'));
                setText('t-oldest', sumOf(p, 'intygsgw_outbox_oldest_queued_seconds').toFixed(1) + ' s');
                setText('t-breaker', BREAKER[sumOf(p, 'intygsgw_forward_breaker_state')] || '?');
                const f = ensureChart('c-forward', 'bar', [bar('attempts', '#00838f')],
                                      {plugins: {legend: {display: false}}});
                const g = groupBy(p, 'intygsgw_forward_attempts_total', 'outcome');
                const keys = Object.keys(g).sort();
                f.data.labels = keys;
                f.data.datasets[0].data = keys.map((k) => g[k]);
                f.data.datasets[0].backgroundColor = keys.map((k) => (k.startsWith('delivered') ? COLORS.delivered : k.startsWith('dead') || k === 'rejected' ? COLORS.dead : '#ef6c00'));
                f.update();
        }

        function fillTable(tableId, rows) {
                const tb = document.querySelector('#' + tableId + ' tbody');
                tb.textContent = '';
                for (const r of rows) {
                        const tr = document.createElement('tr');
                        for (const c of r) {
                                const td = document.createElement('td');
                                if (c && typeof c === 'object') {
                                        td.textContent = c.text;
                                        if (c.cls)
                                                td.className = c.cls;
                                } else {
                                        td.textContent = c === undefined || c === null ? '' : String(c);
                                }
                                tr.appendChild(td);
                        }
                        tb.appendChild(tr);
                }
        }

        function renderRejections() {
                const p = last.prom;
                const r = ensureChart('c-rules', 'bar', [bar('failed checks', COLORS.rejected)],
                                      {indexAxis: 'y', plugins: {legend: {display: false}},
                                       scales: {x: {beginAtZero: true}}});
                const rules = {};
                for (const s of p)
                        if (s.name === 'intygsgw_rejections_total' && 'rule' in s.labels) {
                                const k = s.labels.rule + ' (' + (s.labels.family || '?') + ')';
                                rules[k] = (rules[k] || 0) + s.value;
                        }
                const keys = Object.keys(rules).sort((a, b) => rules[b] - rules[a] || (a < b ? -1 : 1));
                r.data.labels = keys;
                r.data.datasets[0].data = keys.map((k) => rules[k]);
                r.update();
                const t = ensureChart('c-tls', 'bar', [bar('handshake failures', COLORS.refused)],
                                      {plugins: {legend: {display: false}}});
                const g = groupBy(p, 'intygsgw_tls_handshake_failures_total', 'reason');
                const reasons = Object.keys(g).sort();
                t.data.labels = reasons;
                t.data.datasets[0].data = reasons.map((k) => g[k]);
                t.update();
                const rj = last.rejections || {total: 0, recent: []};
                setText('rej-total', '(' + rj.total + ' since start; the latest ' + rj.recent.length + ')');
                fillTable('rej-table', rj.recent.map((x) => [x.at, x.caller, x.intyg, x.rule, x.message]));
        }

        function countyName(c) {
                return c + ' ' + (COUNTIES[c] || '');
        }

        function renderCounties() {
                const p = last.prom;
                const by = {}; /* county -> outcome -> n */
                for (const s of p)
                        if (s.name === 'intygsgw_intyg_by_county_total' && 'county' in s.labels) {
                                const c = s.labels.county, o = s.labels.outcome;
                                by[c] = by[c] || {};
                                by[c][o] = (by[c][o] || 0) + s.value;
                        }
                const counties = Object.keys(by).sort();
                const ch = ensureChart('c-counties', 'bar',
                                       OUTCOMES.map((o) => bar(o, COLORS[o])),
                                       {scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}}});
                ch.data.labels = counties.map(countyName);
                ch.data.datasets.forEach((ds) => (ds.data = counties.map((c) => by[c][ds.label] || 0)));
                ch.update();
                const callers = {};
                for (const s of p)
                        if (s.name === 'intygsgw_intyg_by_caller_total' && 'caller' in s.labels) {
                                const c = (callers[s.labels.caller] = callers[s.labels.caller] || {});
                                c[s.labels.outcome] = (c[s.labels.outcome] || 0) + s.value;
                        }
                fillTable('caller-table', Object.keys(callers).sort().map((k) => {
                        const c = callers[k];
                        const other = Object.keys(c).filter((o) => !['accepted', 'rejected', 'refused', 'duplicate'].includes(o))
                                          .reduce((a, o) => a + c[o], 0);
                        return [k, c.accepted || 0, c.rejected || 0, c.refused || 0, c.duplicate || 0, other];
                }));
        }

        /* ---- follow-up statistics ---- */

        function pad2(n) {
                return String(n).padStart(2, '0');
        }

        function statsQuery() {
                const now = new Date();
                const to = now.getUTCFullYear() + '-' + pad2(now.getUTCMonth() + 1);
                const a = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 11, 1));
                const from = a.getUTCFullYear() + '-' + pad2(a.getUTCMonth() + 1);
                const v = (id) => document.getElementById(id).value.trim();
                return {
                        report: v('f-report') || 'sjukfall',
                        unit: v('f-unit'),
                        from: v('f-from') || from,
                        to: v('f-to') || to,
                        as_of: v('f-asof'),
                };
        }

        function statsPath(q) {
                const p = new URLSearchParams();
                if (q.unit) {
                        p.set('level', 'unit');
                        p.set('id', q.unit);
                        p.set('side_by_side', '1');
                } else {
                        p.set('level', 'country');
                }
                p.set('from', q.from);
                p.set('to', q.to);
                if (q.as_of)
                        p.set('as_of', q.as_of);
                p.set('format', 'json');
                return '/api/v1/stats/' + encodeURIComponent(q.report) + '?' + p.toString();
        }

        async function loadReportList() {
                const sel = document.getElementById('f-report');
                if (sel.options.length)
                        return;
                let list;
                try {
                        list = await getJSON('/api/v1/stats/list');
                } catch (e) {
                        noteError('statistics: ' + e.message);
                        return;
                }
                for (const r of list.reports) {
                        const o = document.createElement('option');
                        o.value = r.name;
                        o.textContent = r.title + ' (' + r.name + ')';
                        sel.appendChild(o);
                }
                if (Q.get('report'))
                        sel.value = Q.get('report');
        }

        async function fetchStats() {
                const q = statsQuery();
                const data = await getJSON(statsPath(q));
                stats = {query: q, data};
                statsAt = Date.now();
        }

        /* A cell as shown in the table: suppressed cells say so, never 0. */
        function cellText(c, share) {
                if (c === null || c === undefined)
                        return {text: '-', cls: 'na'};
                if (c.suppressed)
                        return {text: 'suppressed', cls: 'suppressed'};
                const v = share ? c.per_100.toFixed(1) : String(c.n);
                /* a partial count is a lower bound; a share of partial counts is approximate */
                return {text: (c.partial ? (share ? '≈ ' : '≥ ') : '') + v, cls: c.partial ? 'partial' : ''};
        }

        function cellValue(c, share) {
                if (!c || c.suppressed)
                        return null;
                return share ? c.per_100 : c.n;
        }

        function renderFollowup() {
                const nChart = ensureChart('c-stats-n', 'bar', []);
                const sChart = ensureChart('c-stats-share', 'bar', []);
                const thead = document.querySelector('#stats-table thead');
                if (!stats) {
                        setText('stats-title', 'no report yet');
                        return;
                }
                const d = stats.data;
                const side = d.columns.includes('enhet');
                const cm = /county (\d+)/.exec(d.scope || '');
                const county = cm ? cm[1] : '';
                /* levels: [label, count column, share column, colour] */
                const levels = side
                                       ? [['Unit ' + stats.query.unit, 'enhet', 'enhet_per_100', COLORS.unit],
                                          ['Region ' + countyName(county).trim(), 'region', 'region_per_100', COLORS.county],
                                          ['Country', 'riket', 'riket_per_100', COLORS.country]]
                                       : [['Country', 'totalt', null, COLORS.country]];
                /* One bar group per (period, group) of the "totalt" rows. */
                const rows = d.rows.filter((r) => !side || r.sex === 'totalt');
                const periods = new Set(rows.map((r) => r.period));
                const labels = rows.map((r) => (periods.size > 1 ? r.period + ' ' : '') + r.group);
                setText('stats-title', d.title + ' · ' + d.level + ' ' + d.scope + ' · ' + d.from + '..' +
                                       d.to + (d.as_of ? ' as of ' + d.as_of : '') + ' · cutoff ' + d.cutoff);
                nChart.data.labels = labels;
                nChart.data.datasets = levels.map((l) => Object.assign(bar(l[0], l[3]), {
                        data: rows.map((r) => cellValue(r.cells[l[1]], false)),
                        suppressed: rows.map((r) => !!(r.cells[l[1]] && r.cells[l[1]].suppressed)),
                }));
                nChart.update();
                sChart.data.labels = side ? labels : [];
                sChart.data.datasets = side ? levels.map((l) => Object.assign(bar(l[0], l[3]), {
                        data: rows.map((r) => cellValue(r.cells[l[2]], true)),
                        suppressed: rows.map((r) => !!(r.cells[l[2]] && r.cells[l[2]].suppressed)),
                }))
                                            : [];
                sChart.update();
                /* The table has every row (women, men, total) and both numbers. */
                thead.textContent = '';
                const htr = document.createElement('tr');
                const heads = ['period', 'group'].concat(side ? ['sex'] : []);
                for (const l of levels) {
                        heads.push(l[0] + ' n');
                        if (l[2])
                                heads.push(l[0] + ' per 100');
                }
                if (!side)
                        heads.push('women', 'men');
                for (const h of heads) {
                        const th = document.createElement('th');
                        th.textContent = h;
                        htr.appendChild(th);
                }
                thead.appendChild(htr);
                fillTable('stats-table', d.rows.map((r) => {
                        const out = [r.period, r.group].concat(side ? [r.sex] : []);
                        for (const l of levels) {
                                out.push(cellText(r.cells[l[1]], false));
                                if (l[2])
                                        out.push(r.cells[l[2]] === null ? {text: '-', cls: 'na'} : cellText(r.cells[l[2]], true));
                        }
                        if (!side)
                                out.push(cellText(r.cells.kvinnor, false), cellText(r.cells.man, false));
                        return out;
                }));
        }

        /* ---- the loop ---- */

        const RENDER = {traffic: renderTraffic, queue: renderQueue, rejections: renderRejections,
                        counties: renderCounties, followup: renderFollowup};

        function snapshot(ch) {
                return {
                        labels: ch.data.labels.slice(),
                        datasets: ch.data.datasets.map((d) => {
                                const o = {label: d.label, data: d.data.slice()};
                                if (d.suppressed)
                                        o.suppressed = d.suppressed.slice();
                                return o;
                        }),
                };
        }

        function tableText(id) {
                return Array.from(document.querySelectorAll('#' + id + ' tbody tr'))
                        .map((tr) => Array.from(tr.children).map((td) => td.textContent));
        }

        function writePlotted() {
                const out = {view, search: location.search, polls, errors: errors.slice(), summary: last ? last.summary : null,
                             t: series.map((h) => h.t), charts: {}, tiles: {}, tables: {}};
                const sec = document.getElementById('view-' + view);
                for (const c of sec.querySelectorAll('canvas'))
                        if (charts[c.id])
                                out.charts[c.id] = snapshot(charts[c.id]);
                for (const el of sec.querySelectorAll('.tile .value'))
                        out.tiles[el.id] = el.textContent;
                for (const t of sec.querySelectorAll('table'))
                        out.tables[t.id] = tableText(t.id);
                if (view === 'followup' && stats)
                        out.stats_path = statsPath(stats.query);
                const pre = document.getElementById('plotted');
                pre.textContent = JSON.stringify(out);
                pre.dataset.polls = String(polls);
        }

        function render() {
                if (!last)
                        return;
                const s = last.summary;
                setText('node', 'node ' + s.node + ' · version ' + s.version + ' · up ' + fmtTime(s.uptime_s));
                const rd = document.getElementById('ready');
                rd.textContent = s.ready ? 'ready' : 'NOT READY';
                rd.className = 'badge ' + (s.ready ? 'ok' : 'bad');
                RENDER[view]();
        }

        async function poll() {
                try {
                        const [summary, text, rejections] = await Promise.all([
                                getJSON('/api/v1/summary'), getText('/metrics'),
                                view === 'rejections' ? getJSON('/api/v1/rejections') : Promise.resolve(null),
                        ]);
                        const prom = parseProm(text);
                        const totals = {};
                        for (const o of OUTCOMES)
                                totals[o] = sumOf(prom, 'intygsgw_intyg_total', {outcome: o});
                        const queue = {};
                        for (const st of ['queued', 'inflight', 'delivered', 'dead'])
                                queue[st] = sumOf(prom, 'intygsgw_outbox_records', {state: st});
                        series.push({t: sumOf(prom, 'intygsgw_uptime_seconds'), totals, queue});
                        while (series.length > HISTORY)
                                series.shift();
                        last = {summary, prom, rejections};
                        if (view === 'followup' && (!stats || Date.now() - statsAt > STATS_EVERY_MS)) {
                                await loadReportList();
                                await fetchStats();
                        }
                        const s = document.getElementById('status');
                        s.textContent = '';
                        s.classList.remove('bad');
                        render();
                } catch (e) {
                        noteError(e.message || String(e));
                }
                polls++;
                if (TEST)
                        writePlotted();
                setTimeout(poll, POLL_MS);
        }

        function show(v) {
                view = v;
                for (const name of VIEWS)
                        document.getElementById('view-' + name).hidden = name !== v;
                for (const a of document.querySelectorAll('nav a'))
                        a.classList.toggle('active', a.dataset.view === v);
                render();
        }

        document.querySelectorAll('nav a').forEach((a) => a.addEventListener('click', (e) => {
                e.preventDefault();
                const u = new URL(location.href);
                u.searchParams.set('view', a.dataset.view);
                window.history.replaceState(null, '', u.toString());
                show(a.dataset.view);
                if (a.dataset.view === 'followup')
                        statsAt = 0; /* fresh figures when the view is opened */
        }));
        document.getElementById('stats-form').addEventListener('submit', async (e) => {
                e.preventDefault();
                try {
                        await fetchStats();
                        render();
                } catch (err) {
                        noteError(err.message);
                }
        });
        for (const [id, key] of [['f-unit', 'unit'], ['f-from', 'from'], ['f-to', 'to'], ['f-asof', 'as_of']])
                if (Q.get(key))
                        document.getElementById(id).value = Q.get(key);
        Chart.defaults.font.size = 12;
        show(view);
        poll();
})();
