"""Per-process counters in the Prometheus text format.

Each worker reports its own counters with a `worker` label (its pid);
Prometheus sums them. Cheap enough to touch on every request.
"""

from __future__ import annotations

import os
from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()  # (method, status)
        self.scrubbed: Counter[str] = Counter()  # status -> rows
        self.gauges: dict[str, float] = {}
        # Counters kept elsewhere and copied in before rendering: name -> (help, value).
        self.totals: dict[str, tuple[str, int]] = {}

    def render(self) -> str:
        worker = os.getpid()
        lines = [
            "# HELP dnc_http_requests_total HTTP requests answered, by method and status.",
            "# TYPE dnc_http_requests_total counter",
        ]
        for (method, status), count in sorted(self.requests.items()):
            lines.append(
                f'dnc_http_requests_total{{worker="{worker}",method="{method}",status="{status}"}}'
                f" {count}"
            )
        lines += [
            "# HELP dnc_scrub_rows_total Rows scrubbed, by result.",
            "# TYPE dnc_scrub_rows_total counter",
        ]
        for result, rows in sorted(self.scrubbed.items()):
            lines.append(f'dnc_scrub_rows_total{{worker="{worker}",status="{result}"}} {rows}')
        for name, (text, total) in sorted(self.totals.items()):
            lines += [f"# HELP {name} {text}", f"# TYPE {name} counter"]
            lines.append(f'{name}{{worker="{worker}"}} {total}')
        for name, value in sorted(self.gauges.items()):
            lines += [f"# TYPE {name} gauge", f'{name}{{worker="{worker}"}} {value}']
        return "\n".join(lines) + "\n"
