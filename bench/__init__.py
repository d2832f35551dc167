"""Benchmarks of the supervisor coaching backend (``make bench`` = ``python -m bench``).

One module per measurement, each runnable on its own (``python -m bench.fanout --out f.json``):

* :mod:`bench.ddb_requests` - DynamoDB requests per action, small vs large tenant (moto in-process)
* :mod:`bench.fanout`       - coach.send fan-out latency vs a bare echo, real WebSocket clients
* :mod:`bench.cold_start`   - importing ``app`` vs a bare Chalice app that imports boto3
* :mod:`bench.load`         - 200 clients, ordering / loss / duplication / silent-monitoring checks
* :mod:`bench.zip_size`     - the Lambda deployment zip built by ``infra/package.py``

:mod:`bench.__main__` runs them one after another in fresh interpreters, writes
``bench/results.json`` and prints a table. docs/performance.md explains every figure.
"""
