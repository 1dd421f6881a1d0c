"""Parts of the throughput and freshness benchmark (``python -m loadtest.bench_throughput``).

Each contender (``ceiling``, ``naive_faust``, ``quix``) is a module run as its
own process, so the contenders never share a core or an event loop; the
project's worker is run through ``kpi worker`` by :mod:`.worker`.
"""
