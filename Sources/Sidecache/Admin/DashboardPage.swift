/// The dashboard's page and styles, served by the admin port at `/` and `/dashboard`. The page
/// holds no data: its script (`DashboardScript`) fetches it with the admin token.
enum DashboardPage {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>sidecache</title>
    <link rel="stylesheet" href="/dashboard.css">
    <script src="/dashboard.js" defer></script>
    </head>
    <body>
    <header>
      <h1>sidecache</h1>
      <dl class="facts">
        <div><dt>uptime</dt><dd id="uptime">–</dd></div>
        <div><dt>config</dt><dd id="config-version">–</dd></div>
        <div><dt>last reload</dt><dd id="last-reload">none yet</dd></div>
        <div><dt>updated</dt><dd id="updated">never</dd></div>
      </dl>
      <div class="actions">
        <button type="button" id="reload">Reload config…</button>
        <span id="reload-confirm" class="confirm" hidden>Read the config file again now?
          <button type="button" id="reload-confirm-yes" class="danger">Reload</button>
          <button type="button" id="reload-cancel">Cancel</button></span>
      </div>
    </header>
    <p id="status" class="status" role="status">Loading…</p>
    <pre id="reload-result" class="result" hidden></pre>

    <form id="token-form" class="card token" hidden>
      <h2>Admin token</h2>
      <p>This admin port needs its bearer token. It is kept in this tab's session storage only.</p>
      <label>Token <input id="token-input" type="password" autocomplete="off" required></label>
      <button type="submit">Use token</button>
    </form>

    <main id="main">
    <section class="tiles">
      <div class="tile"><h3>Requests/s</h3><p id="tile-rps">–</p><small>last 10 s</small></div>
      <div class="tile"><h3>Hit ratio</h3><p id="tile-hit-ratio">–</p><small id="tile-hit-ratio-recent">last minute –</small></div>
      <div class="tile"><h3>Latency p99</h3><p id="tile-p99">–</p><small id="tile-p50">p50 –</small></div>
      <div class="tile"><h3>Memory cache</h3><p id="tile-cache">–</p><small id="tile-entries">–</small></div>
      <div class="tile"><h3>Upstream</h3><p id="tile-breaker">–</p><small id="tile-pool">–</small></div>
      <div class="tile"><h3>Redis</h3><p id="tile-redis">–</p><small id="tile-redis-errors">–</small></div>
    </section>

    <section class="grid">
      <figure class="card chart" id="chart-requests"><figcaption>Requests/s</figcaption></figure>
      <figure class="card chart" id="chart-hit-ratio"><figcaption>Hit ratio</figcaption></figure>
      <figure class="card chart" id="chart-outcomes"><figcaption>Outcomes/s</figcaption></figure>
      <figure class="card chart" id="chart-latency"><figcaption>Latency, all routes (ms)</figcaption></figure>
      <figure class="card chart" id="chart-cache"><figcaption>Memory cache (bytes)</figcaption></figure>
      <figure class="card chart" id="chart-evictions"><figcaption>Evictions/s</figcaption></figure>
      <figure class="card chart" id="chart-upstream"><figcaption>Upstream connections and breaker failures</figcaption></figure>
      <figure class="card chart" id="chart-rate-limited"><figcaption>Rate-limit refusals/s</figcaption></figure>
      <figure class="card chart" id="chart-redis"><figcaption>Redis errors/s</figcaption></figure>
      <figure class="card chart" id="chart-warming"><figcaption>Background fetches/s by source, and fetched entries used/s</figcaption></figure>
    </section>

    <section class="card" id="warming">
      <h2>Warming</h2>
      <p id="warm-budget">–</p>
      <table id="warm-table">
        <thead><tr><th>route</th><th>source</th><th>issued</th><th>completed</th><th>not stored</th><th>failed</th><th>dropped</th>
          <th>used</th><th>precision</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>

    <section class="card">
      <h2>Routes</h2>
      <table id="routes-table">
        <thead><tr><th>route</th><th>req/s</th><th>hit ratio</th><th>p50</th><th>p99</th><th>upstream p50</th><th>upstream p99</th>
          <th>5xx/s</th><th>429/s</th><th>requests</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>

    <section class="two">
      <div class="card">
        <h2>Hot keys, last minute</h2>
        <table id="top-keys"><thead><tr><th>key</th><th>hits</th></tr></thead><tbody></tbody></table>
      </div>
      <div class="card">
        <h2>Cache queues</h2>
        <table id="queues"><thead><tr><th>queue</th><th>keys</th><th>bytes</th><th>evicted keys</th></tr></thead><tbody></tbody></table>
        <p id="policy"></p>
        <h2>Rate limits</h2>
        <table id="rate-limits"><thead><tr><th>route</th><th>scope</th><th>mode</th><th>clients tracked</th></tr></thead><tbody></tbody></table>
      </div>
    </section>

    <section class="card">
      <h2>Purge</h2>
      <form id="purge-form" class="purge">
        <select id="purge-kind" aria-label="purge by">
          <option value="url">URL</option>
          <option value="tag">tag</option>
          <option value="pattern">pattern</option>
        </select>
        <input id="purge-value" placeholder="/api/items/42" aria-label="what to purge" required>
        <label><input id="purge-soft" type="checkbox"> soft (mark stale, keep serving while revalidating)</label>
        <button type="submit" id="purge-submit">Purge…</button>
      </form>
      <p id="purge-confirm" class="confirm" hidden><span id="purge-question"></span>
        <button type="button" id="purge-confirm-yes" class="danger">Purge</button>
        <button type="button" id="purge-cancel">Cancel</button></p>
      <pre id="purge-result" class="result" hidden></pre>
    </section>
    </main>
    </body>
    </html>

    """#

    static let css = #"""
    :root { --bg: #f4f5f7; --card: #fff; --ink: #1d2330; --muted: #667085; --line: #e3e6eb; --accent: #2563eb; --bad: #c2410c; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 14px/1.4 system-ui, "DejaVu Sans", sans-serif; background: var(--bg); color: var(--ink); }
    header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 28px; padding: 12px 20px; background: #111827; color: #f9fafb; }
    header h1 { margin: 0; font-size: 20px; letter-spacing: .02em; }
    .facts { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0; }
    .facts div { display: flex; gap: 6px; }
    .facts dt { color: #9ca3af; }
    .facts dd { margin: 0; font-variant-numeric: tabular-nums; }
    .actions { margin-left: auto; }
    button { font: inherit; padding: 4px 12px; border: 1px solid #9ca3af; border-radius: 4px; background: #fff; color: var(--ink); cursor: pointer; }
    button.danger { background: var(--bad); border-color: var(--bad); color: #fff; }
    header .confirm { color: #f9fafb; }
    .status { margin: 8px 20px; color: var(--muted); }
    .status.error { color: var(--bad); }
    main { padding: 0 20px 24px; }
    .card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; margin: 0 0 14px; }
    .card h2 { font-size: 15px; margin: 0 0 8px; }
    .token { max-width: 460px; margin: 20px; }
    .tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; margin: 6px 0 14px; }
    .tile { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; }
    .tile h3 { margin: 0; font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
    .tile p { margin: 4px 0 0; font-size: 24px; font-variant-numeric: tabular-nums; }
    .tile small { color: var(--muted); }
    .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 0 14px; }
    .two { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 0 14px; }
    figure { margin: 0 0 14px; }
    figcaption { font-weight: 600; margin-bottom: 6px; }
    svg.plot { width: 100%; height: 150px; display: block; }
    svg.plot .axis { stroke: var(--line); stroke-width: 1; }
    svg.plot text { fill: var(--muted); font-size: 10px; }
    svg.plot polyline { fill: none; stroke-width: 1.5; }
    svg.plot polygon { stroke: none; opacity: .85; }
    .legend { display: flex; flex-wrap: wrap; gap: 2px 16px; margin: 6px 0 0; font-size: 12px; }
    .legend div { display: flex; gap: 6px; align-items: baseline; }
    .legend dt::before { content: ""; display: inline-block; width: 10px; height: 10px; margin-right: 5px; border-radius: 2px; background: currentColor; }
    .legend dd { margin: 0; font-variant-numeric: tabular-nums; color: var(--ink); }
    .legend dt.empty, .chart .empty { color: var(--muted); }
    table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
    th, td { text-align: right; padding: 3px 8px; border-bottom: 1px solid var(--line); }
    th:first-child, td:first-child { text-align: left; word-break: break-all; }
    th { color: var(--muted); font-weight: 600; font-size: 12px; }
    .purge { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
    .purge input[type=text], .purge input:not([type]) { min-width: 320px; padding: 4px 6px; }
    .confirm { margin: 8px 0; }
    .result { background: #f8fafc; border: 1px solid var(--line); padding: 8px; margin: 8px 0 0; white-space: pre-wrap; }
    header + .status + .result { margin: 8px 20px; }
    .c0 { color: #2563eb; stroke: #2563eb; fill: #2563eb; } .c1 { color: #16a34a; stroke: #16a34a; fill: #16a34a; }
    .c2 { color: #ea580c; stroke: #ea580c; fill: #ea580c; } .c3 { color: #9333ea; stroke: #9333ea; fill: #9333ea; }
    .c4 { color: #0891b2; stroke: #0891b2; fill: #0891b2; } .c5 { color: #ca8a04; stroke: #ca8a04; fill: #ca8a04; }
    .c6 { color: #64748b; stroke: #64748b; fill: #64748b; } .c7 { color: #db2777; stroke: #db2777; fill: #db2777; }
    .c8 { color: #dc2626; stroke: #dc2626; fill: #dc2626; }
    """#
}
