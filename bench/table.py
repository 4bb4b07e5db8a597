"""The bench's figures as one Markdown table (the same numbers the JSON holds)."""

from __future__ import annotations

CONCURRENCIES = ("1", "16", "64", "256")


def _f(v, unit: str = "", digits: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        v = round(v, digits)
        if digits == 0:
            v = int(v)
    return f"{v}{unit}"


def _pcts(s: dict | None, unit: str = " ms") -> str:
    if not s or not s.get("n"):
        return "—"
    return f"{_f(s.get('p50'), digits=2)} / {_f(s.get('p90'), digits=2)} / {_f(s.get('p99'), digits=2)}{unit}"


def _tp(sweep: dict | None, c: str) -> str:
    r = (sweep or {}).get(c)
    if not r:
        return "—"
    return f"{_f(r.get('runs_per_s'))}/s ({r.get('errors')} err)"


def _cores(sweep: dict | None, c: str) -> str:
    r = (sweep or {}).get(c)
    if not r:
        return ""
    return f" [srv {r.get('server_cores')}, all {r.get('machine_busy_cores')} cores]"


def render_table(res: dict) -> str:
    m = res.get("machine", {})
    sq = res.get("sqlite") or {}
    pg = res.get("postgresql") or {}
    peer = res.get("peer") or {}
    up = res.get("upstream_alone") or {}
    door = sq.get("langgraph_door") or {}
    ratios = res.get("ratios") or {}
    lines = [
        f"threadloom bench — {res.get('date')} — {res.get('mode')} — {m.get('cpu')} ({m.get('cores')} cores, "
        f"{m.get('mem_gib')} GiB), Python {m.get('python')}, commit {m.get('threadloom_commit')}",
        f"background load before start: {(res.get('background') or {}).get('busy_cores_before_start')} cores busy; "
        f"load average {(res.get('background') or {}).get('loadavg')}",
        "",
        "| measure | threadloom | model alone | LangGraph peer | threadloom / peer |",
        "| --- | --- | --- | --- | --- |",
    ]
    lat = sq.get("latency_v1") or {}
    pl = peer.get("latency") or {}
    lines.append(f"| run latency c=1, p50/p90/p99 (/v1) | {_pcts(lat.get('server_ms'))} | {_pcts(lat.get('upstream_ms'))} "
                 f"| {_pcts(pl.get('server_ms'))} | |")
    lines.append(f"| added latency per run c=1, p50/p90/p99 (/v1) | {_pcts(lat.get('added_ms'))} | — "
                 f"| {_pcts(pl.get('added_ms'))} | {_f(ratios.get('added_latency_p50_threadloom_over_peer'), digits=3)} (p50) |")
    lines.append(f"| time to first delta c=1, p50/p90/p99 (/v1) | {_pcts(lat.get('ttft_server_ms'))} "
                 f"| {_pcts(lat.get('ttft_upstream_ms'))} | {_pcts(pl.get('ttft_server_ms'))} "
                 f"| {_f(ratios.get('ttft_p50_threadloom_over_peer'), digits=3)} (p50) |")
    lines.append(f"| added time to first delta, p50/p90/p99 (/v1) | {_pcts(lat.get('ttft_added_ms'))} | — "
                 f"| {_pcts(pl.get('ttft_added_ms'))} | |")
    if pl.get("to_metadata_ms", {}).get("n"):
        dl0 = (door.get("latency") or {}) if door.get("status") == "ok" else {}
        lines.append(f"| LangGraph API: time until a worker takes the run (`metadata` event) | "
                     f"{_pcts(dl0.get('to_metadata_ms'))} (LangGraph door) | — | {_pcts(pl.get('to_metadata_ms'))} | |")
        lines.append(f"| LangGraph API: added latency after the `metadata` event | "
                     f"{_pcts(dl0.get('added_after_metadata_ms'))} (LangGraph door) | — | {_pcts(pl.get('added_after_metadata_ms'))} | |")
    if door.get("status") == "ok":
        dl = door.get("latency") or {}
        lines.append(f"| added latency per run c=1 (LangGraph door) | {_pcts(dl.get('added_ms'))} | — "
                     f"| {_pcts(pl.get('added_ms'))} | |")
        lines.append(f"| time to first delta c=1 (LangGraph door) | {_pcts(dl.get('ttft_server_ms'))} | — "
                     f"| {_pcts(pl.get('ttft_server_ms'))} | |")
    elif door:
        lines.append(f"| LangGraph door | pending: {str(door.get('reason'))[:80]} | | | |")
    for c in CONCURRENCIES:
        lines.append(f"| runs/s c={c}, SQLite (/v1) | {_tp(sq.get('throughput_v1'), c)}{_cores(sq.get('throughput_v1'), c)} | {_tp(up, c)} "
                     f"| {_tp(peer.get('throughput'), c)}{_cores(peer.get('throughput'), c)} | {_f(ratios.get(f'throughput_c{c}_threadloom_over_peer'), digits=2)} |")
    if door.get("status") == "ok":
        for c in CONCURRENCIES:
            lines.append(f"| runs/s c={c}, SQLite (LangGraph door) | {_tp(door.get('throughput'), c)} | | | |")
    if pg.get("status") in ("skipped", "failed"):
        lines.append(f"| runs/s, PostgreSQL | {pg.get('status')}: {str(pg.get('error'))[:80]} | | | |")
    else:
        for c in CONCURRENCIES:
            lines.append(f"| runs/s c={c}, PostgreSQL (/v1) | {_tp(pg.get('throughput_v1'), c)}{_cores(pg.get('throughput_v1'), c)} | | | |")
    rel = sq.get("relay") or {}
    lines.append(f"| stream relay, {rel.get('tokens')} deltas: deltas/s to client | {_f(rel.get('deltas_per_s'), digits=0)} "
                 f"| {_f(rel.get('upstream_alone_deltas_per_s'), digits=0)} | | |")
    lines.append(f"| stream relay: server CPU s per 1,000 deltas | {_f(rel.get('server_cpu_s_per_1000_deltas'), ' s', 3)} | | | |")
    lines.append(f"| server RSS after serving ~{sq.get('runs_served')} runs (counted in windows) | "
                 f"{_f(sq.get('rss_after_load_mb'), ' MB')} (fresh: {_f(sq.get('rss_fresh_mb'), ' MB')}) | | | |")
    held = sq.get("held") or {}
    lines.append(f"| held streams: {held.get('streams')} at once on a fresh server, peak RSS | {_f(held.get('peak_rss_mb'), ' MB')} "
                 f"({held.get('errors')} err) | | | |")
    alone = held.get("model_alone") or {}
    lines.append(f"| held streams: delta delay p50/p90/p99, all deltas | {_pcts(held.get('delta_delay_ms'))} "
                 f"| {_pcts(alone.get('delta_delay_ms'))} | | |")
    lines.append(f"| held streams: delta delay p50/p90/p99, once all {held.get('streams')} open "
                 f"(after {held.get('all_open_after_s')} s; model alone {alone.get('all_open_after_s')} s) "
                 f"| {_pcts(held.get('delta_delay_all_open_ms'))} | {_pcts(alone.get('delta_delay_all_open_ms'))} | | |")
    for name in ("sqlite", "postgresql", "peer"):
        sec = res.get(name) or {}
        if sec.get("status") == "failed":
            lines.append(f"| {name} section | FAILED: {str(sec.get('error'))[:100]} | | | |")
    lines.append("")
    lines.append("Goals (reported, not asserted):")
    for k, v in (res.get("goals") or {}).items():
        met = v.get("met")
        lines.append(f"- {k}: {v.get('value')} — {met if isinstance(met, str) else ('met' if met else 'MISSED')}")
    return "\n".join(lines)
