// The latent atlas' canvas (a Streamlit v2 component; pages/_atlas_canvas.py mounts it).
// Draws the server's density image and a sample of points on a 2-D canvas, and reports back:
//   trigger "select": "box:x0,x1,y0,y1" | "lasso:x y;x y;..." | "rows:r1,r2"   (a drag, a lasso, a click)
//   state   "view":   [x0, x1, y0, y1] | null (the whole atlas)                 (wheel, pan, reset)
//   state   "hover":  the row under the pointer | null                          (its thumbnail comes back in data.hover)
// Nothing from the data is inserted as HTML: labels are set as text.

const MARGIN = { left: 58, right: 12, top: 10, bottom: 42 };
const HOVER_MS = 120, VIEW_MS = 250, PICK_PX = 8;

function decode(b64, Type) {
  if (!b64) return new Type(0);
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Type(bytes.buffer);
}

function niceTicks(low, high, count) {
  const span = high - low;
  if (!(span > 0)) return [low];
  const raw = span / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || 10 * power;
  const ticks = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

function tickText(t) {
  const a = Math.abs(t);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? t.toExponential(1) : String(Math.round(t * 1e6) / 1e6);
}

function insidePolygon(x, y, xs, ys) {
  let inside = false;
  for (let i = 0, j = xs.length - 1; i < xs.length; j = i++) {
    if ((ys[i] > y) !== (ys[j] > y) && x < xs[i] + ((y - ys[i]) * (xs[j] - xs[i])) / (ys[j] - ys[i])) inside = !inside;
  }
  return inside;
}

class Atlas {
  constructor(root) {
    this.root = root;
    this.canvas = root.querySelector("canvas");
    this.ctx = this.canvas.getContext("2d");
    this.tip = root.querySelector(".tip");
    this.legend = root.querySelector(".legend");
    this.mode = "box";
    this.drag = null;
    this.hoverRow = null;
    this.timers = {};
    this.image = null;
    this.bind();
  }

  // -- data from Python --------------------------------------------------------------------------------------
  update(data, setters) {
    this.setters = setters;
    const fresh = data.token !== this.token;
    this.token = data.token;
    this.data = data;
    if (fresh) {
      this.x = decode(data.x, Float32Array);
      this.y = decode(data.y, Float32Array);
      this.rows = decode(data.rows, Int32Array);
      this.codes = decode(data.codes, Uint8Array);
      this.rings = decode(data.rings, Float32Array);
      this.view = data.view.slice();
      this.imageView = data.view.slice();
      const image = new Image();
      image.onload = () => { this.image = image; this.draw(); };
      image.src = data.density;
      this.drawLegend();
    }
    this.root.querySelectorAll(".tools button[data-mode]").forEach((b) => b.classList.toggle("on", b.dataset.mode === this.mode));
    this.showTip();
    this.draw();
  }

  // -- geometry ----------------------------------------------------------------------------------------------
  size() {
    const width = Math.max(320, this.root.clientWidth), height = this.data.height;
    const ratio = window.devicePixelRatio || 1;
    if (this.canvas.width !== width * ratio || this.canvas.height !== height * ratio) {
      this.canvas.width = width * ratio; this.canvas.height = height * ratio;
      this.canvas.style.width = width + "px"; this.canvas.style.height = height + "px";
    }
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.w = width - MARGIN.left - MARGIN.right;
    this.h = height - MARGIN.top - MARGIN.bottom;
  }
  px(x) { const [x0, x1] = this.view; return MARGIN.left + ((x - x0) / (x1 - x0)) * this.w; }
  py(y) { const [, , y0, y1] = this.view; return MARGIN.top + ((y1 - y) / (y1 - y0)) * this.h; }
  dx(px) { const [x0, x1] = this.view; return x0 + ((px - MARGIN.left) / this.w) * (x1 - x0); }
  dy(py) { const [, , y0, y1] = this.view; return y1 - ((py - MARGIN.top) / this.h) * (y1 - y0); }
  local(event) { const r = this.canvas.getBoundingClientRect(); return [event.clientX - r.left, event.clientY - r.top]; }

  // -- drawing -----------------------------------------------------------------------------------------------
  draw() {
    if (!this.data) return;
    this.size();
    const ctx = this.ctx, d = this.data;
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.save();
    ctx.beginPath(); ctx.rect(MARGIN.left, MARGIN.top, this.w, this.h); ctx.clip();
    if (this.image) {
      const [a, b, c, e] = this.imageView;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.image, this.px(a), this.py(e), this.px(b) - this.px(a), this.py(c) - this.py(e));
    }
    this.drawPoints();
    this.drawRings();
    this.drawSelection(d.selection);
    if (this.drag) this.drawDrag();
    ctx.restore();
    this.drawAxes();
    this.root.dataset.drawn = String(performance.now());
    this.root.dataset.points = String(this.x.length);
  }

  selectedMask() {
    const s = this.data.selection;
    if (!s) return null;
    const n = this.x.length, mask = new Uint8Array(n);
    if (s.kind === "box") for (let i = 0; i < n; i++) mask[i] = this.x[i] >= s.box[0] && this.x[i] <= s.box[1] && this.y[i] >= s.box[2] && this.y[i] <= s.box[3];
    else if (s.kind === "lasso") for (let i = 0; i < n; i++) mask[i] = insidePolygon(this.x[i], this.y[i], s.xs, s.ys);
    else { const rows = new Set(s.rows); for (let i = 0; i < n; i++) mask[i] = rows.has(this.rows[i]); }
    return mask;
  }

  drawPoints() {
    const ctx = this.ctx, colours = this.data.colours, n = this.x.length, size = this.data.marker || 3;
    const mask = this.selectedMask();
    for (const pass of mask ? [0, 1] : [1]) {
      ctx.globalAlpha = mask && pass === 0 ? 0.3 : 0.85;
      const groups = colours.map(() => []);
      for (let i = 0; i < n; i++) if (!mask || mask[i] === pass) groups[this.codes[i] % colours.length].push(i);
      groups.forEach((members, k) => {
        ctx.fillStyle = colours[k];
        const grow = mask && pass === 1 ? 2 : 0;
        for (const i of members) ctx.fillRect(this.px(this.x[i]) - (size + grow) / 2, this.py(this.y[i]) - (size + grow) / 2, size + grow, size + grow);
      });
    }
    ctx.globalAlpha = 1;
  }

  drawRings() {
    const ctx = this.ctx;
    ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2;
    for (let i = 0; i + 1 < this.rings.length; i += 2) {
      ctx.beginPath(); ctx.arc(this.px(this.rings[i]), this.py(this.rings[i + 1]), 7, 0, 2 * Math.PI); ctx.stroke();
    }
  }

  outline(path, closed) {
    const ctx = this.ctx;
    ctx.fillStyle = "rgba(255, 75, 75, 0.12)"; ctx.strokeStyle = "rgba(214, 39, 40, 0.9)"; ctx.lineWidth = 1.5;
    ctx.setLineDash([5, 3]);
    ctx.beginPath();
    path.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (closed) ctx.closePath();
    ctx.fill(); ctx.stroke(); ctx.setLineDash([]);
  }

  drawSelection(s) {
    if (!s || this.drag) return;
    if (s.kind === "box") {
      const [a, b, c, e] = s.box;
      this.outline([[this.px(a), this.py(c)], [this.px(b), this.py(c)], [this.px(b), this.py(e)], [this.px(a), this.py(e)]], true);
    } else if (s.kind === "lasso") {
      this.outline(s.xs.map((x, i) => [this.px(x), this.py(s.ys[i])]), true);
    }
  }

  drawDrag() {
    const g = this.drag;
    if (g.kind === "box") {
      const [[a, b], [c, e]] = [g.start, g.end];
      this.outline([[a, b], [c, b], [c, e], [a, e]], true);
    } else if (g.kind === "lasso") this.outline(g.path, false);
  }

  drawAxes() {
    const ctx = this.ctx, [x0, x1, y0, y1] = this.view;
    ctx.strokeStyle = "#c8ccd4"; ctx.lineWidth = 1;
    ctx.strokeRect(MARGIN.left, MARGIN.top, this.w, this.h);
    ctx.fillStyle = "#555"; ctx.font = "11px sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (const t of niceTicks(x0, x1, 7)) {
      const p = this.px(t);
      ctx.beginPath(); ctx.moveTo(p, MARGIN.top + this.h); ctx.lineTo(p, MARGIN.top + this.h + 4); ctx.stroke();
      ctx.fillText(tickText(t), p, MARGIN.top + this.h + 6);
    }
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (const t of niceTicks(y0, y1, 6)) {
      const p = this.py(t);
      ctx.beginPath(); ctx.moveTo(MARGIN.left - 4, p); ctx.lineTo(MARGIN.left, p); ctx.stroke();
      ctx.fillText(tickText(t), MARGIN.left - 6, p);
    }
    const [xt, yt] = this.data.axes;
    ctx.textAlign = "center"; ctx.textBaseline = "bottom"; ctx.font = "12px sans-serif";
    ctx.fillText(xt, MARGIN.left + this.w / 2, MARGIN.top + this.h + MARGIN.bottom - 2);
    ctx.save(); ctx.translate(12, MARGIN.top + this.h / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "middle";
    ctx.fillText(yt, 0, 0); ctx.restore();
  }

  drawLegend() {
    this.legend.replaceChildren();
    const d = this.data;
    if (!d.legend) return;
    const title = document.createElement("div");
    title.className = "legend-title"; title.textContent = d.legend.title;
    this.legend.appendChild(title);
    d.legend.entries.forEach(([name, colour]) => {
      const row = document.createElement("div"), swatch = document.createElement("span");
      swatch.className = "swatch"; swatch.style.background = colour;
      row.appendChild(swatch); row.appendChild(document.createTextNode(name));
      this.legend.appendChild(row);
    });
  }

  // -- interaction -------------------------------------------------------------------------------------------
  nearest(px, py) {
    let best = -1, bestD = PICK_PX * PICK_PX;
    for (let i = 0; i < this.x.length; i++) {
      const ex = this.px(this.x[i]) - px, ey = this.py(this.y[i]) - py, d2 = ex * ex + ey * ey;
      if (d2 < bestD) { bestD = d2; best = i; }
    }
    return best;
  }

  later(name, ms, fn) { clearTimeout(this.timers[name]); this.timers[name] = setTimeout(fn, ms); }

  sendView() {
    const v = this.view.map((t) => Number(t.toPrecision(7)));
    this.later("view", VIEW_MS, () => this.setters.setStateValue("view", v));
  }

  showTip() {
    const d = this.data, tip = this.tip;
    if (this.hoverRow === null || !this.hoverAt) { tip.style.display = "none"; return; }
    tip.replaceChildren();
    const text = document.createElement("div");
    text.textContent = this.hoverText;
    tip.appendChild(text);
    if (d.hover && d.hover.row === this.hoverRow) {
      const img = document.createElement("img");
      img.src = d.hover.src; img.alt = "item " + this.hoverRow;
      tip.appendChild(img);
      const note = document.createElement("div"); note.className = "note"; note.textContent = d.hover.caption;
      tip.appendChild(note);
    }
    tip.style.display = "block";
    const [px, py] = this.hoverAt;
    tip.style.left = Math.min(px + 14, this.root.clientWidth - 180) + "px";
    tip.style.top = Math.max(py - 10, 0) + "px";
  }

  hover(px, py) {
    const i = this.nearest(px, py);
    const row = i < 0 ? null : this.rows[i];
    this.hoverAt = [px, py];
    if (row !== this.hoverRow) {
      this.hoverRow = row;
      const names = this.data.names;
      this.hoverText = row === null ? "" : "item " + row + (names ? " · " + this.data.colour_name + " " + names[this.codes[i] % names.length] : "");
      this.later("hover", HOVER_MS, () => this.setters.setStateValue("hover", row));
    }
    this.showTip();
  }

  finishDrag(event) {
    const g = this.drag;
    this.drag = null;
    const [px, py] = this.local(event);
    const moved = Math.hypot(px - g.start[0], py - g.start[1]) > 4;
    if (g.kind === "pan") { this.sendView(); return this.draw(); }
    if (!moved) {  // a click: one item, or one more with shift
      const i = this.nearest(px, py);
      if (i < 0) return this.draw();
      const s = this.data.selection, rows = event.shiftKey && s && s.kind === "rows" ? s.rows.slice() : [];
      if (!rows.includes(this.rows[i])) rows.push(this.rows[i]);
      this.setters.setTriggerValue("select", "rows:" + rows.join(","));
      return this.draw();
    }
    if (g.kind === "box") {
      const xs = [this.dx(g.start[0]), this.dx(px)].sort((a, b) => a - b), ys = [this.dy(g.start[1]), this.dy(py)].sort((a, b) => a - b);
      this.data.selection = { kind: "box", box: [xs[0], xs[1], ys[0], ys[1]] };
      this.setters.setTriggerValue("select", "box:" + [xs[0], xs[1], ys[0], ys[1]].map((t) => t.toPrecision(6)).join(","));
    } else {
      const step = Math.max(1, Math.ceil(g.path.length / 200)), pts = g.path.filter((_, i) => i % step === 0);
      const xs = pts.map((p) => this.dx(p[0])), ys = pts.map((p) => this.dy(p[1]));
      this.data.selection = { kind: "lasso", xs, ys };
      this.setters.setTriggerValue("select", "lasso:" + xs.map((x, i) => x.toPrecision(6) + " " + ys[i].toPrecision(6)).join(";"));
    }
    this.draw();
  }

  bind() {
    const c = this.canvas;
    this.root.querySelectorAll(".tools button[data-mode]").forEach((b) => {
      b.onclick = () => { this.mode = b.dataset.mode; this.root.querySelectorAll(".tools button[data-mode]").forEach((o) => o.classList.toggle("on", o === b)); };
    });
    this.root.querySelector(".tools .reset").onclick = () => { this.view = this.data.full.slice(); this.draw(); this.setters.setStateValue("view", null); };
    this.root.querySelector(".tools .png").onclick = () => {
      const a = document.createElement("a"); a.download = "atlas.png"; a.href = c.toDataURL("image/png"); a.click();
    };
    c.onmousedown = (event) => {
      const p = this.local(event);
      const kind = this.mode === "pan" || event.button === 1 ? "pan" : this.mode;
      this.drag = { kind, start: p, end: p, path: [p], view: this.view.slice() };
      event.preventDefault();
    };
    this.onMove = (event) => {
      const p = this.local(event), g = this.drag;
      if (!g) { if (event.composedPath().includes(c)) this.hover(p[0], p[1]); return; }
      g.end = p;
      if (g.kind === "lasso") g.path.push(p);
      if (g.kind === "pan") {
        const [x0, x1, y0, y1] = g.view, sx = ((p[0] - g.start[0]) / this.w) * (x1 - x0), sy = ((p[1] - g.start[1]) / this.h) * (y1 - y0);
        this.view = [x0 - sx, x1 - sx, y0 + sy, y1 + sy];
      }
      this.draw();
    };
    this.onUp = (event) => { if (this.drag) this.finishDrag(event); };
    window.addEventListener("mousemove", this.onMove);
    window.addEventListener("mouseup", this.onUp);
    c.onmouseleave = () => { if (!this.drag) { this.hoverRow = null; this.hoverAt = null; this.showTip(); } };
    c.ondblclick = () => this.root.querySelector(".tools .reset").click();
    c.onwheel = (event) => {
      event.preventDefault();
      const [px, py] = this.local(event), fx = this.dx(px), fy = this.dy(py);
      const k = Math.pow(1.0015, event.deltaY);
      const [x0, x1, y0, y1] = this.view;
      this.view = [fx + (x0 - fx) * k, fx + (x1 - fx) * k, fy + (y0 - fy) * k, fy + (y1 - fy) * k];
      this.draw();
      this.sendView();
    };
  }

  destroy() {
    window.removeEventListener("mousemove", this.onMove);
    window.removeEventListener("mouseup", this.onUp);
    Object.values(this.timers).forEach(clearTimeout);
  }
}

export default function (component) {
  const { data, setStateValue, setTriggerValue, parentElement } = component;
  const root = parentElement.querySelector(".atlas");
  if (!root.__atlas) root.__atlas = new Atlas(root);
  root.__atlas.update(data, { setStateValue, setTriggerValue });
  return () => { root.__atlas.destroy(); root.__atlas = null; };
}
