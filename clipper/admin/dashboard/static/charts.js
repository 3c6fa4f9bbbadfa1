"use strict";
// A tiny line chart drawn on a canvas, for the dashboard's live metrics.
//
// chart.draw(series, now, windowS) draws each series ({name, color, dashed, points:
// [[t, value or null], ...]}, t in seconds) over the last windowS seconds; a null value
// breaks the line (no traffic, nothing to show). The y axis starts at 0 and grows to the
// largest value shown, but never past the chart's `ceiling` (100 for a ratio in %).
// What was drawn is in the figure's data attributes (tests read them): data-max (the
// largest value shown), data-top (the top axis label), data-points (the most points one
// series drew) and data-colors (the series' stroke colours, JSON).

// Each series key gets its own colour, the first time it is seen, and keeps it: the
// palette's colours first, then hues spread by the golden angle (never one used before).
const PALETTE = ["#2f6fde", "#e07b39", "#23864b", "#b03fb5", "#c2362b", "#1f9ab0",
  "#7a5c2e", "#5b6478", "#d4a017", "#8a9a1b", "#e0529c", "#4b3fb0"];
const seriesColors = new Map();

function colorOf(key) {
  if (!seriesColors.has(key)) {
    const index = seriesColors.size;
    seriesColors.set(key, index < PALETTE.length ? PALETTE[index]
      : `hsl(${((index - PALETTE.length) * 137.508 + 17) % 360}, 62%, 40%)`);
  }
  return seriesColors.get(key);
}

class LineChart {
  constructor(figure, format, { ceiling = Infinity } = {}) {
    this.figure = figure;
    this.ceiling = ceiling;
    this.canvas = figure.querySelector("canvas");
    this.legend = figure.querySelector(".legend");
    this.format = format;
  }

  draw(series, now, windowS) {
    const ctx = this.resize();
    const { width, height } = this.canvas.getBoundingClientRect();
    const pad = { left: 46, right: 10, top: 10, bottom: 20 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const maxValue = maxOf(series, now - windowS);
    const top = Math.min(this.ceiling, niceCeiling(maxValue * 1.1));
    const x = (t) => pad.left + plotW * (1 - (now - t) / windowS);
    const y = (v) => pad.top + plotH * (1 - Math.min(v, top) / top);

    ctx.clearRect(0, 0, width, height);
    this.drawGrid(ctx, pad, plotW, top, y, windowS);
    let points = 0;
    for (const line of series) {
      points = Math.max(points, this.drawLine(ctx, line, x, y, now - windowS));
    }
    Object.assign(this.figure.dataset, {
      max: String(maxValue), top: this.format(top), points: String(points),
      colors: JSON.stringify(series.map((line) => line.color)),
    });
    this.drawLegend(series);
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const { width, height } = this.canvas.getBoundingClientRect();
    if (this.canvas.width !== Math.round(width * ratio)) {
      this.canvas.width = Math.round(width * ratio);
      this.canvas.height = Math.round(height * ratio);
    }
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return ctx;
  }

  drawGrid(ctx, pad, plotW, top, y, windowS) {
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7385";
    ctx.strokeStyle = "#eceef2";
    ctx.lineWidth = 1;
    ctx.setLineDash([]);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const value = (top * i) / 4;
      ctx.beginPath();
      ctx.moveTo(pad.left, Math.round(y(value)) + 0.5);
      ctx.lineTo(pad.left + plotW, Math.round(y(value)) + 0.5);
      ctx.stroke();
      ctx.fillText(this.format(value), pad.left - 6, y(value));
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const fraction of [0, 0.5, 1]) {
      const secondsAgo = Math.round(windowS * (1 - fraction));
      const label = secondsAgo === 0 ? "now" : `-${secondsAgo}s`;
      ctx.fillText(label, pad.left + plotW * fraction, y(0) + 5);
    }
  }

  // Returns the number of points drawn.
  drawLine(ctx, line, x, y, since) {
    ctx.strokeStyle = line.color;
    ctx.lineWidth = 2;
    ctx.setLineDash(line.dashed ? [5, 4] : []);
    ctx.beginPath();
    let drawing = false;
    let drawn = 0;
    for (const [t, value] of line.points) {
      if (t < since || value === null || !Number.isFinite(value)) {
        drawing = false;
        continue;
      }
      if (drawing) ctx.lineTo(x(t), y(value));
      else ctx.moveTo(x(t), y(value));
      drawing = true;
      drawn++;
    }
    ctx.stroke();
    return drawn;
  }

  drawLegend(series) {
    this.legend.replaceChildren();
    for (const line of series) {
      if (line.hideInLegend) continue;
      const last = lastValue(line.points);
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = line.color;
      item.append(swatch, `${line.name}: ${last === null ? "–" : this.format(last)}`);
      this.legend.append(item);
    }
    if (!series.length) {
      const item = document.createElement("li");
      item.className = "muted";
      item.textContent = "no data yet";
      this.legend.append(item);
    }
  }
}

function maxOf(series, since) {
  let max = 0;
  for (const line of series) {
    for (const [t, value] of line.points) {
      if (t >= since && value !== null && value > max) max = value;
    }
  }
  return max;
}

function lastValue(points) {
  for (let i = points.length - 1; i >= 0; i--) {
    if (points[i][1] !== null) return points[i][1];
  }
  return null;
}

// The smallest of 1, 2, 2.5, 5 times a power of ten that holds value (1 for 0).
function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}
