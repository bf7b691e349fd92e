"use strict";
// CityFleet live map. Subscribes to city/# over MQTT on WebSockets with the read-only viewer
// account and draws what the scenario's devices publish, as it arrives.
// Every value from a message reaches the page as a text node (textContent) or a number, never
// through innerHTML: a payload cannot add markup or script to this page.
(() => {
  const STREAMS = ["vehicle", "gps", "traffic", "weather", "emergency", "status"];
  const RATE_WINDOW_S = 5;
  const RENDER_EVERY_MS = 250; // redraw changed devices in batches, not once per message
  const OFFLINE = "#9aa3ab";
  const CONGESTION = {
    free: "#2e9d45",
    light: "#9ccc3a",
    moderate: "#f0a020",
    heavy: "#e0452c",
    standstill: "#8b1010",
  };
  const INCIDENT = { reported: "#f08c00", active: "#d62828", resolved: "#8a939b" };
  const WET = new Set(["drizzle", "rain", "heavy_rain"]);
  const root = document.documentElement;
  const decoder = new TextDecoder();

  // ---- small DOM helpers (text only) ------------------------------------------------------
  function node(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function finite(value) {
    return typeof value === "number" && Number.isFinite(value);
  }

  function latLng(msg) {
    return finite(msg.latitude) && finite(msg.longitude) ? [msg.latitude, msg.longitude] : null;
  }

  // Red (stopped) through amber to green at motorway speed (110 km/h and above).
  function speedColour(kmh) {
    const hue = finite(kmh) ? Math.max(0, Math.min(1, kmh / 110)) * 120 : 0;
    return `hsl(${hue.toFixed(0)}, 78%, 40%)`;
  }

  function format(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "string" && value.startsWith("data:")) return "(inline image)";
    return String(value);
  }

  function formatTime(ms) {
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  // The latest message of each stream a device sent, field by field.
  function details(device) {
    const box = node("div");
    box.appendChild(node("strong", null, device.id));
    box.appendChild(node("div", null, `status: ${device.status}`));
    for (const stream of STREAMS) {
      const msg = device.latest[stream];
      if (!msg || stream === "status") continue;
      const table = node("table", "details");
      table.appendChild(node("caption", null, stream));
      for (const [key, value] of Object.entries(msg)) {
        if (key === "device_id") continue;
        const row = node("tr");
        row.appendChild(node("th", null, key));
        row.appendChild(node("td", null, format(value)));
        table.appendChild(row);
      }
      box.appendChild(table);
    }
    return box;
  }

  // ---- state ------------------------------------------------------------------------------
  const devices = new Map(); // device_id -> {id, kind, status, latest, layer, dirty}
  const incidents = new Map(); // incident_id -> {msg, layers}
  const dirty = new Set();
  const totals = Object.fromEntries(STREAMS.map((s) => [s, 0]));
  const history = []; // [{t, totals}] once a second, for the per-stream rates
  let messages = 0;
  let simTime = 0;

  function device(id) {
    let d = devices.get(id);
    if (!d) {
      d = { id, kind: null, status: null, latest: {}, layer: null, extra: null };
      devices.set(id, d);
    }
    return d;
  }

  const KIND = { vehicle: "vehicle", gps: "vehicle", traffic: "camera", weather: "station" };

  function onMessage(prefix, topic, bytes) {
    const parts = topic.split("/");
    if (parts.length !== 3 || parts[0] !== "city") return;
    const [, stream, id] = parts;
    if (!STREAMS.includes(stream) || !id.startsWith(prefix)) return; // another scenario's
    let msg;
    try {
      msg = JSON.parse(decoder.decode(bytes));
    } catch {
      return; // malformed: the bridge dead-letters it; the map has nothing to draw
    }
    if (msg === null || typeof msg !== "object" || Array.isArray(msg)) return;
    messages += 1;
    totals[stream] += 1;
    const d = device(id);
    if (stream === "status") {
      if (msg.status === "online" || msg.status === "offline") d.status = msg.status;
      dirty.add(d);
      return;
    }
    const t = Date.parse(msg.timestamp);
    if (Number.isFinite(t) && t > simTime) simTime = t;
    if (d.status === null) d.status = "online"; // it publishes, so it is there
    d.latest[stream] = msg;
    if (KIND[stream]) d.kind = KIND[stream];
    if (stream === "emergency") updateIncident(msg);
    dirty.add(d);
  }

  // ---- map layers -------------------------------------------------------------------------
  let map;

  function vehicleLayer(d, position) {
    const arrow = node("div", "arrow");
    const icon = L.divIcon({ className: "vehicle-icon", html: arrow, iconSize: [18, 18] });
    const marker = L.marker(position, { icon, keyboard: false, title: d.id }).addTo(map);
    marker.bindPopup(() => details(d), { maxWidth: 360 });
    d.extra = arrow;
    return marker;
  }

  function cameraLayer(d, position) {
    const marker = L.circleMarker(position, {
      radius: 7,
      color: "#1d232b",
      weight: 1.5,
      fillOpacity: 0.95,
    }).addTo(map);
    marker.bindTooltip(() => {
      const msg = d.latest.traffic || {};
      return node("span", null, `${d.id}: ${format(msg.congestion_level)}`);
    });
    marker.bindPopup(() => details(d), { maxWidth: 360 });
    return marker;
  }

  function stationLayer(d, position) {
    const label = node("span", "station");
    const icon = L.divIcon({ className: "weather-icon", html: label, iconSize: [0, 0] });
    const marker = L.marker(position, { icon, keyboard: false, title: d.id }).addTo(map);
    marker.bindPopup(() => details(d), { maxWidth: 360 });
    d.extra = label;
    return marker;
  }

  const LAYER = { vehicle: vehicleLayer, camera: cameraLayer, station: stationLayer };

  function render(d) {
    if (!d.kind) return; // a status line only, or the incident generator: nothing to place
    const msg =
      d.kind === "vehicle"
        ? newest(d.latest.vehicle, d.latest.gps)
        : d.latest[d.kind === "camera" ? "traffic" : "weather"];
    const position = msg && latLng(msg);
    if (!position) return;
    if (!d.layer) d.layer = LAYER[d.kind](d, position);
    else d.layer.setLatLng(position);
    const offline = d.status === "offline";
    const element = d.layer.getElement && d.layer.getElement();
    if (element && element.classList) element.classList.toggle("offline", offline);
    if (d.kind === "vehicle") {
      d.extra.style.background = speedColour(msg.speed_kmh);
      d.extra.style.transform = `rotate(${finite(msg.heading_deg) ? msg.heading_deg : 0}deg)`;
    } else if (d.kind === "camera") {
      const level = msg.congestion_level;
      d.layer.setStyle({ fillColor: offline ? OFFLINE : CONGESTION[level] || "#666" });
    } else {
      const condition = String(msg.weather_condition || "").replaceAll("_", " ");
      const temperature = finite(msg.temperature_c) ? `${msg.temperature_c.toFixed(1)}°C` : "";
      d.extra.textContent = `${condition} ${temperature}`.trim();
      d.extra.className = "station";
      if (WET.has(msg.weather_condition)) d.extra.classList.add("wet");
      if (msg.weather_condition === "snow" || msg.weather_condition === "fog") {
        d.extra.classList.add(msg.weather_condition);
      }
    }
    if (d.layer.isPopupOpen()) d.layer.getPopup().update();
  }

  function newest(a, b) {
    if (!a || !b) return a || b;
    return Date.parse(a.timestamp) >= Date.parse(b.timestamp) ? a : b;
  }

  function updateIncident(msg) {
    const id = String(msg.incident_id || "");
    const position = latLng(msg);
    if (!id || !position) return;
    let incident = incidents.get(id);
    if (!incident) {
      const area = L.circle(position, { radius: 1, weight: 2 }).addTo(map);
      const centre = L.circleMarker(position, { radius: 4, weight: 1, fillOpacity: 1 }).addTo(map);
      incident = { msg, layers: [area, centre] };
      const tip = () => {
        const m = incident.msg;
        const box = node("div");
        box.appendChild(node("strong", null, `${format(m.type)} · ${format(m.status)}`));
        box.appendChild(node("div", null, `severity ${format(m.severity)} of 5`));
        box.appendChild(node("div", null, format(m.description)));
        box.appendChild(node("div", null, `radius ${format(m.radius_km)} km · ${id}`));
        return box;
      };
      for (const layer of incident.layers) layer.bindTooltip(tip);
      incidents.set(id, incident);
    }
    incident.msg = msg;
    const [area, centre] = incident.layers;
    const colour = INCIDENT[msg.status] || "#666";
    const resolved = msg.status === "resolved";
    area.setLatLng(position);
    area.setRadius(finite(msg.radius_km) ? Math.max(msg.radius_km * 1000, 100) : 500);
    area.setStyle({
      color: colour,
      fillColor: colour,
      fillOpacity: resolved ? 0.04 : 0.18,
      dashArray: resolved ? "4 4" : null,
    });
    centre.setLatLng(position);
    centre.setStyle({ color: "#1d232b", fillColor: colour });
  }

  // ---- status line ------------------------------------------------------------------------
  function updateStatus() {
    const now = performance.now();
    history.push({ t: now, totals: { ...totals } });
    while (history.length > 1 && now - history[0].t > RATE_WINDOW_S * 1000) history.shift();
    const first = history[0];
    const span = (now - first.t) / 1000;
    const rates = STREAMS.map((s) => {
      const rate = span > 0 ? (totals[s] - first.totals[s]) / span : 0;
      return `${s} ${rate.toFixed(rate < 10 ? 1 : 0)}/s`;
    });
    let online = 0;
    let seen = 0;
    for (const d of devices.values()) {
      if (d.status === "online") online += 1;
      if (d.status !== null) seen += 1;
    }
    document.getElementById("online").textContent = online;
    document.getElementById("seen").textContent = seen;
    document.getElementById("messages").textContent = messages.toLocaleString("en");
    document.getElementById("rates").textContent = rates.join(" · ");
    document.getElementById("clock").textContent = simTime ? formatTime(simTime) : "–";
    root.dataset.devicesOnline = String(online);
    root.dataset.devicesSeen = String(seen);
    root.dataset.messages = String(messages);
    root.dataset.simTime = simTime ? new Date(simTime).toISOString() : "";
  }

  function setConnection(state, text) {
    const span = document.getElementById("connection");
    span.className = `state-${state}`;
    span.textContent = text;
    root.dataset.connected = String(state === "connected");
  }

  // ---- legend -----------------------------------------------------------------------------
  function legend() {
    const box = document.getElementById("legend");
    const row = (swatchColour, label, className = "swatch") => {
      const line = node("div");
      const swatch = node("span", className);
      if (swatchColour) swatch.style.background = swatchColour;
      line.append(swatch, node("span", null, label));
      box.appendChild(line);
    };
    box.appendChild(node("h4", null, "vehicles: speed"));
    row(null, "0 → 110+ km/h", "ramp");
    box.appendChild(node("h4", null, "cameras: congestion"));
    for (const [level, colour] of Object.entries(CONGESTION)) row(colour, level);
    box.appendChild(node("h4", null, "incidents"));
    for (const [status, colour] of Object.entries(INCIDENT)) row(colour, status);
    row(OFFLINE, "offline device");
  }

  // ---- start ------------------------------------------------------------------------------
  function drawRoutes(scenario) {
    const bounds = L.latLngBounds([]);
    for (const route of scenario.routes) {
      const layer = L.geoJSON(route.geojson, {
        style: { color: "#3d6a99", weight: 4, opacity: 0.75 },
      }).addTo(map);
      layer.bindTooltip(() => node("span", null, `route ${route.id}`), { sticky: true });
      bounds.extend(layer.getBounds());
    }
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [24, 24] });
  }

  function escapeHtml(text) {
    // Leaflet writes attributions as HTML; the configured text is shown as text.
    const span = node("span", null, text);
    return span.innerHTML;
  }

  function connect(config) {
    const prefix = `${config.scenario.prefix}-`;
    const client = mqtt.connect(config.mqtt.url, {
      username: config.mqtt.username,
      password: config.mqtt.password,
      clientId: `cityfleet-live-${Math.random().toString(16).slice(2, 10)}`,
      protocolVersion: 5,
      clean: true,
      reconnectPeriod: 2000,
      connectTimeout: 10000,
    });
    client.on("connect", () => {
      setConnection("connected", "connected");
      client.subscribe("city/#", { qos: 0 }, (err) => {
        if (err) setConnection("error", `subscribe refused: ${err.message}`);
      });
    });
    client.on("reconnect", () => setConnection("connecting", "reconnecting"));
    client.on("close", () => setConnection("connecting", "disconnected, retrying"));
    client.on("error", (err) => {
      setConnection("error", `MQTT: ${err.message}`);
      console.error(`CityFleet live map: MQTT error: ${err.message}`);
    });
    client.on("message", (topic, payload) => onMessage(prefix, topic, payload));
  }

  async function main() {
    const response = await fetch("/config.json", { cache: "no-store" });
    const config = await response.json();
    document.getElementById("title").textContent = `CityFleet live · ${config.scenario.name}`;
    document.title = `CityFleet live · ${config.scenario.name}`;
    map = L.map("map", { zoomSnap: 0.25, attributionControl: Boolean(config.tiles.url) });
    if (config.tiles.url) {
      L.tileLayer(config.tiles.url, {
        attribution: escapeHtml(config.tiles.attribution || ""),
        maxZoom: 18,
      }).addTo(map);
    }
    drawRoutes(config.scenario);
    legend();
    setInterval(() => {
      for (const d of dirty) render(d);
      dirty.clear();
    }, RENDER_EVERY_MS);
    setInterval(updateStatus, 1000);
    updateStatus();
    connect(config);
  }

  main().catch((err) => {
    setConnection("error", `could not start: ${err.message}`);
    console.error(err);
  });
})();
