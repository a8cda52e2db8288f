"""LIBERO episodes recorded and reported: ``eval --libero SUITE --record PATH`` and ``demo --libero SUITE``.

    joyai-embodied demo --libero libero_spatial                  # tasks 0,1 x init state 0 -> out/demo_libero/
    joyai-embodied demo --libero libero_goal --tasks 3 --init-states 0-1 --record out/goal.rrd
    joyai-embodied eval --libero libero_spatial --tasks 0 --init-states 0-4 --record out/spatial.mcap

The LIBERO planner is not changed: it is given a :class:`~joyai_embodied.recording.RecordingWorldModel`,
which logs every observe / relation / edit / imagine call it makes; an
:class:`~joyai_embodied.recording.EpisodeRecorder` (the hooks of
:func:`~joyai_embodied.evaluation.libero.evaluate_libero`) adds each episode's instruction, final frame and
LIBERO's verdict. The demo's ``report.html`` shows per episode the observation with the chosen object
outlined, the imagined outcome (the world model's edit, imagined from the observing camera), the final frame,
the query table and success by LIBERO's own check.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..planner.report import PICK_COLOUR, STYLE, outline_mask, save_png
from ..recording.recording_world_model import EpisodeRecorder, EpisodeTrace, RecordingWorldModel
from .libero import evaluate_libero, format_task_table, parse_index_list

#: ``demo --libero`` default: two tasks, one init state each (a short demo; ~10 s per episode here).
DEMO_TASKS, DEMO_INIT_STATES = "0,1", "0"


def run_libero_demo(args: argparse.Namespace) -> int:
    """``joyai-embodied demo --libero SUITE``: a few episodes, the HTML report, optionally a recording.

    Returns:
        0 when every episode ran (whatever LIBERO's verdict).

    Raises:
        InvalidInputError: unknown suite, a task or init state out of range (one line, exit 2).
    """
    from ..recording.recorders import preload_recorder
    from ..world_model import WorldModel

    from ..errors import InvalidInputError

    record = getattr(args, "record", None)
    preload_recorder(record)
    if getattr(args, "via", "inprocess") != "inprocess":
        raise InvalidInputError("--via", "'inprocess' with --libero (the LIBERO env runs in this process)",
                                repr(args.via))
    tasks = parse_index_list(args.tasks or DEMO_TASKS, "tasks")
    states = parse_index_list(args.init_states or DEMO_INIT_STATES, "init-states")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)  # an unwritable --out fails now, not after the episodes
    wm = RecordingWorldModel(WorldModel.load(args.backend, address=args.address), keep_frames=True,
                             imagine_edits=True)
    hooks = EpisodeRecorder(wm, record=record, keep=True)
    try:
        report = evaluate_libero(args.libero, tasks=tasks, init_states=states, out_dir=out, world_model=wm,
                                 progress=lambda line: print(line, flush=True), hooks=hooks,
                                 width=args.width, height=args.height)
    finally:
        hooks.close()
        wm.close()
    paths = write_libero_report(report, hooks.episodes, out, meta={
        "suite": args.libero, "backend": args.backend, "size": f"{args.width}x{args.height}"})
    print(format_task_table(report))
    print(f"report: {paths['html']}  (data: {paths['json']})")
    if record:
        print(f"recording: {record}")
    return 0


# -- the report -----------------------------------------------------------------------------------------
def write_libero_report(report: Mapping[str, Any], episodes: Sequence[tuple[dict[str, Any], EpisodeTrace]],
                        out_dir: str | Path, meta: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Writes ``report.html``, ``report.json`` and the PNGs they show into ``out_dir``.

    Args:
        report: :func:`evaluate_libero`'s result.
        episodes: ``(record, trace)`` per episode (:attr:`EpisodeRecorder.episodes`, ``keep_frames`` on).
        out_dir: the folder (created if needed).
        meta: facts for the page's header.

    Returns:
        ``{"html": path, "json": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    details = []
    for index, (record, trace) in enumerate(episodes):
        details.append({**record, "index": index, "queries": trace.queries,
                        "edits": [edit.label for edit in trace.edits],
                        "images": _write_images(record, trace, out, f"libero{index:03d}")})
    data = {key: report[key] for key in ("suite", "success_rate", "referring_accuracy", "median_wall_s",
                                         "failures") if key in report}
    data.update(episodes_detail=details, meta={"created": _dt.datetime.now().isoformat(timespec="seconds"),
                                               **dict(meta or {})})
    json_path, html_path = out / "report.json", out / "report.html"
    json_path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    html_path.write_text(_render_html(data), encoding="utf-8")
    return {"html": html_path, "json": json_path}


def _write_images(record: Mapping[str, Any], trace: EpisodeTrace, out: Path, prefix: str) -> dict[str, str]:
    images: dict[str, str] = {}
    first = trace.first_observation
    if first is not None:
        annotated = np.array(first["rgb"], dtype=np.uint8, copy=True)
        chosen = _chosen_id(record, trace)
        if chosen is not None and first.get("segmentation") is not None:
            outline_mask(annotated, np.asarray(first["segmentation"]) == chosen, PICK_COLOUR)
        images["observation"] = save_png(out / f"{prefix}_observation.png", annotated)
    imagined = next((edit for edit in trace.edits if edit.view is not None), None)
    if imagined is not None:
        images["imagined"] = save_png(out / f"{prefix}_imagined.png", imagined.view.rgb)
        images["imagined_label"] = imagined.label
    final = trace.final_observation or trace.last_observation
    if final is not None:
        images["final"] = save_png(out / f"{prefix}_final.png", final["rgb"])
    return images


def _chosen_id(record: Mapping[str, Any], trace: EpisodeTrace) -> int | None:
    """The instance id of the object the planner chose, found by its name in the first observed scene."""
    if not record.get("chosen") or trace.first_scene is None:
        return None
    return next((o.id for o in trace.first_scene.objects if o.name == record["chosen"]), None)


def _render_html(data: Mapping[str, Any]) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td><a href='#ep{d['index']}'>{d['index']}</a></td><td>{d['task_id']}</td><td>{d['init_state']}</td>"
        f"<td>{esc(d['instruction'])}</td><td>{esc(str(d['chosen'] or '-'))}</td>"
        f"<td class='{'success' if d['success'] else 'failure'}'>{'success' if d['success'] else 'failure'}</td>"
        f"<td>{esc(d['failure'])}</td><td>{d['steps']}</td><td>{len(d['queries'])}</td><td>{d['wall_s']:.1f}</td></tr>"
        for d in data["episodes_detail"])
    meta = data.get("meta", {})
    accuracy = data.get("referring_accuracy")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>joyai-embodied LIBERO report</title>",
        f"<style>{STYLE}</style></head><body><h1>LIBERO report: {esc(str(data.get('suite')))}</h1>",
        f"<p class='small'>{esc(', '.join(f'{k}: {v}' for k, v in meta.items()))}</p>",
        f"<p><b>{len(data['episodes_detail'])}</b> episodes, success by LIBERO's own check "
        f"<b>{data.get('success_rate', 0):.0%}</b>; referring expressions resolved right in "
        f"<b>{'-' if accuracy is None else f'{accuracy:.0%}'}</b> of the episodes where an object was chosen.</p>",
        "<table><tr><th>#</th><th>task</th><th>init</th><th>instruction</th><th>chosen</th><th>LIBERO</th>"
        "<th>failure</th><th>steps</th><th>queries</th><th>s</th></tr>", rows, "</table>",
        "<p class='small'>Outline on the observation: <span style='background:#ffdd00'>&nbsp;chosen object"
        "&nbsp;</span> (from the world model's answers; the planner never reads the goal).</p>"]
    parts += [_render_episode(d) for d in data["episodes_detail"]]
    parts.append("</body></html>")
    return "\n".join(parts)


def _render_episode(d: Mapping[str, Any]) -> str:
    esc = html.escape
    images = d["images"]
    figures = []
    if "observation" in images:
        figures.append(_figure(images["observation"], f"observation: chose {d['chosen'] or '-'}"))
    if "imagined" in images:
        figures.append(_figure(images["imagined"], f"imagined outcome: {images['imagined_label']} "
                                                   f"(predicted on target: {_yes_no(d.get('predicted_on_target'))})"))
    if "final" in images:
        figures.append(_figure(images["final"], "final frame"))
    queries = "".join(f"<tr><td>{q['step']}</td><td>{esc(q['kind'])}</td><td>{esc(q['question'])}</td>"
                      f"<td>{esc(q['answer'])}</td><td>{esc(q['frame'])}</td></tr>" for q in d["queries"])
    verdict = "success" if d["success"] else "failure"
    return (f"<section id='ep{d['index']}'><h2>Episode {d['index']}: task {d['task_id']}, init state "
            f"{d['init_state']} &mdash; <span class='{verdict}'>{verdict}</span> by LIBERO's check</h2>"
            f"<p><code>{esc(d['instruction'])}</code></p>"
            f"<p>Chose <b>{esc(str(d['chosen'] or '-'))}</b>; {d['steps']} control steps, {d['grasp_attempts']} "
            f"grasp attempts, {d['wall_s']:.1f} s; verified on target by observing again: "
            f"{_yes_no(d.get('verified_on_target'))}; failure: {esc(d['failure'])}"
            + (f" <span class='small'>({esc(d['message'])})</span>" if d.get("message") else "") + ".</p>"
            + "<div>" + "".join(figures) + "</div>"
            + "<table><tr><th>step</th><th>query</th><th>question</th><th>answer</th><th>frame</th></tr>"
            + queries + "</table></section>")


def _figure(file: str, caption: str) -> str:
    return (f"<figure><img src='{html.escape(file)}' alt='{html.escape(file)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _yes_no(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")
