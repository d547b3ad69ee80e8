"""The API as the benchmarks use it: an operator account, a streamed text scrub, its check."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np

from benchmarks import servers

UPLOAD_CHUNK = 1 << 20


def create_operator(base_url: str) -> str:
    answer = httpx.post(
        base_url + "/v1/operators",
        json={"name": "benchmark", "role": "operator"},
        headers={"Authorization": f"Bearer {servers.ADMIN_KEY}"},
    )
    answer.raise_for_status()
    return str(answer.json()["api_key"])


def scrub_text(base_url: str, key: str, body: bytes, region: str | None) -> tuple[float, bytes]:
    """POST /v1/scrub as text/plain, streamed up and down: first byte sent to last received."""
    started = 0.0

    def upload() -> Any:
        nonlocal started
        started = time.perf_counter()
        for offset in range(0, len(body), UPLOAD_CHUNK):
            yield body[offset : offset + UPLOAD_CHUNK]

    params = {"region": region} if region else {}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/plain"}
    with (
        httpx.Client(timeout=httpx.Timeout(600.0)) as client,
        client.stream(
            "POST", base_url + "/v1/scrub", params=params, headers=headers, content=upload()
        ) as answer,
    ):
        parts = list(answer.iter_raw())
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise RuntimeError(f"scrub answered {answer.status_code}: {b''.join(parts)[:500]!r}")
    return elapsed, b"".join(parts)


def check_answer(answer: bytes, registered: np.ndarray) -> dict[str, Any]:
    """The streamed CSV's statuses, row by row, against the world's truth."""
    rows = answer.split(b"\n")
    if rows[-1] == b"":
        rows.pop()
    status = [row.rsplit(b",", 1)[-1] for row in rows[1:]]
    blocked = np.array([s == b"blocked" for s in status], dtype=bool)
    counts = {name: status.count(name.encode()) for name in ("callable", "blocked", "invalid")}
    exact = len(status) == len(registered) and bool(np.array_equal(blocked, registered))
    return {"counts": counts, "matches_truth": exact and counts["invalid"] == 0}


def every_run(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """check_answer of several runs as one: right only when every run was, with the counts
    of the first wrong run (or of the last run when none was wrong)."""
    wrong = [check for check in checks if not check["matches_truth"]]
    return {
        "counts": (wrong[0] if wrong else checks[-1])["counts"],
        "matches_truth": not wrong,
    }
