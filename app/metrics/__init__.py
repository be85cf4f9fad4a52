"""taskgate's Prometheus metrics: the instruments (`instruments.py`), the queue gauges read
at scrape time (`depth.py`) and prometheus_client's multiprocess mode for gunicorn
(`multiprocess.py`). A leaf like `core`: it imports nothing above `core`."""
