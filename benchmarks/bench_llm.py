"""Issue 17: LLM labelling throughput on this machine with the real local model.

Gemma 3 270M (Q4_K_M GGUF from PyPI's chunk packages) under llama-cpp-python's
OpenAI-compatible server, 2 threads, asked by the LLM labeller in ``logprobs`` mode (one
completion token per row, the top first-token log-probabilities scored per label).

Figures:

1. The server's start-up: from the process start to ``/v1/models`` answering.
2. Rows per second with nothing cached, at concurrency 1 and 2 (the server runs one request
   at a time; 2 keeps it busy while the client parses), on distinct rows: the 20 SMS
   messages of tests/labeling/sms.py, each also asked with a numbered suffix so no row
   repeats (``--rows`` in all).
3. Rows per second when every answer is in the cache (the same rows again), and the ratio
   to 2. -- the reference measured in the same run.
4. Accuracy on the 20 labelled messages (a sanity check of the scoring, not the issue's
   labelling figure, which needs a real data set).

    .venv/bin/python benchmarks/bench_llm.py [--rows 100] [--json PATH]

Needs ``make llm`` (llama-cpp-python and the GGUF package); says so and exits 0 without.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import check_quiet, print_machine, write_json
from forgeline.labeling.llm import LLMConfig, LLMLabeller
from forgeline.llm.cache import AnswerCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--json")
    args = parser.parse_args()
    from tests.labeling import llamaserver  # tests/ is importable once _common has run
    from tests.labeling.sms import ROWS, TEMPLATE

    missing = llamaserver.available()
    if missing:
        print(f"Skipped: {missing} (run `make llm`).")
        return
    print_machine()
    check_quiet()
    texts = [t for t, _ in ROWS]
    texts += [f"{ROWS[i % len(ROWS)][0]} ({i})" for i in range(max(0, args.rows - len(ROWS)))]
    results: dict[str, object] = {"rows": len(texts), "model": llamaserver.MODEL_ALIAS}
    with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
        llamaserver.model_file()  # assembled before the clock starts
        start = time.perf_counter()
        with llamaserver.LlamaServer(Path(tmp) / "server.log") as server:
            results["server_start_s"] = round(time.perf_counter() - start, 2)
            print(f"llama_cpp.server answered /v1/models after {results['server_start_s']} s")
            for concurrency in (1, 2):
                cache = AnswerCache(Path(tmp) / f"answers-{concurrency}.sqlite")
                config = LLMConfig(server.url, llamaserver.MODEL_ALIAS,
                                   concurrency=concurrency, timeout_s=120)
                with LLMLabeller(config, TEMPLATE, cache=cache) as lab:
                    cold = lab.label(texts)
                    warm = lab.label(texts)
                truth = [y for _, y in ROWS]
                accuracy = sum(int(p == y) for p, y in zip(cold.labels[:20], truth,
                                                           strict=True)) / 20
                row = {"cold_rows_per_s": round(cold.stats.rows_per_s, 2),
                       "cold_s": round(cold.stats.seconds, 2),
                       "prompt_tokens": cold.stats.prompt_tokens,
                       "failed": cold.stats.failed,
                       "cached_rows_per_s": round(warm.stats.rows_per_s, 1),
                       "cache_hits": warm.stats.cache_hits,
                       "accuracy_20": accuracy}
                results[f"concurrency_{concurrency}"] = row
                print(f"concurrency {concurrency}: {row['cold_rows_per_s']} rows/s cold "
                      f"({len(texts)} rows in {row['cold_s']} s, "
                      f"{cold.stats.prompt_tokens / len(texts):.0f} prompt tokens a row, "
                      f"{cold.stats.failed} failed); cached: {row['cached_rows_per_s']} rows/s "
                      f"({warm.stats.cache_hits} hits, "
                      f"{warm.stats.rows_per_s / cold.stats.rows_per_s:.0f}x); "
                      f"accuracy on the 20 labelled messages {accuracy:.2f}")
                cache.close()
    write_json(args.json, "bench_llm.py", results)


if __name__ == "__main__":
    main()
