// The drawing pad: strokes drawn with pointer events (mouse, touch, pen) on a <canvas>. Strokes are kept
// as points in pad units (0..1), so the pad redraws sharp at any size and the pen keeps its width
// relative to the pad. app.js uses it through window.mnistlitePad(canvas, {onStart, onEnd}).
"use strict";

window.mnistlitePad = (pad, { onStart, onEnd }) => {
  const PEN = 0.07;  // stroke width as a share of the pad: an MNIST pen on a digit drawn ~60% of the pad high
  const INK = "#111111";
  const ctx = pad.getContext("2d");
  let strokes = [];    // finished strokes, each a list of [x, y] in pad units
  let current = null;  // the stroke being drawn: {id, points}
  let frame = 0;

  function render() {
    frame = 0;
    const s = pad.width;
    ctx.fillStyle = "#ffffff";  // opaque paper: the service sees dark ink on white, like a photo of a page
    ctx.fillRect(0, 0, s, s);
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    ctx.lineWidth = PEN * s;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const points of strokes) drawStroke(points, s);
    if (current) drawStroke(current.points, s);
  }

  function drawStroke(pts, s) {
    ctx.beginPath();
    if (pts.length === 1) {  // a tap is a dot
      ctx.arc(pts[0][0] * s, pts[0][1] * s, (PEN * s) / 2, 0, 2 * Math.PI);
      ctx.fill();
      return;
    }
    ctx.moveTo(pts[0][0] * s, pts[0][1] * s);
    // Quadratic curves through the midpoints: a smooth line, however sparse the pointer events.
    for (let i = 1; i < pts.length - 1; i++) {
      const mx = ((pts[i][0] + pts[i + 1][0]) / 2) * s, my = ((pts[i][1] + pts[i + 1][1]) / 2) * s;
      ctx.quadraticCurveTo(pts[i][0] * s, pts[i][1] * s, mx, my);
    }
    const last = pts[pts.length - 1];
    ctx.lineTo(last[0] * s, last[1] * s);
    ctx.stroke();
  }

  function resize() {
    const size = Math.max(1, Math.round(pad.clientWidth * (window.devicePixelRatio || 1)));
    if (pad.width !== size || pad.height !== size) {
      pad.width = size;
      pad.height = size;
    }
    render();
  }

  function point(e) {
    const r = pad.getBoundingClientRect();
    const x = (e.clientX - r.left - pad.clientLeft) / pad.clientWidth;
    const y = (e.clientY - r.top - pad.clientTop) / pad.clientHeight;
    return [Math.min(Math.max(x, 0), 1), Math.min(Math.max(y, 0), 1)];
  }

  pad.addEventListener("pointerdown", (e) => {
    if (current || (e.pointerType === "mouse" && e.button !== 0)) return;  // one pen at a time
    e.preventDefault();
    onStart();
    pad.setPointerCapture(e.pointerId);
    pad.focus({ preventScroll: true });
    current = { id: e.pointerId, points: [point(e)] };
    if (!frame) frame = requestAnimationFrame(render);
  });

  pad.addEventListener("pointermove", (e) => {
    if (!current || e.pointerId !== current.id) return;
    const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) current.points.push(point(ev));
    if (!frame) frame = requestAnimationFrame(render);
  });

  function end(e) {
    if (!current || e.pointerId !== current.id) return;
    strokes.push(current.points);
    current = null;
    render();  // now, so the picture sent is the finished stroke
    onEnd();
  }
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  pad.addEventListener("contextmenu", (e) => e.preventDefault());  // a long press draws, it opens no menu

  if (typeof ResizeObserver === "function") new ResizeObserver(resize).observe(pad);
  window.addEventListener("resize", resize);
  resize();

  return {
    clear() {
      strokes = [];
      current = null;
      render();
    },
  };
};
