"""The demo's control page: press the simulated kiosks' and caller boxes' buttons from a browser,
see the caller boxes' displays and the tickets that came out of the printers."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, render_template_string, request, send_from_directory

from demo.devices import DemoCaller, DemoKiosk
from protocol.site import Site

PAGE = """<!doctype html>
<html lang="id"><head><meta charset="utf-8"><title>Demo MPP — {{ site.site.name }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: sans-serif; margin: 1rem; background: #f4f6f8; color: #1d2a35; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
.grid { display: flex; flex-wrap: wrap; gap: .8rem; }
.card { background: white; border-radius: 8px; padding: .7rem; box-shadow: 0 1px 3px #0002; }
button { margin: .15rem; padding: .35rem .6rem; border: 1px solid #0b6e4f; background: #e8f5ef;
         border-radius: 5px; cursor: pointer; }
button.big { background: #0b6e4f; color: white; font-weight: bold; }
pre.lcd { background: #2d4a22; color: #c8f7a3; padding: .4rem; font-size: 1rem; margin: .3rem 0; }
.tickets img { height: 260px; border: 1px solid #ccc; background: white; }
a { color: #0b6e4f; }
</style></head><body>
<h1>Demo {{ site.site.name }}</h1>
<p>Broker: {{ broker }} · <a href="{{ hub_url }}/dashboard" target="_blank">Dasbor / dashboard</a>
(login <code>{{ login }}</code>) · Layar / screens:
{% for zone in zones %}<a href="{{ hub_url }}/display/{{ zone }}" target="_blank">{{ zone }}</a> {% endfor %}
· Tiket tersimpan di <code>{{ tickets_dir }}</code></p>
<h2>Kios tiket / kiosks</h2><div class="grid">
{% for k in kiosks %}<div class="card"><b>{{ k.device_id }}</b> ({{ 'tombol' if k.spec.buttons else 'layar sentuh' }})<br>
{% for code in k.services %}<button onclick="press('{{ k.device_id }}','{{ code }}')">{{ code }}</button>{% endfor %}
</div>{% endfor %}</div>
<h2>Kotak pemanggil / caller boxes</h2><div class="grid">
{% for c in callers %}<div class="card"><b>Loket {{ c.counter }}</b>
<pre class="lcd" id="lcd-{{ c.device_id }}">{{ c.lcd.lines | join('\n') }}</pre>
<button class="big" onclick="press('{{ c.device_id }}','next')">NEXT</button>
<button onclick="press('{{ c.device_id }}','recall')">RECALL</button>
<button onclick="press('{{ c.device_id }}','skip')">SKIP</button>
{% if c.spec.buttons.transfer %}<button onclick="press('{{ c.device_id }}','transfer')">TRANSFER</button>{% endif %}
<button onclick="press('{{ c.device_id }}','open_close')">BUKA/TUTUP</button><br>
<button title="Sangat puas" onclick="press('{{ c.device_id }}','very_satisfied')">4 Sangat puas</button>
<button title="Puas" onclick="press('{{ c.device_id }}','satisfied')">3 Puas</button>
<button title="Kurang puas" onclick="press('{{ c.device_id }}','dissatisfied')">2 Kurang</button>
<button title="Tidak puas" onclick="press('{{ c.device_id }}','very_dissatisfied')">1 Tidak puas</button>
</div>{% endfor %}</div>
<h2>Tiket tercetak / printed tickets</h2><div class="grid tickets" id="tickets"></div>
<script>
const token = "{{ token }}";
function press(device, key) {
  fetch("press", {method: "POST", headers: {"Content-Type": "application/json", "X-Demo-Token": token},
                  body: JSON.stringify({device: device, key: key})});
}
async function refresh() {
  const state = await (await fetch("state.json")).json();
  for (const [device, lines] of Object.entries(state.lcd)) {
    const el = document.getElementById("lcd-" + device); if (el) el.textContent = lines.join("\\n");
  }
  document.getElementById("tickets").innerHTML =
    state.tickets.map(t => `<div class="card"><a href="tickets/${t.png}" target="_blank"><img src="tickets/${t.png}" alt="${t.png}"></a><br>` +
      (t.page ? `<a href="${t.page}" target="_blank">Halaman tiket / ticket page</a>` : "") + `</div>`).join("");
}
setInterval(refresh, 1000); refresh();
</script></body></html>"""


def create_control_app(
    site: Site,
    kiosks: list[DemoKiosk],
    callers: list[DemoCaller],
    tickets_dir: Path,
    *,
    hub_url: str,
    broker: str,
    login: str,
) -> Flask:
    """The control page's Flask app (only ever bound to 127.0.0.1)."""
    app = Flask("mpp-demo")
    token = secrets.token_urlsafe(16)
    devices: dict[str, Any] = {k.device_id: k for k in kiosks} | {c.device_id: c for c in callers}

    @app.get("/")
    def index() -> str:
        return render_template_string(
            PAGE,
            site=site,
            kiosks=kiosks,
            callers=callers,
            zones=[z for z, spec in site.zones.items() if spec.kind != "entrance"],
            tickets_dir=tickets_dir,
            hub_url=hub_url,
            broker=broker,
            login=login,
            token=token,
        )

    @app.post("/press")
    def press() -> Any:
        if request.headers.get("X-Demo-Token") != token:
            abort(403)
        body = request.get_json(silent=True) or {}
        device = devices.get(str(body.get("device")))
        key = body.get("key")
        if device is None or not isinstance(key, str):
            return jsonify(error="unknown device or key"), 400
        if isinstance(device, DemoKiosk) and key not in device.services:
            return jsonify(error=f"{device.device_id} does not offer {key}"), 400
        return jsonify(result=str(device.press(key)))

    @app.get("/state.json")
    def state() -> Any:
        pngs = sorted(tickets_dir.glob("*.png"), key=lambda p: p.stat().st_mtime)[-8:]
        pages = {name: url for k in kiosks for name, url in k.printer.pages.items()}
        return jsonify(
            lcd={c.device_id: c.lcd.lines for c in callers},
            tickets=[{"png": p.name, "page": pages.get(p.name)} for p in reversed(pngs)],
        )

    @app.get("/tickets/<name>")
    def ticket(name: str) -> Any:
        return send_from_directory(tickets_dir, name)

    return app
