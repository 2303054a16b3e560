"""Operations: Prometheus metrics at /metrics, structured logs with a request id, secrets kept out of both.

- `metrics`: the app's counters and histograms (`AppMetrics`), and what /metrics collects;
- `requests`: the WSGI layer that times every request, gives it an id and writes its access line;
- `audit`: audit observers that count outcomes and log each event;
- `delivery_jobs`: delivery job counts kept in Redis, written by the RQ workers, read at scrape time;
- `logs` and `redaction`: the log handler, its JSON or text format and the filter that scrubs secrets;
- `endpoint`: the /metrics view.

Nothing here imports feature code: features are told about it through wiring.
"""
