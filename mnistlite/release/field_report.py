"""The weekly field report: Markdown, a PNG of accuracy per week per model, and the text of an issue.

``write`` puts report.md, accuracy.png, outcome.json and (when something needs a person) issue.json
into one folder. The PNG is drawn with Pillow's bitmap font, like the gate's pictures.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..files import atomic_write_bytes
from ..metrics import percent
from .report import _font, _png_bytes

MARKER = "<!-- mnistlite-field-report -->"   # lets the workflow find and update its one open issue
REPORT_MD, ACCURACY_PNG, OUTCOME_JSON, ISSUE_JSON = "report.md", "accuracy.png", "outcome.json", "issue.json"
W, H, LEFT, RIGHT, TOP, BOTTOM = 720, 400, 56, 16, 28, 40   # chart geometry (pixels)
COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189), (140, 86, 75), (227, 119, 194),
          (127, 127, 127), (188, 189, 34), (23, 190, 207))


def _label(r: dict) -> str:
    return f"v{r['registry_version']} {r['model_sha256'][:10]}"


def accuracy_png(history: list, records: list, floor: float, path) -> Path:
    """Accuracy per week (x) for each model of ``records`` (lines; production thick) over the whole field
    history, with production's floor dashed red."""
    from PIL import Image, ImageDraw

    models = [r["model_sha256"] for r in records]
    points = {m: sorted((h["week"], h["accuracy"]) for h in history if h["model_sha256"] == m)
              for m in models}
    weeks = sorted({w for pts in points.values() for w, _ in pts})
    values = [a for pts in points.values() for _, a in pts] + [floor]
    lo = max(0.0, min(values) - 0.02)
    lo = int(lo * 20) / 20                  # a 5 pp grid
    img = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(img)
    font = _font()
    x0, x1, y0, y1 = LEFT, W - RIGHT, TOP, H - BOTTOM - 14 * ((len(models) + 2) // 3)
    span = max(weeks[-1] - weeks[0], 1) if weeks else 1

    def xy(week, acc):
        x = x0 + (x1 - x0) * ((week - weeks[0]) / span if len(weeks) > 1 else 0.5)
        return x, y1 - (y1 - y0) * (acc - lo) / (1.0 - lo)

    draw.text((4, 6), "accuracy per week, each model on the week's good images", font=font, fill="black")
    for k in range(int(round((1.0 - lo) / 0.05)) + 1):
        acc = lo + 0.05 * k
        y = xy(weeks[0] if weeks else 0, acc)[1]
        draw.line([x0, y, x1, y], fill=(230, 230, 230))
        draw.text((4, y - 5), f"{100 * acc:.0f}%", font=font, fill=(90, 90, 90))
    step = max(1, len(weeks) // 12)
    for w in weeks[::step]:
        x = xy(w, lo)[0]
        draw.text((x - 8, y1 + 4), f"w{w}", font=font, fill=(90, 90, 90))
    fy = xy(weeks[0] if weeks else 0, floor)[1]
    for x in range(x0, x1, 12):
        draw.line([x, fy, min(x + 6, x1), fy], fill=(200, 40, 40), width=2)
    # under the line at the left, where the newest (rightmost) weeks do not run into it
    draw.text((x0 + 6, fy + 4), f"production floor {percent(floor)}", font=font, fill=(200, 40, 40))
    for i, r in enumerate(records):
        color, width = COLORS[i % len(COLORS)], 3 if r["production"] else 1
        pts = [xy(w, a) for w, a in points[r["model_sha256"]]]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=width)
        for x, y in pts:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        lx, ly = x0 + (i % 3) * 220, y1 + 20 + 14 * (i // 3)
        draw.rectangle([lx, ly + 2, lx + 10, ly + 10], fill=color)
        name = _label(r) + (" production" if r["production"] else "")
        draw.text((lx + 14, ly), name, font=font, fill="black")
    draw.rectangle([x0, y0, x1, y1], outline=(160, 160, 160))
    atomic_write_bytes(path, _png_bytes(img))
    return Path(path)


def headline(outcome) -> str:
    if outcome.status == "quarantined":
        v = outcome.validation
        return (f"### ⚠️ Field report {outcome.week}: quarantined by the data gate "
                f"({v['bad_count']} of {v['count']} images bad)")
    p = outcome.records[0]
    icon, word = ("✅", "fine") if outcome.status == "pass" else ("❌", "production failed")
    return (f"### {icon} Field report {outcome.week}: {word}: production {percent(p['accuracy'])} on "
            f"{p['n']} images (MNIST test {percent(p['mnist_accuracy'])})")


def _num(x, fmt="{:.4f}") -> str:
    return "–" if x is None else fmt.format(x)


def render_markdown(outcome, history_uri: str = "", with_image: bool = True) -> str:
    """The report of a scored week: checks on production, every model's numbers, production's recalls;
    ``with_image`` links accuracy.png beside it (an issue cannot: it names the file instead)."""
    if outcome.status == "quarantined":
        return issue(outcome)["body"]
    lines = [headline(outcome), MARKER, ""]
    lines += ["| check | result | detail |", "| --- | :---: | --- |"]
    lines += [f"| `{c['name']}` | {'✅' if c['passed'] else '❌'} | {c['detail']} |" for c in outcome.checks]
    lines += ["", "| model | created | week accuracy | MNIST test | ECE | abstain rate |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in outcome.records:
        name = f"`{_label(r)}`" + (" **production**" if r["production"] else "")
        lines.append(f"| {name} | {r['model_created']} | {percent(r['accuracy'])} | "
                     f"{percent(r['mnist_accuracy'])} | {_num(r['ece'])} | "
                     f"{_num(r['abstain_rate'], '{:.2%}')} |")
    p = outcome.records[0]
    lines += ["", "| digit | images | week recall | MNIST recall | Δ |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    for k, (r, n) in enumerate(zip(p["recall"], p["digit_counts"], strict=True)):
        lines.append(f"| {k} | {n} | {percent(r)} | {percent(p['mnist_recall'][k])} | "
                     f"{100 * (r - p['mnist_recall'][k]):+.2f} pp |")
    v = outcome.validation
    chart = f"![accuracy per week per model]({ACCURACY_PNG})" if with_image else \
        f"The chart of accuracy per week per model is {ACCURACY_PNG} in the run's artifacts."
    lines += ["", chart, "",
              f"Data gate: {v['count']} images, {v['good']} good, {v['bad_count']} bad. "
              f"History: {history_uri or 'the registry bucket'} ({len(outcome.history)} records)."]
    return "\n".join(lines) + "\n"


def issue(outcome) -> dict:
    """{title, body} of the issue to open (or update) for a failed or quarantined week."""
    if outcome.status == "quarantined":
        v = outcome.validation
        kinds: dict = {}
        for b in v["bad"]:
            kinds[b["reason"].split(":")[0]] = kinds.get(b["reason"].split(":")[0], 0) + 1
        title = (f"Data gate quarantined {outcome.week}: {v['bad_count']} of {v['count']} images bad "
                 f"({percent(v['bad_fraction'])})")
        body = [f"### ⚠️ {title}", MARKER, "",
                f"The data gate refused {outcome.week}: " + "; ".join(v["failures"]) + ".",
                "Nothing from this week is used for training or scoring.", "",
                "| what | count |", "| --- | ---: |",
                f"| images | {v['count']} |", f"| good | {v['good']} |", f"| bad | {v['bad_count']} |"]
        body += [f"| bad: {k} | {n} |" for k, n in sorted(kinds.items(), key=lambda t: -t[1])]
        body += ["", "First bad files:", ""] + [f"- `{b['file']}`: {b['reason']}" for b in v["bad"][:20]]
        body += ["", f"The full bad-file report: `{outcome.report_uri}`.", "",
                 "**Data provider:** please check these files and upload a corrected dataset for "
                 f"{outcome.week}."]
        return {"title": title, "body": "\n".join(body) + "\n", "kind": "quarantined"}
    p = outcome.records[0]
    title = f"Field report: production failed on {outcome.week} (" + \
        "; ".join(c["name"] for c in outcome.checks if not c["passed"]) + ")"
    return {"title": title, "body": render_markdown(outcome, with_image=False), "kind": "production",
            "accuracy": p["accuracy"]}


def write(outcome, out_dir, history_uri: str = "") -> dict:
    """Write report.md, outcome.json, accuracy.png (scored weeks) and issue.json (unless it passed)."""
    out_dir = Path(out_dir)
    paths = {"markdown": out_dir / REPORT_MD, "outcome": out_dir / OUTCOME_JSON, "png": None, "issue": None}
    if outcome.records:
        p = outcome.records[0]
        floor = p["mnist_accuracy"] - outcome.policy["max_accuracy_drop"]
        paths["png"] = accuracy_png(outcome.history, outcome.records, floor, out_dir / ACCURACY_PNG)
    doc = {"status": outcome.status, "week": outcome.week, "reasons": outcome.reasons,
           "checks": outcome.checks, "records": outcome.records, "policy": outcome.policy,
           "report_uri": outcome.report_uri,
           "validation": {k: v for k, v in (outcome.validation or {}).items() if k != "bad"}}
    atomic_write_bytes(paths["outcome"], (json.dumps(doc, indent=1) + "\n").encode())
    atomic_write_bytes(paths["markdown"], render_markdown(outcome, history_uri).encode())
    stale = out_dir / ISSUE_JSON
    if outcome.status != "pass":
        paths["issue"] = stale
        atomic_write_bytes(stale, (json.dumps(issue(outcome), indent=1) + "\n").encode())
    elif stale.exists():
        stale.unlink()             # a rerun that passes must not leave an old issue for the workflow
    return paths
