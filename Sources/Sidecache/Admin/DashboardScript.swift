/// The dashboard's script: polls `GET /stats` and `GET /stats/series` once a second with the
/// admin token (kept in session storage, sent as `Authorization: Bearer`), draws the charts as SVG,
/// writes every number as text beside them, and runs purges and reloads through `POST /purge` and
/// `POST /reload` after a confirmation. No framework, no external fetch.
enum DashboardScript {
    static let js = #"""
    "use strict";
    (() => {
      const TOKEN_KEY = "sidecache-admin-token";
      const SVG = "http://www.w3.org/2000/svg";
      const WARM_SOURCES = ["refresh", "rewarm", "start", "prefetch", "links", "predict", "list"];
      const OUTCOMES = ["hit", "stale", "revalidated", "coalesced", "miss", "bypass", "local", "rate_limited", "errors"];
      const $ = (id) => document.getElementById(id);
      const data = { capacity: 900, interval: 1, times: [], series: {}, routes: {} };
      let stats = null;
      let paused = false;

      // ---- fetching ----
      function headers(extra) {
        const h = Object.assign({ "Accept": "application/json" }, extra || {});
        const token = sessionStorage.getItem(TOKEN_KEY);
        if (token) h["Authorization"] = "Bearer " + token;
        return h;
      }
      async function call(method, path, body) {
        const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}), cache: "no-store" };
        if (body) init.body = JSON.stringify(body);
        const response = await fetch(path, init);
        let json = null;
        try { json = await response.json(); } catch (e) { json = null; }
        if (response.status === 401) { askToken(); throw new Error("the admin token is missing or wrong"); }
        return { status: response.status, json };
      }
      function askToken() {
        paused = true;
        $("token-form").hidden = false;
        $("main").hidden = true;
        setStatus("This admin port needs its token.", true);
      }
      $("token-form").addEventListener("submit", (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
        $("token-input").value = "";
        $("token-form").hidden = true;
        $("main").hidden = false;
        paused = false;
        data.times = []; data.series = {}; data.routes = {};
        tick();
      });

      function merge(fresh) {
        data.capacity = fresh.capacity || data.capacity;
        data.interval = fresh.interval_seconds || data.interval;
        const before = data.times.length;
        const add = fresh.times.length;
        data.times.push(...fresh.times);
        const fill = (target, source) => {
          for (const name of Object.keys(source)) {
            if (!target[name]) target[name] = new Array(before).fill(null);
            target[name].push(...source[name]);
          }
          for (const name of Object.keys(target)) if (!(name in source)) target[name].push(...new Array(add).fill(null));
        };
        fill(data.series, fresh.series);
        for (const route of Object.keys(fresh.routes)) {
          if (!data.routes[route]) data.routes[route] = {};
          fill(data.routes[route], fresh.routes[route]);
        }
        const drop = data.times.length - data.capacity;
        if (drop > 0) {
          data.times.splice(0, drop);
          for (const s of Object.values(data.series)) s.splice(0, drop);
          for (const r of Object.values(data.routes)) for (const s of Object.values(r)) s.splice(0, drop);
        }
      }

      async function tick() {
        if (paused) return;
        try {
          const since = data.times.length ? "?since=" + data.times[data.times.length - 1] : "";
          const [s, series] = await Promise.all([call("GET", "/stats"), call("GET", "/stats/series" + since)]);
          if (s.status !== 200 || series.status !== 200) throw new Error("the admin port answered " + s.status + " and " + series.status);
          stats = s.json;
          merge(series.json);
          render();
          $("updated").textContent = new Date().toLocaleTimeString();
          setStatus("");
        } catch (error) {
          if (!paused) setStatus("Cannot read the admin port: " + error.message, true);
        }
      }
      function setStatus(text, bad) {
        const el = $("status");
        el.textContent = text;
        el.hidden = !text;
        el.classList.toggle("error", !!bad);
      }

      // ---- numbers ----
      const num = (v, digits) => v == null || !isFinite(v) ? "–" : v.toLocaleString("en-US", { maximumFractionDigits: digits == null ? 1 : digits });
      const pct = (v) => v == null ? "–" : (v * 100).toFixed(1) + "%";
      const ms = (v) => v == null ? "–" : (v < 10 ? v.toFixed(2) : v.toFixed(1)) + " ms";
      function bytes(v) {
        if (v == null) return "–";
        const units = ["B", "KiB", "MiB", "GiB", "TiB"];
        let i = 0;
        while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
        return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
      }
      function duration(seconds) {
        const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
        return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m ? m + "m " + s + "s" : s + "s";
      }
      // Counts per interval as rates per second, using each point's real interval.
      function rates(values) {
        return values.map((v, i) => {
          if (v == null) return null;
          const dt = i > 0 ? (data.times[i] - data.times[i - 1]) / 1000 : data.interval;
          return v / (dt > 0 ? dt : data.interval);
        });
      }
      const lastValue = (values) => { for (let i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i]; return null; };
      function recentRate(values, seconds) {
        const n = Math.min(values.length, seconds);
        if (!n) return null;
        let sum = 0;
        for (let i = values.length - n; i < values.length; i++) sum += values[i] || 0;
        const span = (data.times[data.times.length - 1] - data.times[data.times.length - n]) / 1000 + data.interval;
        return sum / span;
      }
      const series = (name) => data.series[name] || [];

      // ---- charts ----
      function el(name, attrs, parent) {
        const node = document.createElementNS(SVG, name);
        for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
        if (parent) parent.appendChild(node);
        return node;
      }
      function niceMax(v) {
        if (!(v > 0)) return 1;
        const p = Math.pow(10, Math.floor(Math.log10(v)));
        for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
        return 10 * p;
      }
      // lines: [{name, values, text}]; opts: {stacked, max, format}
      function draw(id, lines, opts) {
        opts = opts || {};
        const fig = $(id);
        const W = 600, H = 150, L = 46, R = 6, T = 6, B = 18;
        const n = data.times.length;
        let top = 0;
        if (opts.stacked) {
          for (let i = 0; i < n; i++) top = Math.max(top, lines.reduce((a, l) => a + (l.values[i] || 0), 0));
        } else {
          for (const l of lines) for (const v of l.values) if (v != null) top = Math.max(top, v);
        }
        const max = opts.max || niceMax(top);
        const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot", preserveAspectRatio: "none", role: "img" });
        const x = (i) => L + (W - L - R) * (data.capacity <= 1 ? 0 : (i + data.capacity - n) / (data.capacity - 1));
        const y = (v) => T + (H - T - B) * (1 - Math.min(v, max) / max);
        el("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), class: "axis" }, svg);
        el("line", { x1: L, y1: y(max), x2: W - R, y2: y(max), class: "axis" }, svg);
        el("text", { x: L - 4, y: y(max) + 8, "text-anchor": "end" }, svg).textContent = (opts.format || num)(max);
        el("text", { x: L - 4, y: y(0), "text-anchor": "end" }, svg).textContent = (opts.format || num)(0);
        for (const [label, at] of [["-15m", 0], ["-10m", 1 / 3], ["-5m", 2 / 3], ["now", 1]]) {
          el("text", { x: L + (W - L - R) * at, y: H - 4, "text-anchor": at === 0 ? "start" : at === 1 ? "end" : "middle" }, svg).textContent = label;
        }
        let drawn = 0;
        const base = new Array(n).fill(0);
        lines.forEach((line, k) => {
          const cls = "c" + (line.color == null ? k % 9 : line.color);
          if (opts.stacked) {
            const upper = [], lower = [];
            for (let i = 0; i < n; i++) {
              const v = line.values[i] || 0;
              lower.push(`${x(i)},${y(base[i])}`);
              base[i] += v;
              upper.push(`${x(i)},${y(base[i])}`);
              if (line.values[i] != null) drawn++;
            }
            if (n > 1) el("polygon", { points: upper.concat(lower.reverse()).join(" "), class: cls }, svg);
          } else {
            // A gap (unknown value) breaks the line.
            let run = [];
            const flush = () => { if (run.length > 1) el("polyline", { points: run.join(" "), class: cls }, svg); run = []; };
            for (let i = 0; i < n; i++) {
              const v = line.values[i];
              if (v == null) { flush(); continue; }
              run.push(`${x(i)},${y(v)}`);
              drawn++;
            }
            flush();
          }
        });
        svg.setAttribute("data-points", String(drawn));
        const legend = document.createElement("dl");
        legend.className = "legend";
        lines.forEach((line, k) => {
          const item = document.createElement("div");
          const dt = document.createElement("dt");
          dt.className = "c" + (line.color == null ? k % 9 : line.color);
          dt.textContent = line.name;
          const dd = document.createElement("dd");
          dd.textContent = line.text != null ? line.text : (opts.format || num)(lastValue(line.values));
          item.append(dt, dd);
          legend.appendChild(item);
        });
        const caption = fig.querySelector("figcaption");
        fig.replaceChildren(caption, svg, legend);
        fig.setAttribute("data-points", String(drawn));
      }

      // ---- the page ----
      function cells(row, values) {
        const tr = document.createElement("tr");
        for (const v of values) { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); }
        row.appendChild(tr);
      }
      function render() {
        const routeNames = Object.keys(data.routes).filter((r) => stats.routes && stats.routes[r]).sort();
        const requests = rates(series("requests"));
        const totals = stats.totals || {};

        $("uptime").textContent = duration(stats.uptime_seconds || 0);
        $("config-version").textContent = "v" + stats.config_version + (stats.config ? " · " + stats.config.file : "");
        const reload = stats.config && stats.config.last_reload;
        $("last-reload").textContent = reload
          ? new Date(reload.at).toLocaleString() + " · " + reload.result + (reload.errors.length ? " (" + reload.errors.map((e) => e.path + (e.line != null ? " line " + e.line : "") + ": " + e.message).join("; ") + ")" : "")
          : "none yet";

        $("tile-rps").textContent = num(recentRate(series("requests"), 10));
        $("tile-hit-ratio").textContent = pct(totals.hit_ratio);
        $("tile-hit-ratio").setAttribute("data-value", totals.hit_ratio == null ? "" : String(totals.hit_ratio));
        const served = series("hit").slice(-60).reduce((a, v) => a + (v || 0), 0) + series("stale").slice(-60).reduce((a, v) => a + (v || 0), 0);
        const looked = served + ["miss", "revalidated", "coalesced"].reduce((a, o) => a + series(o).slice(-60).reduce((b, v) => b + (v || 0), 0), 0);
        $("tile-hit-ratio-recent").textContent = "since start · last minute " + (looked ? pct(served / looked) : "–");
        $("tile-p99").textContent = ms(lastValue(series("p99_ms")));
        $("tile-p50").textContent = "p50 " + ms(lastValue(series("p50_ms")));
        const cache = stats.cache || {};
        $("tile-cache").textContent = bytes(cache.bytes);
        $("tile-entries").textContent = "of " + bytes(cache.max_bytes) + " · " + num(cache.entries, 0) + " entries";
        const breaker = stats.circuit_breaker;
        $("tile-breaker").textContent = breaker ? "breaker " + breaker.state : "no breaker";
        const pool = stats.upstream_pool || {};
        $("tile-pool").textContent = num(pool.in_use, 0) + " in use · " + num(pool.idle, 0) + " idle" + (breaker ? " · " + breaker.window_failures + " recent failures" : "");
        const redis = stats.redis;
        $("tile-redis").textContent = redis ? (redis.connected ? "connected" : "disconnected") : "not configured";
        $("tile-redis-errors").textContent = redis ? (redis.subscribed ? "subscribed" : "not subscribed") + " · " + redis.errors + " errors" : "memory only";

        draw("chart-requests", [{ name: "all", values: requests }].concat(routeNames.map((r) => ({ name: r, values: rates(data.routes[r].requests) }))));
        draw("chart-hit-ratio", [{ name: "all", values: series("hit_ratio") }].concat(routeNames.map((r) => ({ name: r, values: data.routes[r].hit_ratio }))),
             { max: 1, format: pct });
        draw("chart-outcomes", OUTCOMES.map((o) => ({ name: o.replace("_", "-"), values: rates(series(o)) })), { stacked: true });
        draw("chart-latency", [["p50", "p50_ms"], ["p99", "p99_ms"], ["upstream p50", "upstream_p50_ms"], ["upstream p99", "upstream_p99_ms"]]
          .map(([name, key]) => ({ name, values: series(key) })), { format: (v) => ms(v) });
        draw("chart-cache", [{ name: "used", values: series("cache_bytes") }, { name: "max", values: series("max_bytes"), color: 6 },
          { name: "small queue", values: series("small_bytes") }, { name: "main queue", values: series("main_bytes") }], { format: bytes });
        draw("chart-evictions", [{ name: "evictions/s", values: rates(series("evictions")), text: num(recentRate(series("evictions"), 10)) }]);
        draw("chart-upstream", [{ name: "in use", values: series("upstream_in_use") }, { name: "open", values: series("upstream_open") },
          { name: "breaker failures (window)", values: series("breaker_failures"), color: 8 }]);
        draw("chart-rate-limited", routeNames.map((r) => ({ name: r, values: rates(data.routes[r].rate_limited), text: num(recentRate(data.routes[r].rate_limited, 10)) })));
        draw("chart-redis", [{ name: redis ? "errors/s" : "not configured", values: rates(series("redis_errors")) }]);

        const warming = stats.warming;
        const warmRows = $("warm-table").tBodies[0];
        warmRows.replaceChildren();
        if (!warming) {
          $("warm-budget").textContent = "Off: the config has no warming section.";
        } else {
          const b = warming.budget;
          $("warm-budget").textContent = "budget: " + num(b.in_flight, 0) + " of " + num(b.max_concurrent, 0) + " under way · " +
            num(b.effective_rps) + " of " + num(b.max_rps) + " requests/s allowed (pace " + pct(b.pace) + ") · " + num(b.queued, 0) + " queued";
          for (const route of Object.keys(warming.routes).sort()) {
            for (const source of WARM_SOURCES) {
              const c = warming.routes[route][source];
              if (!c) continue;
              cells(warmRows, [route, source, num(c.issued, 0), num(c.completed, 0), num(c.not_stored, 0), num(c.failed, 0), num(c.dropped, 0),
                num(c.used, 0), pct(c.precision)]);
            }
          }
          if (!warmRows.rows.length) cells(warmRows, ["no background fetch yet", "", "", "", "", "", "", "", ""]);
        }
        draw("chart-warming", WARM_SOURCES.filter((w) => warming && (w === "refresh" || series("warm_" + w).some((v) => v)))
          .map((w) => ({ name: w, values: rates(series("warm_" + w)) }))
          .concat([{ name: "used", values: rates(series("warm_used")), color: 6 }]));

        const tbody = $("routes-table").tBodies[0];
        tbody.replaceChildren();
        for (const r of routeNames) {
          const s = data.routes[r], t = stats.routes[r];
          cells(tbody, [r, num(recentRate(s.requests, 10)), pct(t.hit_ratio), ms(lastValue(s.p50_ms)), ms(lastValue(s.p99_ms)),
            ms(lastValue(s.upstream_p50_ms)), ms(lastValue(s.upstream_p99_ms)), num(recentRate(s.errors, 10)), num(recentRate(s.rate_limited, 10)),
            num(t.requests, 0)]);
        }
        const keys = $("top-keys").tBodies[0];
        keys.replaceChildren();
        for (const k of stats.top_keys || []) cells(keys, [k.key, num(k.hits, 0)]);
        if (!(stats.top_keys || []).length) cells(keys, ["no hits in the last minute", ""]);
        const queues = $("queues").tBodies[0];
        queues.replaceChildren();
        const q = cache.queues || {};
        for (const name of ["small", "main", "ghost"]) {
          if (!q[name]) continue;
          cells(queues, [name, num(q[name].keys, 0), q[name].bytes == null ? "–" : bytes(q[name].bytes), q[name].evicted_keys == null ? "–" : num(q[name].evicted_keys, 0)]);
        }
        $("policy").textContent = "policy " + cache.policy + " · " + num(cache.promotions, 0) + " promotions · " + num(cache.ghost_hits, 0) + " ghost hits · " + num(cache.evictions, 0) + " evictions";
        const limits = $("rate-limits").tBodies[0];
        limits.replaceChildren();
        for (const l of stats.rate_limits || []) cells(limits, [l.route, l.scope, l.mode, num(l.keys, 0)]);
        if (!(stats.rate_limits || []).length) cells(limits, ["no route has a rate limit", "", "", ""]);
      }

      // ---- actions ----
      function show(id, response) {
        const out = $(id);
        out.hidden = false;
        out.textContent = response.status + "\n" + JSON.stringify(response.json, null, 2);
      }
      function purgeBody() {
        const kind = $("purge-kind").value, value = $("purge-value").value.trim(), soft = $("purge-soft").checked;
        const body = kind === "url" ? { url: value } : kind === "tag" ? { tags: [value] } : { pattern: value };
        if (soft) body.soft = true;
        return { kind, value, soft, body };
      }
      $("purge-form").addEventListener("submit", (event) => {
        event.preventDefault();
        const p = purgeBody();
        if (!p.value) return;
        $("purge-question").textContent = (p.soft ? "Mark stale" : "Remove") + " every entry with " + p.kind + " " + JSON.stringify(p.value) + ", here, in Redis and on every instance?";
        $("purge-confirm").hidden = false;
      });
      $("purge-cancel").addEventListener("click", () => { $("purge-confirm").hidden = true; });
      $("purge-confirm-yes").addEventListener("click", async () => {
        $("purge-confirm").hidden = true;
        try { show("purge-result", await call("POST", "/purge", purgeBody().body)); tick(); }
        catch (error) { show("purge-result", { status: "failed", json: String(error.message) }); }
      });
      $("reload").addEventListener("click", () => { $("reload-confirm").hidden = false; });
      $("reload-cancel").addEventListener("click", () => { $("reload-confirm").hidden = true; });
      $("reload-confirm-yes").addEventListener("click", async () => {
        $("reload-confirm").hidden = true;
        try { show("reload-result", await call("POST", "/reload")); tick(); }
        catch (error) { show("reload-result", { status: "failed", json: String(error.message) }); }
      });

      tick();
      setInterval(tick, 1000);
    })();

    """#
}
