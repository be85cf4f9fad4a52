"""`taskgate bench`: a load tool for a running server (`--url`) or one it starts (`--spawn`).

Scenarios: `submit`, `submit-batch`, `e2e`, `e2e-single`, `wake`, `backlog`; `plot` draws
submit sweeps. docs/benchmarks.md describes each one and what it measures.

The load generator must not be the bottleneck, and here it shares the server's two cores,
so every microsecond it spends is taken from the server. Client CPU per request, measured
on this machine (2 cores, AMD EPYC VM, Python 3.11, uvloop, keep-alive connections,
`resource.getrusage` of the client process; single-task submits):

| client (µs of CPU per request) | trivial server, 16 conns | taskgate, 1 conn | 64 conns |
|---|---|---|---|
| httpx 0.28 `AsyncClient` | 1,290-1,900 | 1,070 | 2,760 (a full core) |
| aiohttp 3.14 `ClientSession` | 84 | 198 | 112 |
| `wire.Connection` (this package) | 10 | 83 | 42-47 |

One client core makes ~100,000 requests/s with `wire`, ~11,800 with aiohttp and ~600
with httpx against a trivial uvloop server. Against taskgate (one process, ~2,800
submits/s at 64 connections) the cost per request is higher because fewer answers
arrive per event-loop wake-up: aiohttp took ~30 % of a core from the server, `wire`
~12 %, and httpx saturated its core at 362 requests/s. httpx is slow here for two
reasons: httpcore tries to import `sniffio` on every lock it creates and `sniffio` is not
installed, so each request pays failed imports (~0.2-0.5 ms; with sniffio installed
httpx still costs ~0.9-2.5 ms per request), and its pool's cost grows with concurrency.
aiohttp is well kept but still ~2.5x the CPU of a minimal client. So the generator uses
`wire.Connection`, a ~230-line HTTP/1.1 client on asyncio protocols with pre-encoded
requests; one generator process is enough for every scenario on two cores, and
`--generator-processes P` spreads connections over P processes when the server is on
other machines. Every report includes the generator's own CPU (% of one core) so a
reader can check. The `e2e` consumers are the real `runners.Runner`, which uses httpx:
their CPU is reported separately, as part of what is measured.
"""
