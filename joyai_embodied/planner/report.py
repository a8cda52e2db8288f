"""Write a planner run as ``report.json`` and a self-contained-folder ``report.html``.

The HTML page shows, per episode, what the planner saw (the observation, with the picked object
outlined in yellow and the plate in cyan), what it imagined, the scene after acting, and every
question it asked the world model. Images are PNG files next to the page.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .records import Episode

PICK_COLOUR = (255, 221, 0)
PLACE_COLOUR = (0, 220, 255)


def summarise(episodes: Sequence[Episode]) -> dict[str, Any]:
    """Success rate, verification agreement and per-template success over ``episodes``."""
    count = len(episodes)
    verified = [e for e in episodes if e.verification is not None]
    by_template: dict[str, list[int]] = {}
    for episode in episodes:
        key = str(episode.plan.goal.template) if episode.plan.goal is not None else "unparsed"
        by_template.setdefault(key, [0, 0])
        by_template[key][0] += int(episode.success)
        by_template[key][1] += 1
    return {
        "episodes": count,
        "success_rate": (sum(e.success for e in episodes) / count) if count else 0.0,
        "verified_rate": (sum(e.verification.verified for e in verified) / count) if count else 0.0,
        "verification_agreement": (sum(e.verification.verified == e.success for e in verified) / len(verified)
                                   if verified else None),
        "cannot_plan": sum(not e.plan.ok for e in episodes),
        "success_by_template": {k: {"success": s, "episodes": n} for k, (s, n) in sorted(by_template.items())},
        "mean_seconds": (sum(e.seconds for e in episodes) / count) if count else 0.0,
    }


def progress_line(index: int, total: int, episode: Episode) -> str:
    """One line per finished episode: instruction, what was picked, outcome and verification."""
    plan = episode.plan
    head = f"[{index + 1}/{total}] seed {episode.seed}: {plan.instruction!r}"
    if not plan.ok:
        return f"{head} -> {plan.error}"
    return (f"{head} -> pick {plan.pick.name} (id {plan.pick.id}): {episode.status}, "
            f"verified {_verified(episode)}, {len(plan.queries)} queries, {len(plan.imagined)} imagined, "
            f"{episode.seconds:.1f} s")


def summary_table(episodes: Sequence[Episode]) -> str:
    """A fixed-width table of the episodes (seed, template, pick, intended pick, outcome, verified, time)."""
    header = ("seed", "tpl", "picked", "intended", "result", "verified", "s")
    rows = []
    for episode in episodes:
        plan = episode.plan
        target = episode.target or {}
        rows.append((str(episode.seed), str(plan.goal.template) if plan.goal else "-",
                     plan.pick.name if plan.pick else "-", str(target.get("pick_name", "-")), episode.status,
                     _verified(episode), f"{episode.seconds:.1f}"))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def summary_line(episodes: Sequence[Episode]) -> str:
    """Success rate and how often the planner's own verification agreed with the simulator."""
    summary = summarise(episodes)
    agreement = summary["verification_agreement"]
    return (f"success {summary['success_rate']:.0%} ({sum(e.success for e in episodes)}/{len(episodes)}), "
            f"verification agrees with the simulator in {'-' if agreement is None else f'{agreement:.0%}'} "
            f"of executed episodes")


def _verified(episode: Episode) -> str:
    return "-" if episode.verification is None else ("yes" if episode.verification.verified else "no")


def write_report(episodes: Sequence[Episode], out_dir: str | Path,
                 meta: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Writes ``report.json``, ``report.html`` and the PNGs they refer to into ``out_dir``.

    Args:
        episodes: the episodes to report, in order.
        out_dir: folder to write into (created if needed; files of the same name are replaced).
        meta: extra facts for the header (backend, seed, image size...).

    Returns:
        ``{"json": path, "html": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    details = []
    for index, episode in enumerate(episodes):
        detail = episode.to_dict()
        detail["index"] = index
        detail["images"] = _write_images(episode, out, f"ep{index:03d}")
        details.append(detail)
    report = {**summarise(episodes), "episodes_detail": details,
              "meta": {"created": _dt.datetime.now().isoformat(timespec="seconds"), **dict(meta or {})}}
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report, indent=2, default=_json_default), encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(_render_html(report), encoding="utf-8")
    return {"json": json_path, "html": html_path}


# -- images ------------------------------------------------------------------------------------
def _write_images(episode: Episode, out: Path, prefix: str) -> dict[str, Any]:
    obs = episode.observation
    images: dict[str, Any] = {"imagined": []}
    plan = episode.plan
    annotated = np.array(obs["rgb"], dtype=np.uint8, copy=True)
    segmentation = obs.get("segmentation")
    if segmentation is not None:
        for obj, colour in ((plan.place, PLACE_COLOUR), (plan.pick, PICK_COLOUR)):
            if obj is not None:
                outline_mask(annotated, np.asarray(segmentation) == obj.id, colour)
    images["before"] = save_png(out / f"{prefix}_before.png", annotated)
    if episode.act is not None and episode.act.observation is not None:
        images["after"] = save_png(out / f"{prefix}_after.png", episode.act.observation["rgb"])
    for k, record in enumerate(plan.imagined):
        path = save_png(out / f"{prefix}_imagined{k}.png", record.view.rgb)
        images["imagined"].append({"file": path, "label": record.label, "reason": record.reason})
    return images


def outline_mask(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], thickness: int = 2) -> None:
    """Draws the boundary of ``mask`` onto ``image`` in place."""
    if not mask.any():
        return
    grown = mask.copy()
    for _ in range(thickness):
        padded = np.pad(grown, 1)
        grown = (padded[1:-1, 1:-1] | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:])
    image[grown & ~mask] = colour


def save_png(path: Path, rgb: np.ndarray) -> str:
    from PIL import Image  # pillow comes with the "sim" extra, which a planner run needs anyway

    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(path)
    return path.name


# -- html --------------------------------------------------------------------------------------
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top}th{background:#f3f3f3}.success{color:#197a1f;font-weight:600}.failure,.cannot{color:#b3261e;
font-weight:600}figure{display:inline-block;margin:.3em;vertical-align:top}figure img{max-width:420px;
border:1px solid #aaa}figcaption{font-size:.85em;max-width:420px}section{border-top:2px solid #ddd;margin-top:1.5em}
code{background:#f6f6f6;padding:0 .2em}.small{font-size:.85em;color:#555}
"""


def _render_html(report: Mapping[str, Any]) -> str:
    esc = html.escape
    meta = report.get("meta", {})
    rows = []
    for d in report["episodes_detail"]:
        rows.append(
            f"<tr><td><a href='#ep{d['index']}'>{d['index']}</a></td><td>{esc(str(d['seed']))}</td>"
            f"<td>{esc(d['instruction'])}</td><td>{esc(d['pick']['name']) if d['pick'] else '-'}</td>"
            f"<td class='{_css(d['status'])}'>{esc(d['status'])}</td>"
            f"<td>{_yes_no(d['verified'])}</td><td>{len(d['queries'])}</td><td>{len(d['imagined_views'])}</td>"
            f"<td>{d['seconds']:.1f}</td></tr>")
    agreement = report.get("verification_agreement")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>joyai-embodied planner report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Planner report</h1>",
        f"<p class='small'>{esc(', '.join(f'{k}: {v}' for k, v in meta.items()))}</p>",
        f"<p><b>{report['episodes']}</b> episodes, success rate <b>{report['success_rate']:.0%}</b>; "
        f"world-model verification agrees with the simulator in "
        f"<b>{'-' if agreement is None else f'{agreement:.0%}'}</b> of executed episodes; "
        f"{report['cannot_plan']} could not be planned.</p>",
        "<table><tr><th>#</th><th>seed</th><th>instruction</th><th>picked</th><th>result</th>"
        "<th>verified</th><th>queries</th><th>imagined</th><th>s</th></tr>", *rows, "</table>",
        "<p class='small'>Outlines on the observation: <span style='background:#ffdd00'>&nbsp;picked&nbsp;</span> "
        "<span style='background:#00dcff'>&nbsp;place&nbsp;</span>.</p>",
    ]
    for d in report["episodes_detail"]:
        parts.append(_render_episode(d))
    parts.append("</body></html>")
    return "\n".join(parts)


def _render_episode(d: Mapping[str, Any]) -> str:
    esc = html.escape
    images = d["images"]
    figures = [_figure(images["before"], "observation (what the planner saw)")]
    figures += [_figure(v["file"], f"imagined: {esc(v['label'])} &mdash; {esc(v['reason'])}", escape=False)
                for v in images["imagined"]]
    if images.get("after"):
        figures.append(_figure(images["after"], "after acting"))
    queries = "".join(
        f"<tr><td>{esc(q['kind'])}</td><td>{esc(q['question'])}</td><td>{esc(q['answer'])}</td>"
        f"<td>{esc(q['frame'])}</td></tr>" for q in d["queries"])
    target = d.get("target") or {}
    truth = (f"intended pick: {esc(str(target.get('pick_name')))} (picked it: {_yes_no(d['picked_intended'])})"
             if target else "")
    return (
        f"<section id='ep{d['index']}'><h2>Episode {d['index']} &mdash; seed {esc(str(d['seed']))}: "
        f"<span class='{_css(d['status'])}'>{esc(d['status'])}</span></h2>"
        f"<p><code>{esc(d['instruction'])}</code></p>"
        + (f"<p class='failure'>{esc(d['error'])}</p>" if d.get("error") else "")
        + (f"<p>Plan: pick <b>{esc(d['pick']['name'])}</b> (instance {d['pick']['id']}), place on "
           f"<b>{esc(d['place']['name'])}</b> at {d['place_position']} m. Why: {esc(d['rationale'])}.</p>"
           if d.get("pick") else "")
        + (f"<p>Verification: {esc(d['verification'] or '')} &mdash; simulator success: "
           f"{_yes_no(d['success'])}. <span class='small'>{truth}</span></p>" if d.get("verification") else "")
        + "<div>" + "".join(figures) + "</div>"
        + "<table><tr><th>query</th><th>question</th><th>answer</th><th>frame</th></tr>" + queries + "</table>"
        + "</section>")


def _figure(file: str, caption: str, escape: bool = True) -> str:
    text = html.escape(caption) if escape else caption
    return f"<figure><img src='{html.escape(file)}' alt='{html.escape(file)}'><figcaption>{text}</figcaption></figure>"


def _css(status: str) -> str:
    return {"success": "success", "cannot plan": "cannot"}.get(status, "failure")


def _yes_no(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
