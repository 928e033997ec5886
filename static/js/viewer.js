// The map viewer (templates/maps/viewer.html): the offline basemap plus the map's vector
// layers, drawn from each layer's style_config. `maplibregl` is the vendored global build.
// Tests and the poster renderer wait for <body data-map-idle="true"> and use window.meridianMap.

const config = JSON.parse(document.getElementById("viewer-config").textContent);
const FONT = ["Open Sans Semibold"]; // shipped by django-tiles-gl with the basemap's glyphs
const INTERACTIVE = []; // style layer ids that open a popup on click

// A public view authenticates every request of ours with the share token (the tiles
// inherit it from the TileJSON's tile URL).
function withToken(url, params = {}) {
  const target = new URL(url, window.location.origin);
  for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value);
  if (config.share_token) target.searchParams.set("share_token", config.share_token);
  return target.toString();
}

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// Colour (or size) per feature: one value, a `match` on categories, or a `step` over classes.
function dataDriven(style, key, fallback) {
  const stops = (style.stops || []).filter((stop) => stop[key] != null);
  if (!style.property || !stops.length || style.type === "simple") return fallback;
  const value = ["get", style.property];
  if (style.type === "graduated") {
    const sorted = stops.filter((s) => !Number.isNaN(Number(s.value))).sort((a, b) => a.value - b.value);
    if (!sorted.length) return fallback;
    const expression = ["step", ["to-number", value, 0], sorted[0][key]];
    for (const stop of sorted.slice(1)) expression.push(Number(stop.value), stop[key]);
    return expression;
  }
  const expression = ["match", ["to-string", value]];
  const seen = new Set();
  for (const stop of stops) {
    const label = String(stop.value);
    if (seen.has(label)) continue; // `match` refuses duplicate labels
    seen.add(label);
    expression.push(label, stop[key]);
  }
  return seen.size ? [...expression, fallback] : fallback;
}

// The MapLibre style layers for one map layer; all read the tiles' "features" source-layer.
function styleLayers(layer, hasGlyphs) {
  const style = layer.style;
  const id = (suffix) => `layer-${layer.id}-${suffix}`;
  const opacity = (style.opacity ?? 0.8) * (layer.opacity ?? 1);
  const color = dataDriven(style, "color", style.color || "#3b82f6");
  const strokeColor = style.stroke_color || "#1e3a8a";
  const strokeWidth = style.stroke_width ?? 1;
  const base = { source: `src-${layer.id}`, "source-layer": "features" };
  const zooms = { minzoom: style.min_zoom ?? 0, maxzoom: style.max_zoom ?? 24 };
  const isCluster = ["==", ["get", "cluster"], true];
  const notCluster = ["!=", ["get", "cluster"], true];
  const out = [];

  if (layer.geometry_type === "point" && style.type === "heatmap") {
    out.push({
      id: id("heat"), type: "heatmap", ...base, ...zooms,
      paint: { "heatmap-weight": ["coalesce", ["get", "point_count"], 1], "heatmap-opacity": opacity },
    });
  } else if (layer.geometry_type === "point") {
    // Clusters (low zoom, from the database): bigger circles for more points, with the count.
    out.push({
      id: id("clusters"), type: "circle", ...base, ...zooms, filter: isCluster,
      paint: {
        "circle-color": style.color || "#3b82f6",
        "circle-opacity": opacity,
        "circle-radius": ["interpolate", ["linear"], ["get", "point_count"], 2, 10, 100, 18, 1000, 26, 10000, 34],
        "circle-stroke-color": "#ffffff",
        "circle-stroke-width": 1.5,
      },
    });
    if (hasGlyphs) {
      out.push({
        id: id("cluster-count"), type: "symbol", ...base, ...zooms, filter: isCluster,
        layout: { "text-field": ["to-string", ["get", "point_count"]], "text-font": FONT, "text-size": 11 },
        paint: { "text-color": "#ffffff" },
      });
    }
    out.push({
      id: id("points"), type: "circle", ...base, ...zooms, filter: notCluster,
      paint: {
        "circle-color": color,
        "circle-opacity": opacity,
        "circle-radius": ["/", dataDriven(style, "size", style.size ?? 6), 2], // size is a diameter
        "circle-stroke-color": strokeColor,
        "circle-stroke-width": strokeWidth,
        "circle-stroke-opacity": opacity,
      },
    });
  } else if (layer.geometry_type === "line") {
    out.push({
      id: id("lines"), type: "line", ...base, ...zooms,
      layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": color, "line-width": dataDriven(style, "size", strokeWidth), "line-opacity": opacity },
    });
  } else {
    out.push(
      { id: id("fill"), type: "fill", ...base, ...zooms, paint: { "fill-color": color, "fill-opacity": opacity } },
      {
        id: id("outline"), type: "line", ...base, ...zooms,
        paint: { "line-color": strokeColor, "line-width": strokeWidth, "line-opacity": opacity },
      },
    );
  }
  if (style.label_property && hasGlyphs) {
    // Labels only close in, where they fit; lines carry theirs along the line.
    out.push({
      id: id("labels"), type: "symbol", ...base, minzoom: Math.max(zooms.minzoom, 15.5), maxzoom: zooms.maxzoom,
      filter: notCluster,
      layout: {
        "text-field": ["to-string", ["get", style.label_property]], "text-font": FONT, "text-size": 11,
        "symbol-placement": layer.geometry_type === "line" ? "line" : "point",
        "text-offset": layer.geometry_type === "point" ? [0, 1] : [0, 0],
      },
      paint: { "text-color": "#333333", "text-halo-color": "#ffffff", "text-halo-width": 1.2 },
    });
  }
  for (const styleLayer of out) {
    styleLayer.layout = { ...styleLayer.layout, visibility: layer.visible ? "visible" : "none" };
    if (styleLayer.type !== "symbol") INTERACTIVE.push(styleLayer.id);
  }
  return out;
}

// Legend entries: the layer's legend_config, else its style's stops, else one swatch.
function legendItems(layer) {
  const style = layer.style;
  if (layer.legend.items?.length) return layer.legend.items;
  const stops = (style.stops || []).filter((stop) => stop.color);
  if (style.type !== "simple" && stops.length) {
    return stops.map((stop) => ({ label: stop.label || String(stop.value), color: stop.color }));
  }
  return [{ label: layer.name, color: style.color || "#3b82f6" }];
}

function renderLegend() {
  const legend = document.getElementById("legend");
  for (const layer of [...config.layers].reverse()) {
    if (!layer.visible || layer.legend.show === false) continue;
    const title = document.createElement("h2");
    title.textContent = layer.legend.title || layer.name;
    const list = document.createElement("ul");
    for (const item of legendItems(layer)) {
      const entry = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = item.color || "transparent";
      entry.append(swatch, item.label);
      list.append(entry);
    }
    legend.append(title, list);
  }
  legend.hidden = !legend.childElementCount;
}

// Popup content built from text nodes: feature properties are user data, never HTML.
function propertiesTable(properties) {
  const table = document.createElement("table");
  table.className = "popup-table";
  for (const [name, value] of Object.entries(properties)) {
    if (value === null || value === "") continue;
    const row = table.insertRow();
    const header = document.createElement("th");
    header.textContent = name;
    row.append(header);
    row.insertCell().textContent = String(value);
  }
  return table;
}

function onClick(map, event) {
  if (!INTERACTIVE.length) return;
  const [feature] = map.queryRenderedFeatures(event.point, { layers: INTERACTIVE });
  if (!feature) return;
  if (feature.properties.cluster) {
    map.easeTo({ center: event.lngLat, zoom: map.getZoom() + 2 });
    return;
  }
  const layer = config.layers.find((entry) => `src-${entry.id}` === feature.source);
  const content = document.createElement("div");
  const title = document.createElement("strong");
  title.textContent = layer ? layer.name : "";
  content.append(title, propertiesTable(feature.properties));
  new maplibregl.Popup({ maxWidth: "22rem" }).setLngLat(event.lngLat).setDOMContent(content).addTo(map);
}

// Attribute filters (e.g. {price__gte: 300000}) ask for a new TileJSON, whose tile URLs carry
// them; debounced so a dragged slider sends one request, not one per step.
const setLayerFilter = debounce(async (map, layerId, params) => {
  const layer = config.layers.find((entry) => entry.id === layerId);
  const response = await fetch(withToken(layer.tilejson, params), { credentials: "same-origin" });
  if (!response.ok) throw new Error(`TileJSON ${response.status}`);
  map.getSource(`src-${layerId}`).setTiles((await response.json()).tiles);
}, 300);

// A background-only style when the map has no basemap (no glyphs, so no labels either).
const EMPTY_STYLE = {
  version: 8, sources: {},
  layers: [{ id: "background", type: "background", paint: { "background-color": "#f8f9fa" } }],
};

const map = new maplibregl.Map({
  container: "map",
  style: config.basemap_style || EMPTY_STYLE,
  center: config.center,
  zoom: config.zoom,
  bearing: config.bearing,
  pitch: config.pitch,
  hash: false,
  attributionControl: { compact: true, customAttribution: "© OpenStreetMap contributors" },
});
map.addControl(new maplibregl.NavigationControl(), "top-right");
map.addControl(new maplibregl.ScaleControl(), "bottom-right");

map.on("load", () => {
  const hasGlyphs = Boolean(map.getStyle().glyphs);
  for (const layer of config.layers) {
    map.addSource(`src-${layer.id}`, { type: "vector", url: withToken(layer.tilejson) });
    for (const styleLayer of styleLayers(layer, hasGlyphs)) map.addLayer(styleLayer);
  }
  renderLegend();
  map.once("idle", () => {
    document.body.dataset.mapIdle = "true";
  });
});
map.on("click", (event) => onClick(map, event));
map.on("mousemove", (event) => {
  if (!INTERACTIVE.length) return; // an empty list would query every layer
  const hit = map.queryRenderedFeatures(event.point, { layers: INTERACTIVE }).length > 0;
  map.getCanvas().style.cursor = hit ? "pointer" : "";
});

window.meridianMap = map;
window.meridianViewer = { config, setLayerFilter: (layerId, params) => setLayerFilter(map, layerId, params) };
